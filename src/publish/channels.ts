/**
 * Moving channels: promote, rollback and the one link swap (pointChannel) that finalize's publish uses too.
 * Every move holds the agent's lock and is audited after the swap.
 */
import { lstat, rename } from 'node:fs/promises'
import { join } from 'node:path'
import { debugLog } from '../lib/debug.js'
import { errnoCode, IntegrityError, type ModelforgeError, NotFoundError } from '../lib/errors.js'
import { auditDone, readAudit } from './audit.js'
import { legacyAsideName } from './current.js'
import { fsyncDir, swapSymlink } from '../lib/fs.js'
import { currentHistory } from './history.js'
import { validateName } from './names.js'
import { peekChannel, requireAgent } from './readers.js'
import { exists, withLock, writerAgent, type StoreContext } from './store-context.js'
import { versionNotFound } from './store-errors.js'
import { problemList, verifyVersion } from './verify.js'

const log = debugLog('store')

export interface ChannelChange {
  agent: string
  channel: string
  version: string
  previous: string | null
  /** rollback: the earlier versions passed over, newest first, and why (gone, or fails verification). */
  skipped?: { version: string; reason: string }[]
  /** What failed after the channel moved (the move stands): e.g. the audit record could not be written. */
  warnings?: string[]
}

/** Points `channel` (default current) at an existing, finalized version. */
export async function promote(ctx: StoreContext, name: string, version: string, channel = 'current'): Promise<ChannelChange> {
  validateName('channel', channel)
  const agent = writerAgent(ctx, name)
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

/**
 * Points `current` back at the newest earlier version the audit log names that is still intact: versions
 * that are gone or fail verification are skipped, and the result says which and why. A dangling or foreign
 * current names no version, so then the newest intact version of the history is where it goes.
 */
export async function rollback(ctx: StoreContext, name: string): Promise<ChannelChange> {
  const agent = writerAgent(ctx, name)
  requireAgent(ctx, agent)
  return withLock(ctx, agent, { op: 'rollback' }, async () => {
    const actual = peekChannel(ctx, agent, 'current')
    const history = currentHistory(readAudit(ctx.root, agent))
    const candidates = [...new Set(history.reverse())].filter((v) => v !== actual)
    if (candidates.length === 0) {
      throw new NotFoundError(`The audit log holds no earlier current version of agent ${agent}`, {
        code: 'NO_PREVIOUS',
        hint: `Point current explicitly with \`modelforge store promote ${agent} <version>\` (see \`modelforge store list --agent ${agent}\`).`,
        details: { agent, current: actual },
      })
    }
    const skipped: { version: string; reason: string }[] = []
    let target: string | undefined
    for (const v of candidates) {
      if (!(await exists(ctx.versionDir(agent, v)))) {
        skipped.push({ version: v, reason: 'gone' })
        continue
      }
      const report = await verifyVersion(ctx, agent, v)
      if (report.ok) {
        target = v
        break
      }
      skipped.push({ version: v, reason: `fails verification: ${problemList(report)}` })
    }
    if (target === undefined) throw noIntactPrevious(agent, skipped)
    await pointChannel(ctx, agent, 'current', target)
    const warnings: string[] = []
    auditDone(ctx.root, { op: 'rollback', agent, channel: 'current', version: target, previous: actual, ...(skipped.length > 0 ? { skipped: skipped.map((x) => x.version) } : {}) },
      `current of ${agent} was rolled back to ${target}`, warnings)
    return { agent, channel: 'current', version: target, previous: actual, ...(skipped.length > 0 ? { skipped } : {}), ...(warnings.length > 0 ? { warnings } : {}) }
  })
}

/** Every earlier version is gone (exit 6), or some exist but fail verification (exit 4). */
function noIntactPrevious(agent: string, skipped: { version: string; reason: string }[]): ModelforgeError {
  const why = skipped.map((x) => `${x.version} ${x.reason === 'gone' ? 'is gone' : x.reason}`).join('; ')
  const hint = `Point current explicitly with \`modelforge store promote ${agent} <version>\` at a version that verifies (\`modelforge store verify ${agent}\`).`
  if (skipped.every((x) => x.reason === 'gone')) {
    return new NotFoundError(`No earlier current version of agent ${agent} still exists (pruned?): ${why}`, { code: 'PREVIOUS_GONE', hint, details: { agent, skipped } })
  }
  return new IntegrityError(`No earlier current version of agent ${agent} is intact: ${why}`, { code: 'VERIFY_FAILED', hint, details: { agent, skipped } })
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
    log(`channel ${channel} of ${agent}: moved the Python-made directory ${linkPath} -> ${aside}`)
    // Durable before the link goes in: readers fall back to the aside directory while `current` is absent.
    await fsyncDir(agentDir)
  }
  await swapSymlink(agentDir, channel, `versions/${version}`)
  log(`channel ${channel} of ${agent} -> versions/${version}`)
}
