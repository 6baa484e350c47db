/**
 * Small tmpfs mounts, for tests that need a full or a read-only filesystem, or a second filesystem. Only
 * root can mount; tmpfs() returns null where this machine cannot, and the tests skip with that reason.
 */
import { spawnSync } from 'node:child_process'
import { makeTemp } from './store-helpers.js'

export const asRoot = process.getuid?.() === 0
const mounts: string[] = []

/** A tmpfs of `size` (e.g. '1m') mounted on a new temp directory, or null when this machine cannot mount one. */
export function tmpfs(size: string, readOnly = false): string | null {
  if (!asRoot) return null
  const dir = makeTemp('mf-tmpfs-')
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size}${readOnly ? ',ro' : ''}`, 'tmpfs', dir])
  if (r.status !== 0) return null
  mounts.push(dir)
  return dir
}

/** Unmounts every tmpfs made here (call before removeTemps). */
export function unmountAll(): void {
  for (const m of mounts.splice(0)) spawnSync('umount', ['-l', m])
}
