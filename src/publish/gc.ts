/**
 * Removing what the store no longer needs: prune deletes old versions of an agent, gc deletes what crashed
 * or interrupted writers left (temporary links, staging directories, half-deleted pruned versions, lock
 * temp files). Both hold the agent's lock while they delete, and remove only what this account may
 * (discard.ts: a version is read-only, so only its owner or root); otherwise they refuse before any change.
 */
import { lstat, readdir, rm } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { debugLog } from '../lib/debug.js'
import { ConflictError, ModelforgeError, UsageError } from '../lib/errors.js'
import { loadConfig } from '../lib/env.js'
import { auditDone, readAudit } from './audit.js'
import { assertRemovable, discardVersion, PRUNE_PREFIX, removeTree } from './discard.js'
import { storeRootExists } from './current.js'
import { fsyncDir, TEMP_LINK_PREFIX, TEMP_SUFFIX } from '../lib/fs.js'
import { acquireLock, removeStaleLockTemps, type HeldLock } from './lock.js'
import { parseDuration } from './options.js'
import { channelStates, listAgents, requireAgent, versionInfos } from './readers.js'
import { exists, readdirIfExists, withLock, writerAgent, type StoreContext, type WriterAgent } from './store-context.js'
import { PULL_NAME, pullsDir, tryPullLock } from './pulls.js'
import { walkTree } from '../lib/tree.js'
import { verifyVersion } from './verify.js'

export interface PruneResult {
  agent: string
  keep: number
  dryRun: boolean
  /** Newest first. */
  removed: string[]
  /** The versions with an intact manifest that stay, newest first. */
  kept: string[]
  /** The versions channels point to. */
  protected: string[]
  /**
   * Kept beyond --keep and the channels: the newest version that verifies, because nothing else kept is
   * intact (--keep 0 with a dangling current). prune never leaves an agent without an intact version.
   */
  lastIntact?: string
  /** Directories of versions/ whose manifest is missing, unreadable or names another version: left alone. */
  unrecognised: { version: string; problem: string }[]
  /** Channels that name no version (dangling, outside the agent): they protect nothing. */
  brokenChannels: { channel: string; problem: string }[]
  /** What failed after versions were removed (the removal stands): e.g. the audit record. */
  warnings?: string[]
}

export interface GcResult {
  olderThanMs: number
  removed: { path: string; kind: 'temp-link' | 'staging' | 'pruned' | 'lock-temp' | 'pull' }[]
  skipped: { agent: string; reason: string }[]
  /** What failed after leftovers were removed (the removal stands): e.g. the audit record. */
  warnings?: string[]
}

const log = debugLog('store')

export interface EvictResult {
  maxBytes: number
  dryRun: boolean
  /** Bytes of every intact version (by their manifests), before and after. */
  bytesBefore: number
  bytesAfter: number
  /** Least recently used first. */
  evicted: { agent: string; version: string; bytes: number; lastUsed: string }[]
  /** Still over maxBytes: what is left is what channels point to (never evicted). */
  overBudget: boolean
  warnings?: string[]
}

/**
 * When a version was last in use, from the audit log: finalized or pulled, a channel moved to it, or a
 * channel moved away from it (it served until then); its created_at when the log says nothing.
 */
function lastUsed(ctx: StoreContext): Map<string, string> {
  const used = new Map<string, string>()
  const touch = (agent: string, version: unknown, time: string): void => {
    if (typeof version !== 'string') return
    const k = `${agent}/${version}`
    if ((used.get(k) ?? '') < time) used.set(k, time)
  }
  for (const r of readAudit(ctx.root)) {
    if (r.agent === undefined) continue
    if (['finalize', 'pull', 'promote', 'rollback'].includes(r.op)) touch(r.agent, r.version, r.time)
    if (r.op === 'promote' || r.op === 'rollback') touch(r.agent, r.previous, r.time)
  }
  return used
}

/**
 * A bounded node cache: removes versions that no channel points to, least recently used first, until the
 * intact versions of the store hold at most maxBytes. Each agent's removals are made under its lock and
 * audited (`evict`); what channels point to is never removed, nor what `spare` names (the version a pull
 * has just brought), so the store may stay over (overBudget).
 */
