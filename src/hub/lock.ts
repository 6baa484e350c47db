/**
 * A per-blob lock between processes (lib/lock.ts): <cache>/.locks/models--org--name/<blob>.lock, the path
 * Python's huggingface_hub uses for the same blob. A second fetch of the blob waits for the first, so each
 * blob is downloaded once; the lock of a fetch killed with SIGKILL is taken over.
 *
 * Python's filelock uses flock on the same path, which does not exclude us (or vice versa): concurrent
 * modelforge processes are serialised, a concurrent Python download of the same blob is not (both would
 * write blobs/<id>.incomplete: our hash check rejects a mix, Python's download does not check). filelock
 * leaves its (flock-ed) lock file behind, empty, after every download: its existence says nothing about a
 * download in progress, so an empty lock file is taken at once (ours are never empty, see lib/lock.ts).
 */
import { ConflictError } from '../lib/errors.js'
import { waitForLock } from '../lib/lock.js'

export interface LockOptions {
  /** How long to wait for another process's lock before giving up (default 10 minutes). */
  timeoutMs?: number
  pollMs?: number
}

export interface Lock {
  release(): Promise<void>
}

export async function acquireLock(path: string, options: LockOptions = {}): Promise<Lock> {
  const lock = await waitForLock(path, {
    timeoutMs: options.timeoutMs ?? 10 * 60_000,
    pollMs: options.pollMs ?? 100,
    emptyIsFree: true,
    // No fsync: the lock is taken while other blobs download on this thread, and an fsync can wait for
    // their dirty pages; a lock left empty by a power loss is taken at once anyway (emptyIsFree).
    durable: false,
    onTimeout: (owner) =>
      new ConflictError(`Timed out waiting for the lock ${path}${owner ? ` held by pid ${owner.pid} on ${owner.host}` : ''}`, {
        code: 'LOCK_HELD',
        hint: 'Another fetch of the same file is running; wait for it, or remove the lock file if its process is gone.',
        details: { lock: path, owner: owner ?? undefined },
      }),
  })
  return { release: async () => lock.release() }
}
