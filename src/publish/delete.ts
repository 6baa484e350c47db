/**
 * Delete: one finalized version goes, by name, when no channel points to it. prune removes by age; this is
 * the operator's (and a failed import's) way to remove a version they name. It holds the agent's lock,
 * removes the version as prune does (discard.ts: renamed aside first, so a crash leaves a whole version or
 * a leftover gc removes, never a half version) and is audited. Only the version's owner or root may remove
 * it; another account is refused before anything changes, also by --dry-run.
 */
import { lstat } from 'node:fs/promises'
import { join } from 'node:path'
import { ConflictError, errnoCode, ModelforgeError } from '../lib/errors.js'
import { fsyncDir } from '../lib/fs.js'
import { auditDone } from './audit.js'
import { assertRemovable, discardVersion } from './discard.js'
import { readManifest } from './manifest.js'
import { channelVersions, requireAgent } from './readers.js'
import { exists, withLock, writerAgent, type StoreContext } from './store-context.js'
import { versionNotFound } from './store-errors.js'

export interface DeleteOptions {
  /** Check and report, change nothing. */
  dryRun?: boolean
  /** Recorded in the audit line (a failed import says why it removed the version it had made). */
  reason?: string
}

export interface DeleteResult {
  agent: string
  version: string
  path: string
  dryRun: boolean
  /** False under dryRun. */
  deleted: boolean
  /** The manifest's checksum (null: a version whose manifest is missing or broken, which can be deleted too). */
  checksum: string | null
  /** What failed after the version was removed (the removal stands): its leftover files, the audit record. */
  warnings?: string[]
}

/** Removes versions/<version> of `agent` unless a channel points to it (ConflictError VERSION_IN_USE). */
export async function deleteVersion(ctx: StoreContext, name: string, version: string, options: DeleteOptions = {}): Promise<DeleteResult> {
  const agent = writerAgent(ctx, name)
  const dir = ctx.versionDir(agent, version)
  requireAgent(ctx, agent)
  const check = async (): Promise<string | null> => {
    if (!(await isDirectory(dir))) throw versionNotFound(agent, version)
    const channels = Object.entries(channelVersions(ctx, agent)).filter(([, v]) => v === version).map(([c]) => c)
    if (channels.length > 0) throw versionInUse(agent, version, channels)
    // The version is read-only: only its owner or root can remove it (discard.ts). Said before the rename.
    await assertRemovable(dir, { what: `${agent}/${version}`, op: 'delete', details: { agent, version } })
    return checksumOf(dir)
  }
  const base = { agent, version, path: dir, dryRun: Boolean(options.dryRun) }
  // A dry run reads only, like prune's: no lock, so it works while a writer holds it.
  if (options.dryRun) return { ...base, deleted: false, checksum: await check() }
  return withLock(ctx, agent, { op: 'delete', version }, async () => {
    const checksum = await check()
    const versionsDir = join(ctx.agentDir(agent), 'versions')
    const warnings: string[] = []
    try {
      await discardVersion(versionsDir, version)
      await fsyncDir(versionsDir)
    } catch (err) {
      // Still under its name: nothing was removed, the error says why.
      if (await exists(dir)) throw err
      // Renamed aside, so the version is gone; what could not be deleted is a leftover for gc.
      warnings.push(`${agent}/${version} is removed, but deleting its files failed (${(err as Error).message}); \`modelforge store gc\` removes the rest`)
    }
    auditDone(ctx.root, { op: 'delete', agent, version, ...(checksum ? { checksum } : {}), ...(options.reason ? { reason: options.reason } : {}) },
      `${agent}/${version} was deleted`, warnings)
    return { ...base, deleted: true, checksum, ...(warnings.length > 0 ? { warnings } : {}) }
  })
}

function versionInUse(agent: string, version: string, channels: string[]): ConflictError {
  const list = channels.join(', ')
  return new ConflictError(`Version ${version} of agent ${agent} is in use: ${channels.length === 1 ? 'channel' : 'channels'} ${list} ${channels.length === 1 ? 'points' : 'point'} to it`, {
    code: 'VERSION_IN_USE',
    hint: `Point ${list} at another version first (\`modelforge store promote ${agent} <version>${channels[0] === 'current' ? '' : ` --channel ${channels[0]}`}\`), then delete it.`,
    details: { agent, version, channels },
  })
}

/** A version is a directory (a link or file under versions/ is none: readers and prune skip it too). */
async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await lstat(path)).isDirectory()
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return false
    throw err
  }
}

async function checksumOf(dir: string): Promise<string | null> {
  try {
    return (await readManifest(dir)).manifest.checksum
  } catch (err) {
    if (err instanceof ModelforgeError) return null
    throw err
  }
}