export async function evict(ctx: StoreContext, options: { maxBytes: number; dryRun?: boolean; spare?: { agent: string; version: string }[] }): Promise<EvictResult> {
  const { maxBytes } = options
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) throw new UsageError(`--max-bytes must be a whole number of bytes >= 0, got ${maxBytes}`, { code: 'INVALID_SIZE' })
  const warnings: string[] = []
  const used = lastUsed(ctx)
  const candidates: EvictResult['evicted'] = []
  let total = 0
  for (const agent of storeRootExists(ctx.root) ? await listAgents(ctx) : []) {
    const pinned = new Set(channelStates(ctx, agent).map((c) => c.version).filter(Boolean))
    for (const info of await versionInfos(ctx, agent)) {
      if (info.manifestError || info.bytes === null) continue
      total += info.bytes
      if (!pinned.has(info.version) && !options.spare?.some((x) => x.agent === agent && x.version === info.version)) candidates.push({ agent, version: info.version, bytes: info.bytes, lastUsed: used.get(`${agent}/${info.version}`) ?? info.created_at })
    }
  }
  candidates.sort((a, b) => (a.lastUsed < b.lastUsed ? -1 : a.lastUsed > b.lastUsed ? 1 : 0))
  const evicted: EvictResult['evicted'] = []
  let after = total
  for (const c of candidates) {
    if (after <= maxBytes) break
    evicted.push(c)
    after -= c.bytes
  }
  for (const c of evicted) await assertRemovable(ctx.versionDir(c.agent, c.version), { what: `${c.agent}/${c.version}`, op: 'evict', details: { agent: c.agent, version: c.version } })
  if (!options.dryRun) {
    const byAgent = new Map<string, EvictResult['evicted']>()
    for (const c of evicted) byAgent.set(c.agent, [...(byAgent.get(c.agent) ?? []), c])
    for (const [name, list] of byAgent) {
      const agent = writerAgent(ctx, name)
      await withLock(ctx, agent, { op: 'evict' }, async () => {
        // A channel may have moved to one of them since it was planned: that one stays.
        const pinned = new Set(channelStates(ctx, agent).map((c) => c.version).filter(Boolean))
        const gone = list.filter((c) => !pinned.has(c.version))
        const versionsDir = join(ctx.agentDir(agent), 'versions')
        for (const c of gone) await discardVersion(versionsDir, c.version)
        await fsyncDir(versionsDir)
        for (const c of list.filter((x) => pinned.has(x.version))) {
          evicted.splice(evicted.indexOf(c), 1)
          after += c.bytes
        }
        if (gone.length > 0) auditDone(ctx.root, { op: 'evict', agent, removed: gone.map((c) => c.version), maxBytes }, `${agent}: ${gone.map((c) => c.version).join(', ')} evicted`, warnings)
      })
    }
  }
  return { maxBytes, dryRun: Boolean(options.dryRun), bytesBefore: total, bytesAfter: after, evicted, overBudget: after > maxBytes, ...(warnings.length ? { warnings } : {}) }
}

const DEFAULT_GC_MS = 24 * 3600 * 1000

/**
 * Removes all but the newest `keep` versions with an intact manifest, never one that a channel points to,
 * never a directory it cannot judge, and never the agent's last intact version.
 */
export async function prune(ctx: StoreContext, name: string, options: { keep?: number; dryRun?: boolean } = {}): Promise<PruneResult> {
  const agent = writerAgent(ctx, name)
  const keep = options.keep ?? loadConfig().store?.keep ?? 3
  if (!Number.isSafeInteger(keep) || keep < 0) {
    throw new UsageError(`--keep must be a whole number >= 0, got ${keep}`, { code: 'INVALID_KEEP', hint: 'For example --keep 3.' })
  }
  requireAgent(ctx, agent)
  const work = async (): Promise<PruneResult> => {
    const warnings: string[] = []
    const infos = await versionInfos(ctx, agent)
    // Only a version whose manifest says it is this agent's version is judged (by its created_at); anything
    // else in versions/ is left alone and named: prune cannot tell what it is, so it neither counts it as
    // the newest nor deletes it.
    const intact = infos.filter((i) => !i.manifestError).reverse()
    const unrecognised = infos.filter((i) => i.manifestError).map((i) => ({ version: i.version, problem: i.manifestError! }))
    const channels = channelStates(ctx, agent)
    const brokenChannels = channels.filter((c) => c.problem).map((c) => ({ channel: c.channel, problem: c.problem! }))
    const protectedSet = new Set(channels.map((c) => c.version).filter((v): v is string => Boolean(v)))
    const kept: string[] = []
    const removed: string[] = []
    intact.forEach((info, i) => (i < keep || protectedSet.has(info.version) ? kept : removed).push(info.version))
    // A dangling current and --keep 0 would leave nothing to point it at again. The one kept then is
    // verified (files hashed), newest first: keeping a damaged version while removing the last good one
    // would be no safety at all. Only if none verifies is the newest by manifest kept.
    let lastIntact: string | undefined
    if (kept.length === 0 && removed.length > 0) {
      for (const v of removed) {
        if ((await verifyVersion(ctx, agent, v)).ok) {
          lastIntact = v
          break
        }
      }
      lastIntact ??= removed[0]!
      removed.splice(removed.indexOf(lastIntact), 1)
      kept.push(lastIntact)
    }
    const versionsDir = join(ctx.agentDir(agent), 'versions')
    // Versions are read-only: only their owner or root can remove them (discard.ts). Every one is checked
    // before the first is touched, so a refusal changes nothing; a dry run says so too.
    for (const v of removed) await assertRemovable(join(versionsDir, v), { what: `${agent}/${v}`, op: 'prune', details: { agent, version: v } })
    if (!options.dryRun && removed.length > 0) {
      for (const v of removed) {
        const doomed = await discardVersion(versionsDir, v)
        log(`prune ${agent}: renamed ${join(versionsDir, v)} -> ${doomed}, then removed it`)
      }
      await fsyncDir(versionsDir)
      auditDone(ctx.root, { op: 'prune', agent, removed, kept, keep }, `${agent}: ${removed.join(', ')} removed`, warnings)
    }
    return {
      agent, keep, dryRun: Boolean(options.dryRun), removed, kept, protected: [...protectedSet].sort(),
      ...(lastIntact ? { lastIntact } : {}), unrecognised, brokenChannels, ...(warnings.length > 0 ? { warnings } : {}),
    }
  }
  return options.dryRun ? work() : withLock(ctx, agent, { op: 'prune' }, work)
}

