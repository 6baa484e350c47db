/**
 * The per-agent writer lock, .modelforge/locks/<agent>.lock: a file created with O_EXCL holding the
 * holder's pid, host and start time. A second writer gets a ConflictError (exit 5) naming the holder.
 *
 * A lock whose holder is on this host and no longer runs (killed, crashed) is taken over. Two processes
 * may find the same dead holder at once; the takeover itself is serialised by a second O_EXCL file
 * (<agent>.lock.takeover), and inside it the lock is removed only if it still holds the dead holder's
 * record, so a live lock is never removed by mistake. A holder on another host cannot be checked and is
 * treated as live.
 */
import { randomBytes } from 'node:crypto'
import { closeSync, fsyncSync, linkSync, mkdirSync, openSync, readdirSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { ConflictError, errnoCode } from '../lib/errors.js'
import { TEMP_SUFFIX } from '../lib/fs.js'
import { processAlive } from '../lib/process.js'

export interface LockInfo {
  pid: number
  host: string
  started_at: string
  agent: string
  op: string
  version?: string
  /**
   * The holder's start time in clock ticks since boot (/proc/<pid>/stat field 22), where /proc exists. A
   * pid is reused (a container restarted after a crash often gets the same small pid again, even this very
   * process's): a live process whose start time differs is not the holder.
   */
  proc_start?: string
}

export interface HeldLock {
  path: string
  info: LockInfo
  release(): void
}

/** A takeover mutex older than this belongs to a process that died inside the takeover. */
const TAKEOVER_STALE_MS = 30_000

export function lockPath(root: string, agent: string): string {
  return join(root, '.modelforge', 'locks', `${agent}.lock`)
}

export function readLock(root: string, agent: string): { info: LockInfo | null; raw: string } | null {
  let raw: string
  try {
    raw = readFileSync(lockPath(root, agent), 'utf8')
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return null
    throw err
  }
  try {
    return { info: JSON.parse(raw) as LockInfo, raw }
  } catch {
    // created but not yet written (or torn by a crash between open and write)
    return { info: null, raw }
  }
}

/** Whether the holder may still be running. Only a holder on this host can be proven dead. */
export function holderAlive(info: LockInfo): boolean {
  if (info.host !== hostname()) return true
  if (!processAlive(info.pid)) return false
  if (typeof info.proc_start === 'string') {
    const now = procStartTicks(info.pid)
    if (now !== null && now !== info.proc_start) return false
  }
  return true
}

/** Start time of a process in clock ticks since boot (monotonic: no wall-clock step changes it), or null. */
export function procStartTicks(pid: number): string | null {
  let stat: string
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  } catch {
    return null
  }
  // The command name (field 2) is in parentheses and may hold spaces: count fields after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const ticks = fields[22 - 3]
  return ticks && /^\d+$/.test(ticks) ? ticks : null
}

/**
 * Creates `path` holding `content`, failing (false) when it exists. The content is written to a private
 * temporary file (O_EXCL) and hard-linked into place: link(2) is as exclusive as O_EXCL and the lock appears
 * with its content, so a crash can never leave an empty lock whose holder is unknown.
 */
