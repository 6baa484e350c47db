/**
 * The per-agent writer lock, .modelforge/locks/<agent>.lock (lib/lock.ts). A second writer gets a
 * ConflictError (exit 5) naming the holder at once: store operations are short, and a caller (a CI job, a
 * service) decides itself whether to retry. The record is fsynced, so even a power loss leaves no lock
 * whose holder is unknown.
 */
import { dirname, join } from 'node:path'
import { debugLog } from '../lib/debug.js'
import { ConflictError } from '../lib/errors.js'
import { ensureDirSync } from '../lib/fs.js'
import { removeStaleLockTemps as removeTemps, tryLock, type FileLock, type LockHolder } from '../lib/lock.js'
import type { WriterAgent } from './store-context.js'

export interface LockInfo extends LockHolder {
  started_at: string
  agent: string
  op: string
  version?: string
}

export type HeldLock = FileLock<LockInfo>

const log = debugLog('store')

export function lockPath(root: string, agent: string): string {
  return join(root, '.modelforge', 'locks', `${agent}.lock`)
}

/** Removes temporary lock files left by processes killed while creating a lock (`store gc`). */
export function removeStaleLockTemps(root: string): string[] {
  return removeTemps(join(root, '.modelforge', 'locks'))
}

/**
 * Takes the writer lock of `agent` or throws ConflictError naming the live holder. The name comes from
 * writerAgent (store-context.ts): a lock is only ever taken under a real agent's name, never an alias's.
 */
export function acquireLock(root: string, agent: WriterAgent, what: { op: string; version?: string }): HeldLock {
  const path = lockPath(root, agent)
  // Made here rather than by tryLock, so that in a store a group shares (store init) every trainer of the
  // group may create locks in it, whoever made it first.
  ensureDirSync(dirname(path), { shared: true })
  const record = { started_at: new Date().toISOString(), agent, op: what.op, ...(what.version ? { version: what.version } : {}) }
  const result = tryLock<LockInfo>(path, { record, durable: true })
  if (result.lock) {
    const lock = result.lock
    const what = `(${record.op}${record.version ? ` ${record.version}` : ''})`
    log(`lock ${agent} taken ${what} by pid ${process.pid}: ${path}`)
    return {
      ...lock,
      release() {
        lock.release()
        log(`lock ${agent} released ${what}`)
      },
    }
  }
  if (result.contended) {
    throw new ConflictError(`Could not take the lock of agent ${agent}: other writers keep taking it`, {
      code: 'LOCKED',
      hint: 'Retry when the other writers are done.',
      details: { lock: path },
    })
  }
  const h = result.holder as LockInfo | null
  const who = h ? `process ${h.pid} on host ${h.host} (${h.op}${h.version ? ` ${h.version}` : ''}, since ${h.started_at})` : 'a process that is writing the lock file'
  throw new ConflictError(`Agent ${agent} is locked by ${who}`, {
    code: 'LOCKED',
    hint: `Wait for that process to finish. If it no longer runs on ${h?.host ?? 'its host'}, remove ${path}.`,
    details: { lock: path, holder: h },
  })
}
