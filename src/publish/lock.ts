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
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { ConflictError, errnoCode } from '../lib/errors.js'

export interface LockInfo {
  pid: number
  host: string
  started_at: string
  agent: string
  op: string
  version?: string
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
  try {
    process.kill(info.pid, 0)
    return true
  } catch (err) {
    return errnoCode(err) === 'EPERM'
  }
}

function createExclusive(path: string, content: string): boolean {
  let fd: number
  try {
    fd = openSync(path, 'wx')
  } catch (err) {
    if (errnoCode(err) === 'EEXIST') return false
    throw err
  }
  try {
    writeSync(fd, content)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  return true
}

function ageMs(path: string): number {
  try {
    return Date.now() - statSync(path).mtimeMs
  } catch {
    return 0
  }
}

/** Removes the lock at `path` if it still holds exactly `raw` (the dead holder's record). */
function takeOver(path: string, raw: string): void {
  const mutex = `${path}.takeover`
  if (!createExclusive(mutex, String(process.pid))) {
    if (ageMs(mutex) > TAKEOVER_STALE_MS) unlinkSync(mutex)
    return
  }
  try {
    let now: string | null = null
    try {
      now = readFileSync(path, 'utf8')
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw err
    }
    if (now === raw) unlinkSync(path)
  } finally {
    unlinkSync(mutex)
  }
}

/** Takes the writer lock of `agent` or throws ConflictError naming the live holder. */
export function acquireLock(root: string, agent: string, what: { op: string; version?: string }): HeldLock {
  const path = lockPath(root, agent)
  mkdirSync(join(root, '.modelforge', 'locks'), { recursive: true })
  const info: LockInfo = { pid: process.pid, host: hostname(), started_at: new Date().toISOString(), agent, op: what.op }
  if (what.version) info.version = what.version
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
      // an empty lock file left by a crash between open and write
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
