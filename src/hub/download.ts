/**
 * Downloads one blob into blobs/<id>: into blobs/<id>.incomplete first, resumed with an HTTP Range request
 * when a previous attempt (or a killed process) left one, verified (size, then sha256 for LFS files or the
 * git blob sha1 for the others) and only then renamed into place. Callers hold the blob's lock.
 *
 * Not @huggingface/hub's downloadFile: its WebBlob stream always starts at byte 0 (no Range resume), and its
 * downloadFileToCacheDir keeps no partial file and checks no hash. The body is read with node:http (see
 * HubHttp.getStream) and written in 1 MiB batches (writev) with one write in flight, so memory stays constant
 * whatever the file size.
 */
import { open, rename, rm, stat } from 'node:fs/promises'
import { dirname } from 'node:path'
import { errnoCode, IntegrityError } from '../lib/errors.js'
import { ensureDir, fsyncDir } from '../lib/fs.js'
import { createHasher, type BlobHasher, type HashAlgorithm } from '../lib/blob-hasher.js'
import { receiveBody } from '../lib/blob-writer.js'
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
  algorithm: HashAlgorithm
  /** The expected digest, i.e. the blob id. */
  expected: string
  /** Progress: bytes added to the partial file (negative when it is restarted). */
  onBytes?: (delta: number) => void
  /** Abort a body that sends nothing for this long, then resume (default 60 s). */
  stallTimeoutMs?: number
  /** Stops the download (the partial file stays for a later resume). */
  signal?: AbortSignal
  /** Files from this size on are hashed in a worker thread (default hasher.WORKER_MIN_BYTES). */
  hashWorkerMinBytes?: number
  /** fsync the blob and blobs/ before and after the rename (survives a power loss, costs time). */
  durable?: boolean
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

/** The partial file's length, or 0 (removed) when it cannot be a prefix of the blob. */
async function partialLength(partial: string, size: number): Promise<number> {
  try {
    const length = (await stat(partial)).size
    if (length <= size) return length
    await rm(partial, { force: true })
    return 0
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return 0
    throw err
  }
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
  await ensureDir(dirname(req.blobPath))
  let offset = await partialLength(partial, req.size)
  const resumedFrom = offset
  const fh = await open(partial, offset > 0 ? 'r+' : 'w')
  const newHasher = (): BlobHasher => createHasher(partial, req.algorithm, req.size, req.hashWorkerMinBytes)
  let hasher = newHasher()
  let downloaded = 0
  let closed = false
  const close = async (): Promise<void> => {
    if (!closed) await fh.close().catch(() => undefined)
    closed = true
  }
  try {
    await hasher.prefix(offset)
    if (offset > 0) req.onBytes?.(offset)
    const restart = async (): Promise<void> => {
      await hasher.dispose()
      await fh.truncate(0)
      req.onBytes?.(-offset)
      offset = 0
      hasher = newHasher()
    }
    await req.http.withRetry(
      req.url,
      async () => {
        if (offset === req.size) return
        const headers: Record<string, string> = { 'Accept-Encoding': 'identity' }
        if (offset > 0) headers.Range = `bytes=${offset}-`
        const { res, served } = await req.http.getStream(req.url, headers, { signal: req.signal, idleTimeoutMs: req.stallTimeoutMs ?? 60_000 })
        if (res.statusCode === 416) {
          res.resume()
          await restart()
          throw new RetryableError('Range not satisfiable; restarting from byte 0')
        }
        if (served && served !== req.expected) {
          res.destroy()
          throw new IntegrityError(`The Hub serves ${req.path} as blob ${served}, but its listing says ${req.expected}`, {
            code: 'HASH_MISMATCH',
            hint: 'The repository changed during the fetch or the endpoint is inconsistent; rerun the fetch.',
            details: { path: req.path, expected: req.expected, served },
          })
        }
        if (res.statusCode === 206) {
          const m = /^bytes (\d+)-/.exec(String(res.headers['content-range'] ?? ''))
          if (!m || Number(m[1]) !== offset) {
            res.destroy()
            await restart()
            throw new RetryableError('Unexpected Content-Range; restarting from byte 0')
          }
        } else if (offset > 0) {
          // The server ignored the Range header and sends the whole file.
          await restart()
        }
        downloaded += await receiveBody(res, fh, offset, req.size, hasher, {
          onBytes: req.onBytes,
          setOffset: (end) => {
            offset = end
          },
          tooLong: () => new IntegrityError(`${req.path}: the Hub sent more than the ${req.size} bytes listed`, {
            code: 'SIZE_MISMATCH',
            hint: 'The repository changed during the fetch or the endpoint is inconsistent; rerun the fetch.',
            details: { path: req.path, expected: req.size },
          }),
        })
        if (offset < req.size) throw new RetryableError(`Body of ${req.path} ended at byte ${offset} of ${req.size}`)
      },
      req.signal,
    )

    const { digest, sha256 } = await hasher.finish()
    if (digest !== req.expected) {
      req.onBytes?.(-offset)
      throw new IntegrityError(
        `${req.path}: downloaded content does not match its ${req.algorithm === 'sha256' ? 'sha256' : 'git blob sha1'} (got ${digest}, expected ${req.expected})`,
        {
          code: 'HASH_MISMATCH',
          hint: 'The download was corrupted in transit or the Hub listing is wrong; the partial file was removed. Rerun the fetch.',
          details: { path: req.path, expected: req.expected, actual: digest, algorithm: req.algorithm },
        },
      )
    }
    // No fsync of the data, like huggingface_hub: it cost about 0.5 s per GiB here (a third of curl's time
    // for the whole download), and a process crash (the case that matters for a cache) loses nothing that
    // is in the page cache. After a power loss ext4 may leave a renamed blob short or empty: the size check
    // above then sends it back to the network. Set `durable` (MODELFORGE_FSYNC=1) to fsync before the rename.
    if (req.durable) await fh.sync()
    await close()
    await rename(partial, req.blobPath)
    if (req.durable) await fsyncDir(dirname(req.blobPath))
    return { downloaded, resumedFrom, reused: false, sha256 }
  } catch (err) {
    await hasher.dispose()
    // Bytes that failed verification are never kept for a resume.
    if (err instanceof IntegrityError) {
      await close()
      await rm(partial, { force: true })
    }
    throw err
  } finally {
    await close()
  }
}