function createExclusive(path: string, content: string): boolean {
  const temp = `${path}-${process.pid}-${randomBytes(4).toString('hex')}${TEMP_SUFFIX}`
  const fd = openSync(temp, 'wx')
  try {
    writeSync(fd, content)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  try {
    linkSync(temp, path)
    return true
  } catch (err) {
    if (errnoCode(err) === 'EEXIST') return false
    throw err
  } finally {
    unlinkSync(temp)
  }
}

/** Removes temporary lock files left by processes killed inside createExclusive (pid in the name). */
export function removeStaleLockTemps(root: string): string[] {
  const dir = join(root, '.modelforge', 'locks')
  const removed: string[] = []
  let names: string[]
  try {
    names = readdirSync(dir)
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return removed
    throw err
  }
  for (const name of names) {
    const m = /\.lock(?:\.takeover)?-(\d+)-[0-9a-f]{8}\.tmp$/.exec(name)
    if (!m) continue
    if (holderAlive({ pid: Number(m[1]), host: hostname() } as LockInfo)) continue
    try {
      unlinkSync(join(dir, name))
      removed.push(join(dir, name))
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw err
    }
  }
  return removed
}

function ageMs(path: string): number {
  try {
    return Date.now() - statSync(path).mtimeMs
  } catch {
    return 0
  }
}

function readIfExists(path: string): string | null {
  try {
    return readFileSync(path, 'utf8')
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return null
    throw err
  }
}

function unlinkIfExists(path: string): void {
  try {
    unlinkSync(path)
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw err
  }
}

/**
 * Removes the lock at `path` if it still holds exactly `raw` (the dead holder's record). A takeover mutex
 * left by a process killed inside this function is removed once its holder is gone (or, for a holder on
 * another host, after TAKEOVER_STALE_MS). Two processes finding the same dead mutex at the same instant
 * could both remove it; that needs a crash inside a takeover racing two other writers, and its worst case
 * is one more retry round, since the lock itself is still only removed when it holds the dead record.
 */
function takeOver(path: string, raw: string): void {
  const mutex = `${path}.takeover`
  const mine = JSON.stringify({ pid: process.pid, host: hostname() })
  if (!createExclusive(mutex, mine)) {
    let holder: LockInfo | null = null
    try {
      holder = JSON.parse(readFileSync(mutex, 'utf8')) as LockInfo
    } catch {
      holder = null
    }
    if ((holder && !holderAlive(holder)) || ageMs(mutex) > TAKEOVER_STALE_MS) unlinkIfExists(mutex)
    return
  }
  try {
    let now: string | null = null
    try {
      now = readFileSync(path, 'utf8')
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw err
    }
    // unlinkIfExists: only a mutex wrongly broken as stale (see above) lets another process get here too.
    if (now === raw) unlinkIfExists(path)
  } finally {
    if (readIfExists(mutex) === mine) unlinkIfExists(mutex)
  }
}

/** Takes the writer lock of `agent` or throws ConflictError naming the live holder. */
export function acquireLock(root: string, agent: string, what: { op: string; version?: string }): HeldLock {
  const path = lockPath(root, agent)
  mkdirSync(join(root, '.modelforge', 'locks'), { recursive: true })
  const info: LockInfo = { pid: process.pid, host: hostname(), started_at: new Date().toISOString(), agent, op: what.op }
  if (what.version) info.version = what.version
  const start = procStartTicks(process.pid)
  if (start) info.proc_start = start
  const content = JSON.stringify(info) + '\n'
  for (let attempt = 0; attempt < 5; attempt++) {
    if (createExclusive(path, content)) {
      return {
        path,
        info,
        release() {
          const held = readLock(root, agent)
          if (held && held.raw === content) unlinkSync(path)
        },
      }
    }
    const held = readLock(root, agent)
    if (!held) continue
    if (held.info && !holderAlive(held.info)) {
      takeOver(path, held.raw)
      continue
    }
    if (!held.info && ageMs(path) > TAKEOVER_STALE_MS) {
      // unreadable content (written by hand or by another tool): treated as stale once old enough
      takeOver(path, held.raw)
      continue
    }
    const h = held.info
    const who = h ? `process ${h.pid} on host ${h.host} (${h.op}${h.version ? ` ${h.version}` : ''}, since ${h.started_at})` : 'a process that is writing the lock file'
    throw new ConflictError(`Agent ${agent} is locked by ${who}`, {
      code: 'LOCKED',
      hint: `Wait for that process to finish. If it no longer runs on ${h?.host ?? 'its host'}, remove ${path}.`,
      details: { lock: path, holder: h },
    })
  }
  throw new ConflictError(`Could not take the lock of agent ${agent}: other writers keep taking it`, {
    code: 'LOCKED',
    hint: 'Retry when the other writers are done.',
    details: { lock: path },
  })
}
