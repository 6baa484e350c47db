/**
 * A per-blob lock between processes: <cache>/.locks/models--org--name/<blob>.lock, the path Python's
 * huggingface_hub uses for the same blob. Hand-written because Node has no flock(2) and no lock library
 * is among our dependencies: the lock file is created with O_EXCL and holds our pid and host; a waiter that
 * finds the owner dead (same host, pid gone) breaks it, so a fetch killed with SIGKILL never blocks the
 * next one. Python's filelock uses flock on the same path, which does not exclude us (or vice versa):
 * concurrent modelforge processes are serialised, a concurrent Python download of the same blob is not
 * (both would write blobs/<id>.incomplete: our hash check rejects a mix, Python's download does not check).
 */
import { randomBytes } from 'node:crypto'
import { link, mkdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises'
import { hostname } from 'node:os'
import { dirname } from 'node:path'
import { ConflictError, errnoCode } from '../lib/errors.js'
import { sleep } from './http.js'
import { processAlive } from '../lib/process.js'

export interface LockOptions {
  /** How long to wait for another process's lock before giving up (default 10 minutes). */
  timeoutMs?: number
  pollMs?: number
}

export interface Lock {
  release(): Promise<void>
}

interface Owner {
  pid: number
  host: string
  token: string
}


async function ageMs(path: string): Promise<number> {
  try {
    return Date.now() - (await stat(path)).mtimeMs
  } catch {
    return 0
  }
}

async function isEmpty(path: string): Promise<boolean> {
  try {
    return (await stat(path)).size === 0
  } catch {
    return false
  }
}

async function readOwner(path: string): Promise<Owner | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as Owner
  } catch {
    return undefined
  }
}

/**
 * Breaks a lock whose owner is dead. Two waiters may decide that at once; renaming the file away is atomic,
 * so only one of them takes it, and if what it took turns out to be a fresh lock (the other waiter already
 * broke the stale one and locked again), it is put back with link(), which never overwrites.
 */
async function breakStale(path: string, stale: Owner): Promise<void> {
  const aside = `${path}.${randomBytes(4).toString('hex')}.stale`
  try {
    await rename(path, aside)
  } catch {
    return
  }
  const taken = await readOwner(aside)
  if (taken?.token !== stale.token && taken !== undefined) await link(aside, path).catch(() => undefined)
  await unlink(aside).catch(() => undefined)
}

export async function acquireLock(path: string, options: LockOptions = {}): Promise<Lock> {
  const timeoutMs = options.timeoutMs ?? 10 * 60_000
  const pollMs = options.pollMs ?? 100
  const me: Owner = { pid: process.pid, host: hostname(), token: randomBytes(8).toString('hex') }
  await mkdir(dirname(path), { recursive: true })
  const started = Date.now()
  for (;;) {
    // The owner record is written aside and linked into place (link() never overwrites), so a lock file of
    // ours is never seen empty. An empty file is Python's: filelock leaves its (flock-ed) lock file behind
    // after every download, and its existence says nothing about a download in progress.
    const tmp = `${path}.${me.token}.tmp`
    await writeFile(tmp, JSON.stringify(me))
    try {
      await link(tmp, path)
      return {
        release: async () => {
          const owner = await readOwner(path)
          if (owner?.token === me.token) await unlink(path).catch(() => undefined)
        },
      }
    } catch (err) {
      if (errnoCode(err) !== 'EEXIST') throw err
    } finally {
      await unlink(tmp).catch(() => undefined)
    }
    const owner = await readOwner(path)
    if (owner && owner.host === me.host && !processAlive(owner.pid)) {
      await breakStale(path, owner)
      continue
    }
    // No owner record: huggingface_hub's leftover (see above), or a file damaged by hand; an unreadable
    // record (being replaced right now by a breaker's link) gets a moment before it is judged.
    if (!owner && (await isEmpty(path) || (await ageMs(path)) > 30_000)) {
      await breakStale(path, { pid: 0, host: '', token: '' })
      continue
    }
    if (Date.now() - started > timeoutMs) {
      throw new ConflictError(`Timed out waiting for the lock ${path}${owner ? ` held by pid ${owner.pid} on ${owner.host}` : ''}`, {
        code: 'LOCK_HELD',
        hint: 'Another fetch of the same file is running; wait for it, or remove the lock file if its process is gone.',
        details: { lock: path, owner },
      })
    }
    await sleep(pollMs)
  }
}
