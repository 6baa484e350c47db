/**
 * Downloads one blob into blobs/<id>: into blobs/<id>.incomplete first, resumed with an HTTP Range request
 * when a previous attempt (or a killed process) left one, verified (size, then sha256 for LFS files or the
 * git blob sha1 for the others) and only then renamed into place. Callers hold the blob's lock.
 *
 * Node's fetch (undici) is used directly rather than @huggingface/hub's downloadFile: the library's
 * WebBlob stream always starts at byte 0 (no Range resume), and its downloadFileToCacheDir keeps no
 * partial file and checks no hash. Reading the body with a reader and writing it in 1 MiB batches keeps
 * memory constant whatever the file size.
 */
import { createHash, type Hash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { mkdir, open, rename, rm, stat, type FileHandle } from 'node:fs/promises'
import { dirname } from 'node:path'
import { errnoCode, IntegrityError } from '../lib/errors.js'
import { RetryableError, type HubHttp } from './http.js'

export interface BlobRequest {
  http: HubHttp
  /** The /resolve/<commit>/<path> URL. */
  url: string
  /** Repo-relative path, for messages. */
  path: string
  blobPath: string
  size: number
  /** sha256 for LFS files, git-sha1 (of "blob <size>\0" + content) for the others. */
  algorithm: 'sha256' | 'git-sha1'
  /** The expected digest, i.e. the blob id. */
  expected: string
  /** Progress: bytes added to the partial file (negative when it is restarted). */
  onBytes?: (delta: number) => void
  /** Abort a body that sends nothing for this long, then resume (default 60 s). */
  stallTimeoutMs?: number
  /** Stops the download (the partial file stays for a later resume). */
  signal?: AbortSignal
}

export interface BlobResult {
  /** Bytes received over the network for this blob. */
  downloaded: number
  /** Size of the partial file this fetch resumed from (0: started from scratch). */
  resumedFrom: number
  /** The blob was already in the cache. */
  reused: boolean
  /** sha256 of the content (computed for every downloaded file; for LFS files it is the blob id). */
  sha256?: string
}

// Small enough that a killed fetch loses little of what it received, large enough to keep syscalls few.
const BATCH = 1024 * 1024

class Hashers {
  readonly main: Hash
  readonly sha256: Hash
  constructor(readonly req: BlobRequest) {
    if (req.algorithm === 'git-sha1') {
      this.main = createHash('sha1').update(`blob ${req.size}\0`)
      this.sha256 = createHash('sha256')
    } else {
      this.main = createHash('sha256')
      this.sha256 = this.main
    }
  }
  update(chunk: Uint8Array): void {
    this.main.update(chunk)
    if (this.sha256 !== this.main) this.sha256.update(chunk)
  }
}

function stripEtag(value: string | null): string | undefined {
  return value ? value.replace(/^W\//, '').replace(/"/g, '') : undefined
}

/** Feeds the existing partial file to the hashers; returns its length (0 when absent or too long). */
async function hashPartial(partial: string, size: number, hashers: Hashers): Promise<number> {
  let length: number
  try {
    length = (await stat(partial)).size
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return 0
    throw err
  }
  if (length > size) {
    await rm(partial, { force: true })
    return 0
  }
  for await (const chunk of createReadStream(partial, { highWaterMark: 1024 * 1024 })) hashers.update(chunk as Buffer)
  return length
}

export async function downloadBlob(req: BlobRequest): Promise<BlobResult> {
  try {
    const s = await stat(req.blobPath)
    // Blobs only ever get their name after verification (ours or huggingface_hub's), so a size check is enough.
    if (s.isFile() && s.size === req.size) return { downloaded: 0, resumedFrom: 0, reused: true, sha256: req.algorithm === 'sha256' ? req.expected : undefined }
    await rm(req.blobPath, { force: true })
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw err
  }

  const partial = `${req.blobPath}.incomplete`
  await mkdir(dirname(req.blobPath), { recursive: true })
  let hashers = new Hashers(req)
  let offset = await hashPartial(partial, req.size, hashers)
  const resumedFrom = offset
  if (offset > 0) req.onBytes?.(offset)
  let downloaded = 0
  const fh = await open(partial, offset > 0 ? 'r+' : 'w')
  let closed = false
  try {
    const restart = async (): Promise<void> => {
      await fh.truncate(0)
      req.onBytes?.(-offset)
      offset = 0
      hashers = new Hashers(req)
    }
    await req.http.withRetry(req.url, async () => {
      if (offset === req.size) return
      const headers: Record<string, string> = { 'Accept-Encoding': 'identity' }
      if (offset > 0) headers.Range = `bytes=${offset}-`
      const controller = new AbortController()
      const signal = req.signal ? AbortSignal.any([req.signal, controller.signal]) : controller.signal
      const res = await req.http.send(req.url, { headers, signal })
      if (res.status === 416 && offset > 0) {
        await res.body?.cancel()
        await restart()
        throw new RetryableError('Range not satisfiable; restarting from byte 0')
      }
      await req.http.check(res, req.url)
      const served = res.headers.get('x-repo-commit') ? stripEtag(res.headers.get('x-linked-etag') ?? res.headers.get('etag')) : undefined
      if (served && served !== req.expected) {
        await res.body?.cancel()
        throw new IntegrityError(`The Hub serves ${req.path} as blob ${served}, but its listing says ${req.expected}`, {
          code: 'HASH_MISMATCH',
          hint: 'The repository changed during the fetch or the endpoint is inconsistent; rerun the fetch.',
          details: { path: req.path, expected: req.expected, served },
        })
      }
      if (res.status === 206) {
        const m = /^bytes (\d+)-/.exec(res.headers.get('content-range') ?? '')
        if (!m || Number(m[1]) !== offset) {
          await res.body?.cancel()
          await restart()
          throw new RetryableError('Unexpected Content-Range; restarting from byte 0')
        }
      } else if (offset > 0) {
        // The server ignored the Range header and sends the whole file.
        await restart()
      }
      downloaded += await receive(res, controller, req, fh, () => offset, (n, chunk) => {
        hashers.update(chunk)
        offset += n
      })
      if (offset < req.size) throw new RetryableError(`Body of ${req.path} ended at byte ${offset} of ${req.size}`)
    }, req.signal)

    const digest = hashers.main.digest('hex')
    const sha256 = hashers.sha256 === hashers.main ? digest : hashers.sha256.digest('hex')
    if (digest !== req.expected) {
      await fh.close()
      closed = true
      await rm(partial, { force: true })
      req.onBytes?.(-offset)
      throw new IntegrityError(`${req.path}: downloaded content does not match its ${req.algorithm === 'sha256' ? 'sha256' : 'git blob sha1'} (got ${digest}, expected ${req.expected})`, {
        code: 'HASH_MISMATCH',
        hint: 'The download was corrupted in transit or the Hub listing is wrong; the partial file was removed. Rerun the fetch.',
        details: { path: req.path, expected: req.expected, actual: digest, algorithm: req.algorithm },
      })
    }
    await fh.sync()
    await fh.close()
    closed = true
    await rename(partial, req.blobPath)
    await syncDir(dirname(req.blobPath))
    return { downloaded, resumedFrom, reused: false, sha256 }
  } catch (err) {
    // Bytes that failed verification are never kept for a resume.
    if (err instanceof IntegrityError) {
      if (!closed) await fh.close().catch(() => undefined)
      closed = true
      await rm(partial, { force: true })
    }
    throw err
  } finally {
    if (!closed) await fh.close().catch(() => undefined)
  }
}

/**
 * Streams a body into the partial file at the current offset. Bytes are hashed as they arrive and written in
 * batches with one write in flight; on any error the batch is flushed first, so the file always holds
 * exactly the bytes hashed (a retry then resumes from there).
 */
async function receive(
  res: Response,
  controller: AbortController,
  req: BlobRequest,
  fh: FileHandle,
  offsetNow: () => number,
  accept: (n: number, chunk: Uint8Array) => void,
): Promise<number> {
  if (!res.body) throw new RetryableError('Response without a body')
  const reader = res.body.getReader()
  const stallMs = req.stallTimeoutMs ?? 60_000
  let timer = setTimeout(() => controller.abort(), stallMs)
  let received = 0
  let batch: Uint8Array[] = []
  let batchBytes = 0
  let batchStart = offsetNow()
  let inFlight: Promise<unknown> = Promise.resolve()
  const flush = async (): Promise<void> => {
    await inFlight
    if (batchBytes === 0) return
    const buf = batch.length === 1 ? batch[0]! : Buffer.concat(batch, batchBytes)
    const at = batchStart
    batch = []
    batchStart += batchBytes
    batchBytes = 0
    inFlight = fh.write(buf, 0, buf.length, at)
  }
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      clearTimeout(timer)
      timer = setTimeout(() => controller.abort(), stallMs)
      if (offsetNow() + value.length > req.size) {
        throw new IntegrityError(`${req.path}: the Hub sent more than the ${req.size} bytes listed`, {
          code: 'SIZE_MISMATCH',
          hint: 'The repository changed during the fetch or the endpoint is inconsistent; rerun the fetch.',
          details: { path: req.path, expected: req.size },
        })
      }
      accept(value.length, value)
      received += value.length
      req.onBytes?.(value.length)
      batch.push(value)
      batchBytes += value.length
      if (batchBytes >= BATCH) await flush()
    }
  } catch (err) {
    await reader.cancel().catch(() => undefined)
    throw err
  } finally {
    clearTimeout(timer)
    await flush()
    await inFlight
  }
  return received
}

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r')
  try {
    await fh.sync()
  } finally {
    await fh.close()
  }
}
