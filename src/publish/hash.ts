/**
 * Streaming SHA-256 of many files on several cores.
 *
 * Each worker thread reads a file through one reused 1 MiB buffer (memory stays constant whatever the file
 * size) and feeds node:crypto, which is OpenSSL's SHA-256 (SHA-NI where the CPU has it), so one worker hashes
 * as fast as `openssl dgst -sha256`. Files are handed out largest first to whichever worker is free, which
 * keeps both cores busy until the end. The worker also fsyncs the file through the descriptor it already has
 * open, so finalize opens every file once.
 *
 * The worker source is an inline script (eval) rather than a module file: it needs node built-ins only, and
 * runs the same from dist/ and from the sources, without the tsx loader a .ts worker file would start first.
 */
import { availableParallelism } from 'node:os'
import { IntegrityError, InternalError } from '../lib/errors.js'
import { HASH_CHUNK as CHUNK, hashOpenFlags, sha256File } from '../lib/hash.js'
import { startThread, ThreadExitError, type Thread } from '../lib/worker.js'

export interface HashInput {
  /** Absolute path to read. */
  path: string
  /** Path relative to the version directory, reported back and used in errors. */
  rel: string
  /** Size from lstat, used for scheduling only. */
  size?: number
}

export interface HashOutput {
  rel: string
  size: number
  sha256: string
}

export interface HashOptions {
  /** Worker threads; default min(available cores, 4), at least 2. */
  threads?: number
  /** fsync each file after reading it. */
  fsync?: boolean
  /** Below this many bytes in total, hash on the main thread (starting workers costs more). */
  inlineBelow?: number
  onProgress?: (bytesDone: number) => void
}

/**
 * The tree is checked (lstat) before hashing, but a writer could swap a file for a symlink or a fifo in
 * between: the flags refuse a symlink and keep a fifo from blocking, and the fstat of the open descriptor
 * refuses anything but a regular file (as lib/hash.ts does on the calling thread). So what is hashed is
 * what gets published.
 */
const OPEN_FLAGS = hashOpenFlags(false)

const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads')
const { openSync, readSync, fsyncSync, closeSync, fstatSync, constants } = require('node:fs')
const { createHash } = require('node:crypto')
const buf = Buffer.allocUnsafe(${CHUNK})
parentPort.on('message', ({ id, path, fsync }) => {
  let fd
  try {
    fd = openSync(path, ${OPEN_FLAGS})
    if (!fstatSync(fd).isFile()) throw Object.assign(new Error('not a regular file'), { code: 'ENOTFILE' })
    const h = createHash('sha256')
    let size = 0
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null)
      if (n === 0) break
      h.update(n === buf.length ? buf : buf.subarray(0, n))
      size += n
      if (size % (64 * ${CHUNK}) === 0) parentPort.postMessage({ id, progress: size })
    }
    if (fsync) fsyncSync(fd)
    parentPort.postMessage({ id, size, sha256: h.digest('hex') })
  } catch (err) {
    parentPort.postMessage({ id, error: { code: err.code, message: err.message } })
  } finally {
    if (fd !== undefined) try { closeSync(fd) } catch {}
  }
})
`

/** The error for a file of the staged tree that cannot be read (finalize's copies say it the same way). */
export function unreadable(rel: string, error: { code?: string; message: string }): IntegrityError {
  if (error.code === 'ELOOP' || error.code === 'ENOTFILE') {
    return new IntegrityError(`${rel} is no longer a regular file (it was replaced while being hashed)`, {
      code: 'UNSUPPORTED_FILE_TYPE',
      hint: 'Let the writer finish before finalizing; only regular files and directories can be published.',
      details: { path: rel, errno: error.code },
    })
  }
  return new IntegrityError(`Cannot read ${rel}: ${error.message}`, {
    code: 'UNREADABLE_FILE',
    hint: 'Make every file of the staged tree readable by this user (check permissions), then finalize again.',
    details: { path: rel, errno: error.code },
  })
}

/** SHA-256 and size of one file, streamed on the calling thread. */
export async function hashFile(path: string, options: { fsync?: boolean; rel?: string } = {}): Promise<HashOutput> {
  const rel = options.rel ?? path
  try {
    return { rel, ...(await sha256File(path, { fsync: options.fsync })) }
  } catch (err) {
    throw unreadable(rel, err as { code?: string; message: string })
  }
}

/** Hashes every file; results come back in the order of `files`. */
export async function hashFiles(files: HashInput[], options: HashOptions = {}): Promise<HashOutput[]> {
  if (files.length === 0) return []
  const total = files.reduce((a, f) => a + (f.size ?? 0), 0)
  const inlineBelow = options.inlineBelow ?? 8 * CHUNK
  const threads = Math.max(1, Math.min(options.threads ?? Math.max(2, Math.min(availableParallelism(), 4)), files.length))
  if (total < inlineBelow || threads === 1) {
    const out: HashOutput[] = []
    let done = 0
    for (const f of files) {
      out.push(await hashFile(f.path, { fsync: options.fsync, rel: f.rel }))
      done += out[out.length - 1]!.size
      options.onProgress?.(done)
    }
    return out
  }
  return hashOnWorkers(files, threads, options)
}

type WorkerMessage = { id: number; progress?: number; size?: number; sha256?: string; error?: { code?: string; message: string } }

function hashOnWorkers(files: HashInput[], threads: number, options: HashOptions): Promise<HashOutput[]> {
  // Largest first: the last file to start is a small one, so no core idles while another hashes a big file.
  const order = files.map((_, i) => i).sort((a, b) => (files[b]!.size ?? 0) - (files[a]!.size ?? 0))
  const results: HashOutput[] = new Array(files.length)
  const progress = new Map<number, number>()
  let doneBytes = 0
  let next = 0
  let finished = 0
  const workers: Thread[] = []
  return new Promise<HashOutput[]>((resolvePromise, reject) => {
    let failed = false
    const fail = (err: unknown): void => {
      if (failed) return
      failed = true
      for (const w of workers) void w.stop()
      reject(err)
    }
    const dispatch = (w: Thread): void => {
      if (next >= order.length) {
        void w.stop()
        return
      }
      const id = order[next++]!
      w.post({ id, path: files[id]!.path, fsync: Boolean(options.fsync) })
    }
    const onMessage = (w: Thread, msg: WorkerMessage): void => {
      if (failed) return
      const f = files[msg.id]!
      if (msg.error) return fail(unreadable(f.rel, msg.error))
      if (msg.progress !== undefined) {
        progress.set(msg.id, msg.progress)
        options.onProgress?.(doneBytes + [...progress.values()].reduce((a, b) => a + b, 0))
        return
      }
      progress.delete(msg.id)
      doneBytes += msg.size!
      results[msg.id] = { rel: f.rel, size: msg.size!, sha256: msg.sha256! }
      options.onProgress?.(doneBytes + [...progress.values()].reduce((a, b) => a + b, 0))
      if (++finished === files.length) {
        for (const x of workers) void x.stop()
        resolvePromise(results)
      } else dispatch(w)
    }
    const threadFailed = (err: Error): void =>
      fail(err instanceof ThreadExitError ? new InternalError(`A hashing thread exited unexpectedly (code ${err.exitCode})`, { code: 'INTERNAL', hint: 'Rerun; if it happens again, report it with the file sizes involved.' }) : err)
    for (let t = 0; t < threads; t++) {
      const w: Thread = startThread<WorkerMessage>(WORKER_SOURCE, { name: 'hashing thread', onFailure: threadFailed, onMessage: (msg) => onMessage(w, msg) })
      workers.push(w)
      dispatch(w)
    }
  })
}
