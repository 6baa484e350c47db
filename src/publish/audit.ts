/**
 * The audit log, .modelforge/audit.jsonl: one JSON object per line, appended with a single write(2) on an
 * O_APPEND descriptor, so concurrent writers never interleave inside a line and a crash loses at most the
 * last line (a torn last line is skipped by readers).
 */
import { closeSync, fstatSync, fsyncSync, mkdirSync, openSync, readFileSync, readSync, writeSync } from 'node:fs'
import { hostname, userInfo } from 'node:os'
import { dirname, join } from 'node:path'
import { errnoCode, InternalError } from '../lib/errors.js'

export type AuditOp = 'finalize' | 'promote' | 'rollback' | 'prune' | 'gc'

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

function fsyncDirSync(dir: string): void {
  const fd = openSync(dir, 'r')
  try {
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}

export function auditPath(root: string): string {
  return join(root, '.modelforge', 'audit.jsonl')
}

function currentUser(): string {
  try {
    return userInfo().username
  } catch {
    return String(process.getuid?.() ?? 'unknown')
  }
}

export function appendAudit(root: string, entry: Omit<AuditRecord, 'time' | 'user' | 'host' | 'pid'>): AuditRecord {
  const record = { time: new Date().toISOString(), ...entry, user: currentUser(), host: hostname(), pid: process.pid } as AuditRecord
  const path = auditPath(root)
  mkdirSync(dirname(path), { recursive: true })
  const fd = openSync(path, 'a+')
  try {
    // A crash mid-append can leave a torn last line; start on a fresh line so this record stays whole.
    const size = fstatSync(fd).size
    const last = Buffer.alloc(1)
    const torn = size > 0 && readSync(fd, last, 0, 1, size - 1) === 1 && last[0] !== 0x0a
    const line = Buffer.from((torn ? '\n' : '') + JSON.stringify(record) + '\n', 'utf8')
    const n = writeSync(fd, line)
    if (n !== line.length) throw new InternalError(`Short write to ${path} (${n} of ${line.length} bytes)`)
    fsyncSync(fd)
    // The log was just created: make its directory entry durable too, or a power loss could drop the file.
    if (size === 0) fsyncDirSync(dirname(path))
  } finally {
    closeSync(fd)
  }
  return record
}

/** Every complete record, oldest first (optionally of one agent). */
export function readAudit(root: string, agent?: string): AuditRecord[] {
  let text: string
  try {
    text = readFileSync(auditPath(root), 'utf8')
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return []
    throw err
  }
  const out: AuditRecord[] = []
  for (const line of text.split('\n')) {
    if (!line.trim()) continue
    try {
      const r = JSON.parse(line) as AuditRecord
      if (!agent || r.agent === agent) out.push(r)
    } catch {
      // a line torn by a crash mid-append: nothing after it was written by that process
    }
  }
  return out
}
