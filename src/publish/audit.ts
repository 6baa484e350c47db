/** The store's audit log, .modelforge/audit.jsonl: one record per write operation (see lib/audit.ts). */
import { hostname } from 'node:os'
import { join } from 'node:path'
import { appendJsonLine, currentUser, readJsonLines } from '../lib/audit.js'
import { debugLog } from '../lib/debug.js'
import { emitStoreChange } from './changes.js'

const log = debugLog('store')

export type AuditOp = 'finalize' | 'promote' | 'rollback' | 'prune' | 'gc' | 'delete' | 'init' | 'push' | 'pull' | 'evict'

export interface AuditRecord {
  time: string
  op: AuditOp
  agent?: string
  version?: string
  channel?: string
  /** The version the channel pointed to before (null: none). */
  previous?: string | null
  /** prune: the versions removed. gc: the paths removed. */
  removed?: string[]
  user: string
  host: string
  pid: number
  [key: string]: unknown
}

export function auditPath(root: string): string {
  return join(root, '.modelforge', 'audit.jsonl')
}

export function appendAudit(root: string, entry: Omit<AuditRecord, 'time' | 'user' | 'host' | 'pid'>): AuditRecord {
  const record = { time: new Date().toISOString(), ...entry, user: currentUser(), host: hostname(), pid: process.pid } as AuditRecord
  // The store's log is appended to by every trainer of the store's group (store init).
  appendJsonLine(auditPath(root), record, { shared: true })
  log(`audit: ${entry.op} ${entry.agent ?? ''}${entry.version ? `/${entry.version}` : ''} appended to ${auditPath(root)}`)
  emitStoreChange({ root, record })
  return record
}

/**
 * Appends the record of a change that is already made (a version renamed into place, a channel moved). Its
 * failure (a full disk, a read-only log) must not make the command read as if nothing happened: the
 * change stands, and the failure becomes a warning saying what was done and what was not recorded.
 */
export function auditDone(root: string, entry: Omit<AuditRecord, 'time' | 'user' | 'host' | 'pid'>, done: string, warnings: string[]): void {
  try {
    appendAudit(root, entry)
  } catch (err) {
    // The change is made even though its record is not: whoever indexes the store must still hear of it.
    emitStoreChange({ root, record: { time: new Date().toISOString(), ...entry, user: currentUser(), host: hostname(), pid: process.pid } as AuditRecord })
    warnings.push(`${done}, but its audit record could not be written to ${auditPath(root)} (${(err as Error).message}); \`store rollback\` will not know of this change`)
  }
}

/** Every complete record, oldest first (optionally of one agent). */
export function readAudit(root: string, agent?: string): AuditRecord[] {
  const all = readJsonLines<AuditRecord>(auditPath(root))
  return agent ? all.filter((r) => r.agent === agent) : all
}