/**
 * Removes temporary links and staging directories in which nothing changed (by ctime) for longer than olderThanMs (0: all) of
 * every agent whose lock it can take (a live finalize holds its agent's lock; that agent is skipped), and
 * the work directories abandoned pulls left as long.
 */
export async function gc(ctx: StoreContext, options: { olderThan?: string | number; olderThanMs?: number } = {}): Promise<GcResult> {
  // olderThan as in the CLI ("24h", "30m", "0") or milliseconds; olderThanMs is the same in milliseconds.
  const olderThanMs = typeof options.olderThan === 'string' ? parseDuration(options.olderThan) : options.olderThan ?? options.olderThanMs ?? DEFAULT_GC_MS
  if (!Number.isFinite(olderThanMs) || olderThanMs < 0) {
    throw new UsageError(`older-than must be >= 0, got ${olderThanMs}`, { code: 'INVALID_DURATION', hint: 'For example --older-than 24h.' })
  }
  const result: GcResult = { olderThanMs, removed: [], skipped: [] }
  if (!storeRootExists(ctx.root)) return result
  const now = Date.now()
  // Every agent whose lock can be taken is locked and planned first, and every tree gc would remove is
  // checked (a staging directory or prune leftover of another account may not be removable by this one),
  // so that a refusal changes nothing at all; then everything planned is removed.
  const plans: { agent: WriterAgent; lock: HeldLock; plan: GcPlan }[] = []
  try {
    // listAgents lists agent directories only: an alias (a link to another agent) is no entry of its own
    // here, so gc never removes anything through one; its agent is cleaned under its own name.
    for (const name of await listAgents(ctx)) {
      let agent: WriterAgent
      try {
        agent = writerAgent(ctx, name)
      } catch (err) {
        // Made an alias since it was listed: not gc's to clean.
        if (!(err instanceof ModelforgeError)) throw err
        log(`gc: skipped ${name}: ${err.message}`)
        continue
      }
      let lock: HeldLock
      try {
        lock = acquireLock(ctx.root, agent, { op: 'gc' })
      } catch (err) {
        if (err instanceof ConflictError) {
          result.skipped.push({ agent, reason: err.message })
          continue
        }
        throw err
      }
      const entry: (typeof plans)[number] = { agent, lock, plan: { links: [], trees: [] } }
      plans.push(entry) // first, so that the lock is released even when planning fails
      entry.plan = await gcPlan(ctx, agent, now, olderThanMs)
    }
    for (const { agent, plan } of plans) {
      for (const t of plan.trees) {
        const rel = relative(ctx.root, t.path)
        await assertRemovable(t.path, t.kind === 'pruned'
          ? { what: `${rel} (what an interrupted prune or delete left)`, op: 'gc', details: { agent } }
          : { what: `the staging directory ${rel}`, op: 'gc', why: 'only its owner or root may remove what it holds (its directories are not writable for this account)', details: { agent } })
      }
    }
    for (const p of removeStaleLockTemps(ctx.root)) {
      result.removed.push({ path: p, kind: 'lock-temp' })
      log(`gc: removed lock-temp ${p}`)
    }
    for (const p of await removeAbandonedPulls(ctx.root, now, olderThanMs)) {
      result.removed.push({ path: p, kind: 'pull' })
      log(`gc: removed pull ${p}`)
    }
    for (const { agent, plan } of plans) {
      const agentDir = ctx.agentDir(agent)
      const versionsDir = join(agentDir, 'versions')
      const removedHere: string[] = []
      for (const p of plan.links) {
        await rm(p, { force: true })
        log(`gc ${agent}: removed temp-link ${p}`)
        result.removed.push({ path: p, kind: 'temp-link' })
        removedHere.push(p)
      }
      for (const t of plan.trees) {
        await removeTree(t.path)
        log(`gc ${agent}: removed ${t.kind} ${t.path}`)
        result.removed.push(t)
        removedHere.push(t.path)
      }
      if (removedHere.length > 0) {
        await fsyncDir(agentDir)
        if (await exists(versionsDir)) await fsyncDir(versionsDir)
        auditDone(ctx.root, { op: 'gc', agent, removed: removedHere }, `${agent}: ${removedHere.length} leftovers removed`, result.warnings ??= [])
      }
    }
  } finally {
    for (const { lock } of plans) lock.release()
  }
  return result
}

