/**
 * store push: a finalized version to an OCI registry as the artifact of artifact.ts. Each blob is HEADed
 * first and skipped when the registry has it; one another repository of the same registry holds (a push
 * of this store there, from the audit log) is mounted; the others are uploaded, in one PUT up to
 * MONOLITHIC_MAX and in PATCH chunks above, a few at once. The manifest is PUT last, so a reader never sees
 * a manifest whose blobs are missing. The store is only read (and the push appended to its audit log).
 */
import { createReadStream, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { IntegrityError, ModelforgeError, UsageError } from '../lib/errors.js'
import { forEachLimit } from '../lib/limit.js'
import { formatBytes, type StepReporter } from '../lib/progress.js'
import { auditDone, readAudit } from '../publish/audit.js'
import { MANIFEST_NAME, parseManifest } from '../publish/manifest.js'
import { type ModelStore } from '../publish/store.js'
import { buildArtifact, MEDIA_TYPES } from './artifact.js'
import { ociCredentials } from './credentials.js'
import { OciClient, type Body } from './oci-client.js'
import { checkRegistryAllowed } from './policy.js'
import { formatReference, parseReference } from './reference.js'
import { type ModelforgeConfig } from '../lib/env.js'

export const MONOLITHIC_MAX = 32 * 1024 * 1024
export const CHUNK_BYTES = 64 * 1024 * 1024
const PARALLEL = 4

export interface PushOptions {
  plainHttp?: boolean
  /** The policy in force (distributionPolicy); checked before any request. */
  policy?: ModelforgeConfig
  env?: Record<string, string | undefined>
  step?: StepReporter
  /** For tests: the chunk size above MONOLITHIC_MAX. */
  chunkBytes?: number
  monolithicMax?: number
}

export interface PushResult {
  agent: string
  version: string
  /** registry/repository:tag */
  ref: string
  /** registry/repository@sha256:... */
  pinned: string
  digest: string
  blobs: number
  uploaded: number
  present: number
  mounted: number
  bytesUploaded: number
  requests: number
  warnings?: string[]
}

/** Repositories of the same registry this store pushed a blob to before (newest first), from the audit log. */
function mountSources(store: ModelStore, registry: string, repository: string): Map<string, string> {
  const from = new Map<string, string>()
  for (const r of readAudit(store.root).reverse()) {
    if (r.op !== 'push' || r.registry !== registry || r.repository === repository || !Array.isArray(r.blobs)) continue
    for (const d of r.blobs as unknown[]) if (typeof d === 'string' && !from.has(d)) from.set(d, String(r.repository))
  }
  return from
}

export async function pushVersion(store: ModelStore, agent: string, version: string, refText: string, options: PushOptions = {}): Promise<PushResult> {
  const ref = parseReference(refText, { plainHttp: options.plainHttp, defaultTag: version })
  if (ref.digest) {
    throw new UsageError(`${refText} names a digest; a push names the tag to write (host/repository:tag), and reports the digest`, { code: 'OCI_REFERENCE_INVALID' })
  }
  if (options.policy) checkRegistryAllowed(ref, options.policy)
  const dir = store.versionDir(agent, version)
  await store.versionInfos(agent) // exit 6 for an unknown agent, as every reader
  let bytes: Buffer
  try {
    bytes = readFileSync(join(dir, MANIFEST_NAME))
  } catch {
    // The store's own reader says what is wrong (no such version: exit 6; no manifest: exit 4).
    await store.manifest(agent, version)
    throw new IntegrityError(`Version ${agent}/${version} has no readable manifest.json`, { code: 'MANIFEST_MISSING' })
  }
  const parsed = parseManifest(JSON.parse(bytes.toString('utf8')), join(dir, MANIFEST_NAME))
  if (parsed.kind !== 'v1') {
    throw new IntegrityError(`Version ${agent}/${version} has a legacy manifest without its files' sha256, which an OCI artifact needs`, {
      code: 'OCI_ARTIFACT_INVALID',
      hint: `Import it anew (store import ${agent} <new-version> ${dir}) and push that.`,
    })
  }
  const artifact = buildArtifact(bytes, parsed.manifest)
  const client = new OciClient(ref, { credentials: ociCredentials(ref.registry, options.env) })
  const mounts = mountSources(store, ref.registry, ref.repository)
  const monolithicMax = options.monolithicMax ?? MONOLITHIC_MAX
  const chunkBytes = options.chunkBytes ?? CHUNK_BYTES

  // Every blob once (two files with the same content are one blob), the config and manifest.json included.
  const blobs = new Map<string, { size: number; body: Body; path?: string }>()
  for (const f of parsed.manifest.files) {
    const path = join(dir, f.path)
    blobs.set(`sha256:${f.sha256}`, { size: f.size, path, body: { length: f.size, open: () => createReadStream(path) } })
  }
  blobs.set(artifact.manifest.config.digest, { size: artifact.config.length, body: artifact.config })
  const last = artifact.manifest.layers.at(-1)!
  blobs.set(last.digest, { size: last.size, body: artifact.versionManifest })

  const total = [...blobs.values()].reduce((a, b) => a + b.size, 0)
  let done = 0
  const counts = { uploaded: 0, present: 0, mounted: 0, bytesUploaded: 0 }
  options.step?.title(`Push ${agent}/${version} to ${formatReference(ref)}: ${blobs.size} blobs, ${formatBytes(total)}`)
  await forEachLimit([...blobs.entries()], PARALLEL, async ([digest, blob]) => {
    if (await client.hasBlob(digest)) {
      counts.present++
    } else if (mounts.has(digest) && (await client.mountBlob(digest, mounts.get(digest)!))) {
      counts.mounted++
    } else {
      try {
        if (blob.size <= monolithicMax || !blob.path) await client.uploadMonolithic(digest, blob.body)
        else await client.uploadChunked(digest, blob.size, chunkBytes, (start, end) => createReadStream(blob.path!, { start, end }), (n) => options.step?.bytes((done += n), total))
      } catch (err) {
        if (err instanceof ModelforgeError && err.details?.codes && (err.details.codes as string[]).includes('DIGEST_INVALID')) {
          throw new IntegrityError(`The registry refused ${blob.path ?? digest}: its bytes do not have the sha256 manifest.json records`, {
            code: 'VERIFY_FAILED',
            hint: `The version is damaged in the store; run modelforge store verify ${agent}.`,
            details: { path: blob.path, digest },
          })
        }
        throw err
      }
      counts.uploaded++
      counts.bytesUploaded += blob.size
      if (blob.size <= monolithicMax || !blob.path) options.step?.bytes((done += blob.size), total)
      return
    }
    options.step?.bytes((done += blob.size), total)
  })
  const digest = await client.putManifest(ref.tag ?? version, artifact.manifestBytes, MEDIA_TYPES.imageManifest)
  const warnings: string[] = []
  if (digest !== artifact.digest) warnings.push(`the registry reports the manifest digest ${digest}, not ${artifact.digest}`)
  auditDone(store.root, {
    op: 'push', agent, version, registry: ref.registry, repository: ref.repository, tag: ref.tag, digest: artifact.digest, blobs: [...blobs.keys()],
  }, `${agent}/${version} was pushed to ${formatReference(ref)}`, warnings)
  return {
    agent, version, ref: formatReference({ ...ref, digest: undefined }), pinned: `${ref.registry}/${ref.repository}@${artifact.digest}`, digest: artifact.digest,
    blobs: blobs.size, ...counts, requests: client.requests, ...(warnings.length ? { warnings } : {}),
  }
}
