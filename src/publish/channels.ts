/**
 * Moving channels: promote, rollback and the one link swap (pointChannel) that finalize's publish uses too.
 * Every move holds the agent's lock and is audited after the swap.
 */
import { lstat, rename } from 'node:fs/promises'
import { join } from 'node:path'
import { errnoCode, IntegrityError, NotFoundError } from '../lib/errors.js'
import { auditDone, readAudit } from './audit.js'
import { legacyAsideName } from './current.js'
import { fsyncDir, swapSymlink } from '../lib/fs.js'
import { currentHistory } from './history.js'
import { readManifest } from './manifest.js'
import { validateName } from './names.js'
import { peekChannel, requireAgent } from './readers.js'
import { exists, withLock, type StoreContext } from './store-context.js'
import { versionNotFound } from './store-errors.js'
import { problemList, verifyVersion } from './verify.js'

export interface ChannelChange {
  agent: string
  channel: string
  version: string
  previous: string | null
  /** What failed after the channel moved (the move stands): e.g. the audit record could not be written. */
  warnings?: string[]
}

/** Points `channel` (default current) at an existing, finalized version. */
export async function promote(ctx: StoreContext, agent: string, version: string, channel = 'current'): Promise<ChannelChange> {
  validateName('channel', channel)
  const dir = ctx.versionDir(agent, version)
  requireAgent(ctx, agent)
  if (!(await exists(dir))) throw versionNotFound(agent, version)
  return withLock(ctx, agent, { op: 'promote', version }, async () => {
    // Checked under the lock, so that no prune removes the version between its check and the swap. A
    // channel is what services read: it never moves to a version that is not what its manifest says.
    const report = await verifyVersion(ctx, agent, version)
    if (!report.ok) {
      throw new IntegrityError(`${channel} of ${agent} was not moved to ${version}, which fails verification: ${problemList(report)}`, {
        code: 'VERIFY_FAILED',
        hint: `Promote a version that verifies (\`modelforge store verify ${agent}\` checks them all), or restore the named files of ${version} from a backup.`,
        details: { agent, channel, version, reports: [report] },
      })
    }
    const previous = peekChannel(ctx, agent, channel)
    await pointChannel(ctx, agent, channel, version)
    const warnings: string[] = []
    auditDone(ctx.root, { op: 'promote', agent, channel, version, previous }, `${channel} of ${agent} now points to ${version}`, warnings)
    return { agent, channel, version, previous, ...(warnings.length > 0 ? { warnings } : {}) }
  })
}

/** Points `current` back at the version it pointed to before the last change, from the audit log. */
export async function rollback(ctx: StoreContext, agent: string): Promise<ChannelChange> {
  requireAgent(ctx, agent)
  return withLock(ctx, agent, { op: 'rollback' }, async () => {
    const actual = peekChannel(ctx, agent, 'current')
    const history = currentHistory(readAudit(ctx.root, agent))
    while (history.length > 0 && history[history.length - 1] === actual) history.pop()
    const target = history[history.length - 1]
    if (!target) {
      throw new NotFoundError(`The audit log holds no earlier current version of agent ${agent}`, {
        code: 'NO_PREVIOUS',
        hint: `Point current explicitly with \`modelforge store promote ${agent} <version>\` (see \`modelforge store list --agent ${agent}\`).`,
        details: { agent, current: actual },
      })
    }
    const dir = ctx.versionDir(agent, target)
    if (!(await exists(dir))) {
      throw new NotFoundError(`The previous current version ${target} of agent ${agent} no longer exists (pruned?)`, {
        code: 'PREVIOUS_GONE',
        hint: `Point current explicitly with \`modelforge store promote ${agent} <version>\`.`,
        details: { agent, version: target },
      })
    }
    await readManifest(dir)
    await pointChannel(ctx, agent, 'current', target)
    const warnings: string[] = []
    auditDone(ctx.root, { op: 'rollback', agent, channel: 'current', version: target, previous: actual }, `current of ${agent} was rolled back to ${target}`, warnings)
    return { agent, channel: 'current', version: target, previous: actual, ...(warnings.length > 0 ? { warnings } : {}) }
  })
}

/** Swaps the channel link to versions/<version>. Caller holds the lock. */
export async function pointChannel(ctx: StoreContext, agent: string, channel: string, version: string): Promise<void> {
  const agentDir = ctx.agentDir(agent)
  const linkPath = join(agentDir, channel)
  const st = await lstat(linkPath).catch((err) => {
    if (errnoCode(err) === 'ENOENT') return null
    throw err
  })
  if (st && !st.isSymbolicLink() && !(st.isDirectory() && channel === 'current')) {
    // Never replace (rename over) or move something that is not ours: a file or directory with that name.
    throw new IntegrityError(`${linkPath} is not a symlink, so it is no channel modelforge can move`, {
      code: 'CHANNEL_INVALID',
      hint: `Move it out of the agent directory, or choose another channel name.`,
      details: { path: linkPath },
    })
  }
  if (st?.isDirectory()) {
    // A Python-made store kept `current` as a real directory, which rename() cannot replace by a link:
    // it is moved aside (kept, never deleted) and the link put in its place.
    const aside = join(agentDir, legacyAsideName(channel, Date.now()))
    await rename(linkPath, aside)
    // Durable before the link goes in: readers fall back to the aside directory while `current` is absent.
    await fsyncDir(agentDir)
  }
  await swapSymlink(agentDir, channel, `versions/${version}`)
}
