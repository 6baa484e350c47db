/**
 * Hashing of a blob as it is written: sha256, or the git blob sha1 ("blob <size>\0" + content) plus a
 * sha256 for the result. Small files are hashed inline from the bytes written; large ones in a worker
 * thread that reads back each range once it is in the file (from the page cache), so that hashing runs on
 * another core than the network and disk I/O of the main thread (curl-like throughput on a 1 GiB file;
 * see bench/fetch.bench.ts). Either way, what is hashed is exactly what the file holds.
 */
import { createHash, type Hash } from 'node:crypto'
import { readChunks } from './hash.js'
import { startThread, type Thread } from './worker.js'

export type HashAlgorithm = 'sha256' | 'git-sha1'

export interface Digests {
  /** The digest of `algorithm`, i.e. the expected blob id. */
  digest: string
  sha256: string
}

export interface BlobHasher {
  /** Bytes [0, length) already in the file (a resumed partial). */
  prefix(length: number): Promise<void>
  /** The pieces of `data`, one after another from `start`, were just written. */
  written(start: number, data: readonly Uint8Array[]): void
  finish(): Promise<Digests>
  dispose(): Promise<void>
}

/** Files at least this large are hashed in a worker thread. */
export const WORKER_MIN_BYTES = 32 * 1024 * 1024

class InlineHasher implements BlobHasher {
  private readonly main: Hash
  private readonly sha: Hash
  constructor(
    private readonly path: string,
    algorithm: HashAlgorithm,
    size: number,
  ) {
    this.main = algorithm === 'git-sha1' ? createHash('sha1').update(`blob ${size}\0`) : createHash('sha256')
    this.sha = algorithm === 'git-sha1' ? createHash('sha256') : this.main
  }
  async prefix(length: number): Promise<void> {
    if (length === 0) return
    await readChunks(this.path, (chunk) => this.written(0, [chunk]), { length })
  }
  written(_start: number, data: readonly Uint8Array[]): void {
    for (const d of data) {
      this.main.update(d)
      if (this.sha !== this.main) this.sha.update(d)
    }
  }
  async finish(): Promise<Digests> {
    const digest = this.main.digest('hex')
    return { digest, sha256: this.sha === this.main ? digest : this.sha.digest('hex') }
  }
  async dispose(): Promise<void> {}
}

// CommonJS source evaluated in the worker, so it works the same from src/ (tsx) and dist/.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads')
const { createHash } = require('node:crypto')
const { openSync, readSync, closeSync } = require('node:fs')
let main, sha, fd
const buf = Buffer.allocUnsafe(1 << 20)
parentPort.on('message', (m) => {
  try {
    if (m.type === 'init') {
      main = createHash(m.algorithm === 'git-sha1' ? 'sha1' : 'sha256')
      if (m.algorithm === 'git-sha1') { main.update('blob ' + m.size + '\\0'); sha = createHash('sha256') }
      fd = openSync(m.path, 'r')
    } else if (m.type === 'range') {
      let pos = m.start
      while (pos < m.end) {
        const n = readSync(fd, buf, 0, Math.min(buf.length, m.end - pos), pos)
        if (n <= 0) throw new Error('short read at byte ' + pos + ' of ' + m.path)
        const c = n === buf.length ? buf : buf.subarray(0, n)
        main.update(c)
        if (sha) sha.update(c)
        pos += n
      }
    } else if (m.type === 'finish') {
      closeSync(fd)
      const digest = main.digest('hex')
      parentPort.postMessage({ type: 'digest', digest, sha256: sha ? sha.digest('hex') : digest })
    }
  } catch (err) {
    parentPort.postMessage({ type: 'error', message: String((err && err.message) || err) })
  }
})
`

class WorkerHasher implements BlobHasher {
  private readonly thread: Thread
  private readonly result: Promise<Digests>
  constructor(path: string, algorithm: HashAlgorithm, size: number) {
    let thread: Thread | undefined
    this.result = new Promise<Digests>((resolve, reject) => {
      thread = startThread<{ type: string; digest: string; sha256: string; message: string }>(WORKER_SOURCE, {
        name: 'hashing worker',
        onMessage: (m) => {
          if (m.type === 'digest') resolve({ digest: m.digest, sha256: m.sha256 })
          else reject(new Error(`hashing ${path} failed: ${m.message}`))
        },
        onFailure: reject,
      })
    })
    this.thread = thread!
    // A failure is reported by finish(); keep an early one from being an unhandled rejection.
    this.result.catch(() => undefined)
    this.thread.post({ type: 'init', path, algorithm, size })
  }
  async prefix(length: number): Promise<void> {
    if (length > 0) this.thread.post({ type: 'range', start: 0, end: length })
  }
  written(start: number, data: readonly Uint8Array[]): void {
    // One message for the whole batch: the worker reads the range back from the file.
    this.thread.post({ type: 'range', start, end: start + data.reduce((n, d) => n + d.length, 0) })
  }
  async finish(): Promise<Digests> {
    this.thread.post({ type: 'finish' })
    try {
      return await this.result
    } finally {
      await this.dispose()
    }
  }
  async dispose(): Promise<void> {
    await this.thread.stop()
  }
}

export function createHasher(path: string, algorithm: HashAlgorithm, size: number, workerMinBytes = WORKER_MIN_BYTES): BlobHasher {
  return size >= workerMinBytes ? new WorkerHasher(path, algorithm, size) : new InlineHasher(path, algorithm, size)
}
