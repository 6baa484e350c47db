/** Staging: the versions/<version>.tmp directory a new version is written into before finalize. */
import { mkdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { debugLog } from '../lib/debug.js'
import { ConflictError, errnoCode } from '../lib/errors.js'
import { storeRootExists } from './current.js'
import { exists, writerAgent, type StoreContext } from './store-context.js'
import { versionExists } from './store-errors.js'
import { ensureDir, shareLikeParent } from '../lib/fs.js'

const log = debugLog('store')

/** Creates versions/<version>.tmp and returns its path. Refuses if it or the version exists. */
export async function stage(ctx: StoreContext, name: string, version: string): Promise<string> {
  const agent = writerAgent(ctx, name)
  const staging = ctx.stagingDir(agent, version)
  const final = ctx.versionDir(agent, version)
  await ensureRoot(ctx)
  // In a store a group shares (store init: the root is setgid), a new agent's directories are the group's
  // like the root, whatever this writer's umask.
  await ensureDir(join(ctx.agentDir(agent), 'versions'), { shared: true })
  if (await exists(final)) throw versionExists(agent, version, final)
  try {
    await mkdir(staging)
  } catch (err) {
    if (errnoCode(err) === 'EEXIST') {
      throw new ConflictError(`Version ${version} of agent ${agent} is already being staged (${staging} exists)`, {
        code: 'STAGING_EXISTS',
        hint: `Finalize it with \`modelforge store finalize ${agent} ${version}\`, or remove it with \`modelforge store gc --older-than 0\`.`,
        details: { path: staging },
      })
    }
    throw err
  }
  // So that any trainer of a shared store's group may write into it (and finalize or gc it), whatever the
  // umask of the one who staged it; a store no group shares keeps the umask's mode.
  let shared: boolean
  try {
    shared = await shareLikeParent(staging)
  } catch (err) {
    await rm(staging, { recursive: true, force: true })
    throw err
  }
  log(`stage ${agent}/${version}: created ${staging}${shared ? ' (with the mode of versions/: the store is shared)' : ''}`)
  return staging
}

/** stage(), then fn(stagingDir); the staging directory is removed when fn throws. */
export async function withStaging<T>(ctx: StoreContext, agent: string, version: string, fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await stage(ctx, agent, version)
  try {
    return await fn(dir)
  } catch (err) {
    await rm(dir, { recursive: true, force: true })
    log(`stage ${agent}/${version}: removed ${dir} (its writer failed)`)
    throw err
  }
}

async function ensureRoot(ctx: StoreContext): Promise<void> {
  if (!storeRootExists(ctx.root)) await ensureDir(ctx.root)
  // The locks directory is made here, by stage, so that a refused finalize leaves no trace at all.
  await ensureDir(join(ctx.root, '.modelforge', 'locks'), { shared: true })
}
