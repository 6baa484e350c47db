/**
 * The TensorRT timing cache a build reads and extends: one file per TensorRT version and GPU model,
 * <root>/<version>/<gpu slug>/timing.cache, shared by every build on the machine.
 *
 * How concurrent builds share it. trtexec of TensorRT 8.6 and later takes an exclusive lockf(3) lock on
 * `<cache>.lock` while it loads the file, and again while it saves, when it merges what is on disk with
 * what its own build learnt (samples/common FileLock, updateTimingCacheFile: "Trying to set exclusive file
 * lock" in a verbose log). So the keyed file is handed to trtexec directly ("shared"): builds never lose
 * each other's entries, and the argument list names the same file every time. Two cases cannot work so
 * and build with a copy in the staging directory instead ("staged"), written back afterwards under
 * lib/lock.ts's lock:
 * - the GPU is not known before the build (no nvidia-smi, and this trtexec never reported its device):
 *   the key is only learnt from the build's log; the copy starts empty;
 * - a trtexec older than 8.6, which writes the file without a lock: the copy starts from the keyed file.
 * The write-back cannot merge (only TensorRT can read the format): the larger file wins, since a cache
 * only grows from what it was loaded with, and the lock makes the compare-and-replace one step. A lost
 * write-back costs the next build some timing, never correctness; it never fails a build.
 */
import { copyFile, rename, rm, stat } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { errnoCode } from '../lib/errors.js'
import { ensureDir, tempTail } from '../lib/fs.js'
import { waitForLock } from '../lib/lock.js'
import { gpuSlug } from './gpu.js'
import { atLeast } from './trtexec-version.js'
import type { DeviceInfo, TrtVersion } from './types.js'

/** The name of a staged cache inside the staging directory (removed before the output is committed). */
export const STAGED_CACHE = 'timing.cache'

export interface TimingCachePlan {
  /** The --timingCacheFile value: the keyed file (shared), or STAGED_CACHE relative to the staging directory. */
  argvFile: string
  mode: 'shared' | 'staged'
  /** The keyed file, when the GPU is known before the build. */
  keyed?: string
  /** Why the build uses a staged copy. */
  reason?: 'gpu-unknown' | 'no-trtexec-lock'
}

export interface TimingCacheOutcome {
  /** Where the cache lives after the build (undefined when it could not be placed). */
  file?: string
  mode: TimingCachePlan['mode']
  /** What happened to a staged copy; `shared`: trtexec wrote the keyed file itself. */
  action: 'shared' | 'created' | 'replaced' | 'kept-existing' | 'none'
  warning?: string
}

export function timingCacheFile(root: string, version: TrtVersion, device: Pick<DeviceInfo, 'name' | 'computeCapability'>): string {
  return join(root, version.text, gpuSlug(device), 'timing.cache')
}

/** How the build names its timing cache; touches nothing (the dry run uses it too). */
export function planTimingCache(root: string, version: TrtVersion, device: DeviceInfo | undefined): TimingCachePlan {
  if (!device) return { argvFile: STAGED_CACHE, mode: 'staged', reason: 'gpu-unknown' }
  const keyed = timingCacheFile(root, version, device)
  if (!atLeast(version, 8, 6)) return { argvFile: STAGED_CACHE, mode: 'staged', keyed, reason: 'no-trtexec-lock' }
  return { argvFile: keyed, mode: 'shared', keyed }
}

async function sizeOf(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).size
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined
    throw err
  }
}

/** Before the build: the keyed directory exists for trtexec to write in, or the staged copy is seeded. */
export async function prepareTimingCache(plan: TimingCachePlan, staging: string): Promise<void> {
  if (plan.mode === 'shared') {
    await ensureDir(dirname(plan.keyed!))
    return
  }
  if (plan.keyed && (await sizeOf(plan.keyed)) !== undefined) await copyFile(plan.keyed, join(staging, STAGED_CACHE))
}

const LOCK_WAIT_MS = 30_000

/**
 * After a build that succeeded: a staged cache goes to its keyed place (the GPU the log reported, or the
 * one known before), replacing a smaller one; the staged file is removed either way so that it never
 * reaches the output directory. Failures become a warning.
 */
export async function settleTimingCache(
  plan: TimingCachePlan, o: { root: string; version: TrtVersion; staging: string; device?: DeviceInfo },
): Promise<TimingCacheOutcome> {
  if (plan.mode === 'shared') return { file: plan.keyed, mode: 'shared', action: 'shared' }
  const staged = join(o.staging, STAGED_CACHE)
  try {
    const ours = await sizeOf(staged)
    const device = o.device
    const keyed = plan.keyed ?? (device ? timingCacheFile(o.root, o.version, device) : undefined)
    if (ours === undefined) return { file: keyed, mode: 'staged', action: 'none' }
    if (!keyed) return { mode: 'staged', action: 'none', warning: 'trtexec reported no device, so its timing cache could not be filed under a GPU and was dropped' }
    await ensureDir(dirname(keyed))
    const lock = await waitForLock(`${keyed}.modelforge-lock`, {
      timeoutMs: LOCK_WAIT_MS,
      pollMs: 50,
      record: { op: 'timing-cache write-back' },
      onTimeout: (holder) => new Error(`the timing cache lock ${keyed}.modelforge-lock is held${holder ? ` by pid ${holder.pid}` : ''}`),
    })
    try {
      const theirs = await sizeOf(keyed)
      if (theirs !== undefined && theirs >= ours) return { file: keyed, mode: 'staged', action: 'kept-existing' }
      // The staging directory may sit on another filesystem than the cache: copy beside the target, then
      // rename, so readers never see half a file.
      const tmp = `${keyed}${tempTail()}`
      try {
        await copyFile(staged, tmp)
        await rename(tmp, keyed)
      } catch (err) {
        await rm(tmp, { force: true })
        throw err
      }
      return { file: keyed, mode: 'staged', action: theirs === undefined ? 'created' : 'replaced' }
    } finally {
      lock.release()
    }
  } catch (err) {
    return { mode: 'staged', action: 'none', warning: `the timing cache was not saved: ${(err as Error).message}` }
  } finally {
    await rm(staged, { force: true })
  }
}
