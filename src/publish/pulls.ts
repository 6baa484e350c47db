/**
 * Where `store pull` keeps an artifact's blobs while it downloads them: .modelforge/pulls/<hex digest>/,
 * guarded by the lock beside it (<hex digest>.lock, lib/lock.ts). The pull holds that lock from before
 * the directory exists until it is removed; `store gc` takes it before removing an abandoned one, so a
 * running pull keeps its own.
 */
import { join } from 'node:path'
import { tryLock, type LockAttempt } from '../lib/lock.js'

/** A digest as pulls name their directories: its 64 hex digits. */
export const PULL_NAME = /^[0-9a-f]{64}$/

export function pullsDir(root: string): string {
  return join(root, '.modelforge', 'pulls')
}

/** The work directory of the pull of `digest` (sha256:<hex>). */
export function pullWorkDir(root: string, digest: string): string {
  return join(pullsDir(root), digest.slice('sha256:'.length))
}

/** The lock of a pull's work directory, taken if free or its holder is dead; never waits. */
export function tryPullLock(work: string, op: string, details: Record<string, unknown> = {}): LockAttempt & { path: string } {
  const path = `${work}.lock`
  return { ...tryLock(path, { record: { op, ...details }, durable: true }), path }
}
