/**
 * The cache's audit log, <cache>/.modelforge/audit.jsonl: one JSON object per fetch that downloaded
 * anything (source, commit, bytes, hashes), written as the store's is (lib/audit.ts: one append, fsynced).
 */
import { join } from 'node:path'
import { appendJsonLine, currentUser, readJsonLines } from '../lib/audit.js'

export interface AuditFile {
  path: string
  size: number
  blob: string
  sha256?: string
  downloaded: boolean
}

export interface AuditEntry {
  event: 'fetch'
  repo: string
  revision: string
  commit: string
  endpoint: string
  bytesDownloaded: number
  files: AuditFile[]
}

export interface AuditRecord extends AuditEntry {
  time: string
  user: string
  pid: number
}

export function auditLogPath(cacheDir: string): string {
  return join(cacheDir, '.modelforge', 'audit.jsonl')
}

export async function appendAudit(cacheDir: string, entry: AuditEntry): Promise<void> {
  appendJsonLine(auditLogPath(cacheDir), { time: new Date().toISOString(), ...entry, user: currentUser(), pid: process.pid })
}

/** Every complete record, oldest first. */
export function readAudit(cacheDir: string): AuditRecord[] {
  return readJsonLines<AuditRecord>(auditLogPath(cacheDir))
}
