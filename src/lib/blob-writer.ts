/**
 * Writing an HTTP body into a file as it arrives, for every download (the Hub's blobs, OCI blobs): bytes
 * are written in 1 MiB batches (writev, one syscall per batch without concatenating) with one write in
 * flight, and handed to the hasher once written; on any error the pending batch is written first, so the
 * file always holds exactly the bytes hashed and a retry resumes from there. Memory stays constant.
 */
import { type FileHandle } from 'node:fs/promises'
import { type BlobHasher } from './blob-hasher.js'

const BATCH = 1024 * 1024

export interface ReceiveOptions {
  onBytes?: (n: number) => void
  /** The file holds [0, end) once a batch is written. */
  setOffset?: (end: number) => void
  /** The error for a body longer than `size` (it is cut there). */
  tooLong: () => Error
  /**
   * fdatasync after every this many bytes, one at a time and beside the writes rather than before the next:
   * the disk writes the file while the rest arrives, and the caller's final fsync has little left to do.
   */
  syncEvery?: number
}

/** Streams a body into fh from `start`, refusing to go past `size` bytes in all. Returns the bytes received. */
export async function receiveBody(res: AsyncIterable<Buffer> & { destroy(): void; release?(chunks: readonly Uint8Array[]): void }, fh: FileHandle, start: number, size: number, hasher: BlobHasher, options: ReceiveOptions): Promise<number> {
  let received = 0
  let batch: Buffer[] = []
  let batchBytes = 0
  let batchStart = start
  let inFlight: Promise<void> = Promise.resolve()
  let syncing: Promise<void> | undefined
  let syncedTo = start
  const flush = async (): Promise<void> => {
    await inFlight
    if (batchBytes === 0) return
    const bufs = batch
    const at = batchStart
    const length = batchBytes
    batch = []
    batchStart += batchBytes
    batchBytes = 0
    inFlight = writeAll(fh, bufs, at, length).then(() => {
      hasher.written(at, bufs)
      res.release?.(bufs)
      options.setOffset?.(at + length)
      if (options.syncEvery && !syncing && at + length - syncedTo >= options.syncEvery) {
        syncedTo = at + length
        syncing = fh.datasync().finally(() => (syncing = undefined))
        // Awaited (and its error thrown) at the end; until then it must not count as unhandled.
        syncing.catch(() => undefined)
      }
    })
  }
  try {
    for await (const chunk of res) {
      if (batchStart + batchBytes + chunk.length > size) throw options.tooLong()
      received += chunk.length
      options.onBytes?.(chunk.length)
      batch.push(chunk)
      batchBytes += chunk.length
      if (batchBytes >= BATCH) await flush()
    }
  } catch (err) {
    res.destroy()
    throw err
  } finally {
    await flush()
    await inFlight
    await syncing
  }
  return received
}

async function writeAll(fh: FileHandle, bufs: Buffer[], position: number, length: number): Promise<void> {
  let { bytesWritten } = await fh.writev(bufs, position)
  // A short write (rare: disk full is an error, not a short write) is finished piece by piece.
  while (bytesWritten < length) {
    const rest = Buffer.concat(bufs).subarray(bytesWritten)
    bytesWritten += (await fh.write(rest, 0, rest.length, position + bytesWritten)).bytesWritten
  }
}
