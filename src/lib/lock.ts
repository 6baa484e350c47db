/**
 * Lock files between processes: the store's per-agent writer lock (publish/lock.ts, fails at once when
 * held) and the hub cache's per-blob lock (hub/lock.ts, waits). Hand-written because Node has no flock(2)
 * and no lock library is among our dependencies.
 *
 * - A lock is a file created exclusively, holding its holder's record: pid, host, start time, a random
 *   token and the caller's fields. The record is written to a private temporary file and hard-linked into
 *   place: link(2) is as exclusive as O_EXCL and the lock appears with its content, so a crash never
 *   leaves a lock of ours empty or half written.
 * - A holder on this host is dead when its pid no longer runs, or runs with another start time: a pid is
 *   reused (a container restarted after a crash often gets the same small pid again, even this very
 *   process's). A holder on another host cannot be checked and is treated as live.
 * - Two processes may find the same dead holder at once. The takeover is serialised by a second exclusive
 *   file (<lock>.takeover), and inside it the lock is removed only if it still holds exactly the dead
 *   holder's record, so a live lock is never removed by mistake.
 * - release() removes the lock only while it holds this holder's record (its token): a lock taken over
 *   from a holder wrongly judged dead is not removed by that holder.
 */
import { randomBytes } from 'node:crypto'
import { closeSync, fsyncSync, linkSync, openSync, readdirSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs'
import { hostname } from 'node:os'
import { dirname, join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { errnoCode } from './errors.js'
import { ensureDirSync, tempTail, withPath } from './fs.js'

export interface LockHolder {
  pid: number
  host: string
  /**
   * The holder's start time in clock ticks since boot (/proc/<pid>/stat field 22), where /proc exists:
   * monotonic, so no wall-clock step changes it. Absent from records of older versions and other systems.
   */
  proc_start?: string
  token?: string
  [key: string]: unknown
}

export interface FileLock<R extends LockHolder = LockHolder> {
  path: string
  /** The record this process wrote. */
  info: R
  release(): void
}

export interface LockFileOptions {
  /** The caller's fields of the holder record (besides pid, host, proc_start and token). */
  record?: Record<string, unknown>
  /**
   * fsync the record before it is linked in. Without it, a power loss can leave the lock file empty,
   * which is then judged like any unreadable one (see emptyIsFree).
   */
  durable?: boolean
  /**
   * Take an empty lock file at once. Otherwise an empty or unreadable one is stale only once older than
   * STALE_MS (it could be another tool's lock being written).
   */
  emptyIsFree?: boolean
}

export type LockAttempt<R extends LockHolder = LockHolder> =
  | { lock: FileLock<R> }
  /** holder: the live holder, or null for an unreadable lock too young to judge; contended: every round lost to other takers. */
  | { lock?: undefined; holder: LockHolder | null; contended: boolean }

export interface WaitOptions extends LockFileOptions {
  timeoutMs: number
  pollMs: number
  /** The error thrown when the lock is still held after timeoutMs. */
  onTimeout: (holder: LockHolder | null) => Error
}

/** A takeover mutex or an unreadable lock older than this belongs to a process that died writing it. */
const STALE_MS = 30_000
/** Rounds of take-over-and-retry before tryLock gives up to other takers. */
const ROUNDS = 5

/** Start time of a process in clock ticks since boot, or null (no /proc, no such process). */
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

/** Signal 0 checks existence without signalling; EPERM means it exists under another user. */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return errnoCode(err) === 'EPERM'
  }
}

/**
 * Whether a holder may still be running. Without `host`, the holder is a process of this host (a pid in a
 * temporary name); without `proc_start`, the pid alone decides.
 */
export function holderAlive(holder: { pid: number; host?: string; proc_start?: string }): boolean {
  if (holder.host !== undefined && holder.host !== hostname()) return true
  if (!processAlive(holder.pid)) return false
  if (typeof holder.proc_start === 'string') {
    const now = procStartTicks(holder.pid)
    if (now !== null && now !== holder.proc_start) return false
  }
  return true
}

function isHolder(value: unknown): value is LockHolder {
  const v = value as LockHolder
  return typeof v === 'object' && v !== null && Number.isSafeInteger(v.pid) && v.pid > 0 && typeof v.host === 'string'
}