/**
 * The work directories of `store pull` (.modelforge/pulls/<digest>/: partial and verified blobs of a pull
 * that failed or was killed and never rerun) in which nothing changed for olderThanMs, each removed under
 * its pull lock, so that a running pull keeps its own (a live holder: skipped).
 */
async function removeAbandonedPulls(root: string, now: number, olderThanMs: number): Promise<string[]> {
  const pulls = pullsDir(root)
  const removed: string[] = []
  // A pull killed between taking its lock and making its directory leaves the lock alone: both are names.
  const digests = new Set((await readdirIfExists(pulls)).map((n) => n.replace(/\.lock$/, '')).filter((n) => PULL_NAME.test(n)))
  for (const name of digests) {
    const dir = join(pulls, name)
    const attempt = tryPullLock(dir, 'gc')
    if (!attempt.lock) {
      log(`gc: kept ${dir}: a pull of it runs`)
      continue
    }
    try {
      if (!(await exists(dir))) continue // the lock, released below, was all there was
      if (olderThanMs > 0 && now - (await lastChange(dir)) < olderThanMs) continue
      await removeTree(dir)
      removed.push(dir)
    } finally {
      attempt.lock.release()
    }
  }
  if (removed.length > 0) await fsyncDir(pulls)
  return removed
}

interface GcPlan {
  /** Temporary links in the agent directory. */
  links: string[]
  /** Staging directories and prune leftovers in versions/. */
  trees: { path: string; kind: 'staging' | 'pruned' }[]
}

/** What gc removes of one agent (whose lock it holds); nothing is changed. */
async function gcPlan(ctx: StoreContext, agent: string, now: number, olderThanMs: number): Promise<GcPlan> {
  const agentDir = ctx.agentDir(agent)
  const plan: GcPlan = { links: [], trees: [] }
  for (const name of await readdir(agentDir)) {
    if (!name.startsWith(TEMP_LINK_PREFIX) || !name.endsWith(TEMP_SUFFIX)) continue
    const p = join(agentDir, name)
    if ((await lstat(p)).isSymbolicLink()) plan.links.push(p)
  }
  const versionsDir = join(agentDir, 'versions')
  for (const name of await readdirIfExists(versionsDir)) {
    if (!name.endsWith(TEMP_SUFFIX)) continue
    const p = join(versionsDir, name)
    // A prune leftover is a version already being deleted (its files are old, so age says nothing):
    // always removed. A staging dir only once nothing in it changed for olderThanMs (see lastChange).
    const doomed = name.startsWith(PRUNE_PREFIX)
    if (!doomed && olderThanMs > 0 && now - (await lastChange(p)) < olderThanMs) continue
    plan.trees.push({ path: p, kind: doomed ? 'pruned' : 'staging' })
  }
  return plan
}

/**
 * When anything in a staging directory last changed: the newest ctime (or mtime, if one is in the future)
 * of the directory and everything under it. Not the mtimes alone: a tree copied in with `cp -a` or
 * `rsync -a`, or moved into place with `mv`, keeps the mtimes it had, days old, and would look abandoned
 * the moment it was staged. ctime is set by the kernel on every change, the copy or move included, and no
 * tool sets it back. A marker file written by stage was the other way; it would have to be kept out of the
 * version, would be lost when a writer replaces the directory, and would be absent from staging
 * directories made by hand.
 */
async function lastChange(path: string): Promise<number> {
  const st = await lstat(path)
  let newest = Math.max(st.ctimeMs, st.mtimeMs)
  if (st.isDirectory()) {
    for (const e of await walkTree(path)) newest = Math.max(newest, e.ctimeMs, e.mtimeMs)
  }
  return newest
}
