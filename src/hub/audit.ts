/**
 * The cache's audit log, <cache>/.modelforge/audit.jsonl: one JSON object per fetch that downloaded
 * anything (source, commit, bytes, hashes). Each entry is written with a single append (O_APPEND), so
 * concurrent fetches never interleave inside a line.
 */
import { appendFile, mkdir } from 'node:fs/promises'
import { userInfo } from 'node:os'
import { join } from 'node:path'

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

export function auditLogPath(cacheDir: string): string {
  return join(cacheDir, '.modelforge', 'audit.jsonl')
}

function currentUser(): string | undefined {
  try {
    return userInfo().username
  } catch {
    return undefined
  }
}

export async function appendAudit(cacheDir: string, entry: AuditEntry): Promise<void> {
  const file = auditLogPath(cacheDir)
  await mkdir(join(cacheDir, '.modelforge'), { recursive: true })
  const line = JSON.stringify({ time: new Date().toISOString(), ...entry, user: currentUser(), pid: process.pid }) + '\n'
  await appendFile(file, line, { flag: 'a' })
}