/** The lock file's content and, when it is a holder record, that record; null when there is no lock. */
export function readLockFile(path: string): { holder: LockHolder | null; raw: string } | null {
  const raw = readIfExists(path)
  if (raw === null) return null
  let parsed: unknown
  try {
    parsed = JSON.parse(raw)
  } catch {
    parsed = null
  }
  return { holder: isHolder(parsed) ? parsed : null, raw }
}

let ownStart: string | null | undefined
function holderRecord(fields: Record<string, unknown> = {}): LockHolder {
  ownStart ??= procStartTicks(process.pid)
  return { pid: process.pid, host: hostname(), ...fields, ...(ownStart ? { proc_start: ownStart } : {}), token: randomBytes(8).toString('hex') }
}

/**
 * Creates `path` holding `content`, failing (false) when it exists: the content is written to a private
 * temporary file (O_EXCL) and hard-linked into place (see above).
 */
function createExclusive(path: string, content: string, durable: boolean): boolean {
  const temp = `${path}${tempTail()}`
  const fd = openSync(temp, 'wx')
  try {
    writeSync(fd, content)
    if (durable) fsyncSync(fd)
  } catch (err) {
    // A full disk: the temporary file goes, and the error names the lock that could not be taken.
    closeSync(fd)
    unlinkSync(temp)
    throw withPath(err, path)
  }
  closeSync(fd)
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

/** Removes the temporary files of processes killed inside createExclusive (their pid is in the name). */
export function removeStaleLockTemps(dir: string): string[] {
  const removed: string[] = []
  let names: string[]
  try {
    names = readdirSync(dir)
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return removed
    throw err
  }
  for (const name of names) {
    const m = /-(\d+)-[0-9a-f]{8}\.tmp$/.exec(name)
    if (!m || holderAlive({ pid: Number(m[1]) })) continue
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
 * another host, after STALE_MS). Two processes finding the same dead mutex at the same instant could both
 * remove it; that needs a crash inside a takeover racing two other takers, and its worst case is one more
 * round, since the lock itself is still only removed when it holds the dead record.
 */
function takeOver(path: string, raw: string, durable: boolean): void {
  const mutex = `${path}.takeover`
  const mine = JSON.stringify(holderRecord())
  if (!createExclusive(mutex, mine, durable)) {
    const held = readLockFile(mutex)
    if ((held?.holder && !holderAlive(held.holder)) || ageMs(mutex) > STALE_MS) unlinkIfExists(mutex)
    return
  }
  try {
    // unlinkIfExists: only a mutex wrongly broken as stale (see above) lets another process get here too.
    if (readIfExists(path) === raw) unlinkIfExists(path)
  } finally {
    if (readIfExists(mutex) === mine) unlinkIfExists(mutex)
  }
}

function attempt<R extends LockHolder>(path: string, info: R, options: LockFileOptions): LockAttempt<R> {
  const durable = options.durable ?? false
  const content = JSON.stringify(info) + '\n'
  let holder: LockHolder | null = null
  for (let round = 0; round < ROUNDS; round++) {
    if (createExclusive(path, content, durable)) {
      return {
        lock: {
          path,
          info,
          release() {
            if (readIfExists(path) === content) unlinkIfExists(path)
          },
        },
      }
    }
    const held = readLockFile(path)
    if (!held) continue
    holder = held.holder
    const stale = held.holder ? !holderAlive(held.holder) : (options.emptyIsFree === true && held.raw === '') || ageMs(path) > STALE_MS
    if (!stale) return { holder: held.holder, contended: false }
    takeOver(path, held.raw, durable)
  }
  return { holder, contended: true }
}

/** Takes the lock if it is free or its holder is dead; otherwise says who holds it. Never waits. */
export function tryLock<R extends LockHolder = LockHolder>(path: string, options: LockFileOptions = {}): LockAttempt<R> {
  ensureDirSync(dirname(path))
  return attempt(path, holderRecord(options.record) as R, options)
}

/** Takes the lock, polling while a live holder has it; throws onTimeout(holder) after timeoutMs. */
export async function waitForLock<R extends LockHolder = LockHolder>(path: string, options: WaitOptions): Promise<FileLock<R>> {
  ensureDirSync(dirname(path))
  const info = holderRecord(options.record) as R
  const started = Date.now()
  for (;;) {
    const result = attempt(path, info, options)
    if (result.lock) return result.lock
    if (Date.now() - started > options.timeoutMs) throw options.onTimeout(result.holder)
    await sleep(options.pollMs)
  }
}
