/** Distribution: store versions as OCI artifacts in any OCI registry (docs/distribution.md). */
import { hostname } from 'node:os'
import { ModelforgeError } from '../lib/errors.js'
import { formatBytes, planSteps, runStep, type Progress } from '../lib/progress.js'
import { ModelStore, type EvictResult } from '../publish/store.js'
import { recordStoreWrites, reportAvailability, type RegistryTarget } from '../registry/index.js'
import { distributionPolicy } from './policy.js'
import { pullVersion, type PullOptions, type PullResult } from './pull.js'
import { pushVersion, type PushOptions, type PushResult } from './push.js'

export { pushVersion, type PushOptions, type PushResult } from './push.js'
export { pullVersion, type PullOptions, type PullResult } from './pull.js'
export { parseReference, formatReference, type OciReference } from './reference.js'
export { ociCredentials, type OciCredentials } from './credentials.js'
export { distributionPolicy, checkRegistryAllowed } from './policy.js'
export { buildArtifact, checkArtifact, MEDIA_TYPES } from './artifact.js'

/** store push as the command runs it: the policy of the store (and its model registry), then the push. */
export async function pushFromStore(target: RegistryTarget, agent: string, version: string, ref: string, options: Omit<PushOptions, 'policy' | 'step'> & { progress?: Progress } = {}): Promise<PushResult> {
  const policy = await distributionPolicy(target)
  planSteps(options.progress, [{ id: 'push', title: `Push ${agent}/${version} to ${ref}` }])
  return runStep(options.progress, 'push', (step) => pushVersion(new ModelStore(target.store), agent, version, ref, { ...options, policy, step }), {
    title: (r) => `Pushed ${r.pinned}: ${r.uploaded} uploaded (${formatBytes(r.bytesUploaded)}), ${r.present} present, ${r.mounted} mounted`,
  })
}

export interface NodePullResult extends PullResult {
  node: string
  /** store.maxBytes was set: what the node cache evicted after the pull. */
  evicted?: EvictResult['evicted']
}

/**
 * store pull as a node runs it (the load workflow): the pull, the model registry synced with what it wrote,
 * and the node's availability of the version reported there: loading once the artifact is named, then
 * available, or failed with the error.
 */
export async function pullToStore(target: RegistryTarget, ref: string, options: Omit<PullOptions, 'policy' | 'step' | 'onResolved'> & { node?: string; progress?: Progress } = {}): Promise<NodePullResult> {
  const policy = await distributionPolicy(target)
  const node = options.node ?? hostname()
  const warnings: string[] = []
  let named: { agent: string; version: string; digest: string; pinned: string } | undefined
  const report = async (status: 'loading' | 'available' | 'failed', details: Record<string, unknown>): Promise<void> => {
    if (!named) return
    const r = await reportAvailability(target, node, named.agent, named.version, status, { digest: named.digest, ref: named.pinned, ...details })
    if (r.warning) warnings.push(r.warning)
  }
  planSteps(options.progress, [{ id: 'pull', title: `Pull ${ref}` }])
  try {
    const r = await recordStoreWrites(target, () => runStep(options.progress, 'pull', (step) => pullVersion(new ModelStore(target.store), ref, {
      ...options, policy, step, onResolved: async (n) => {
        named = n
        await report('loading', {})
      },
    }), { title: (p) => `${p.unchanged ? 'Already here' : 'Pulled'}: ${p.agent}/${p.version} (${formatBytes(p.bytesDownloaded)} downloaded)` }))
    await report('available', { checksum: r.checksum })
    const bound = policy.store?.maxBytes === undefined ? undefined : await evictToBound(target, node, policy.store.maxBytes, { spare: [{ agent: r.agent, version: r.version }] })
    warnings.push(...(bound?.warnings ?? []))
    return { ...r, node, ...(bound ? { evicted: bound.evicted } : {}), ...(warnings.length || r.warnings ? { warnings: [...(r.warnings ?? []), ...warnings] } : {}) }
  } catch (err) {
    await report('failed', err instanceof ModelforgeError ? { code: err.code, message: err.message } : { message: (err as Error).message })
    throw err
  }
}

/**
 * The node cache's bound (store.maxBytes, or --max-bytes): versions no channel points to are evicted, least
 * recently used first, the model registry synced and told the node has them evicted.
 */
export async function evictToBound(target: RegistryTarget, node: string, maxBytes: number, options: { dryRun?: boolean; spare?: { agent: string; version: string }[] } = {}): Promise<EvictResult> {
  const dryRun = options.dryRun ?? false
  const r = await recordStoreWrites(target, () => new ModelStore(target.store).evict({ maxBytes, dryRun, spare: options.spare }))
  const warnings = [...(r.warnings ?? [])]
  if (!dryRun) {
    for (const e of r.evicted) {
      const a = await reportAvailability(target, node, e.agent, e.version, 'evicted', { maxBytes, lastUsed: e.lastUsed })
      if (a.warning) warnings.push(a.warning)
    }
  }
  return { ...r, ...(warnings.length ? { warnings } : {}) }
}
