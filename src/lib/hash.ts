/**
 * Streaming SHA-256 of a file through one reused 1 MiB buffer, so memory stays constant whatever the
 * file size. The store hashes what it publishes and verifies, the hub what it reports from its cache, the
 * legacy checksum a Python-made version.
 */
import { createHash } from 'node:crypto'
import { constants } from 'node:fs'
import { open } from 'node:fs/promises'

export const HASH_CHUNK = 1024 * 1024

/**
 * O_NONBLOCK keeps a fifo from blocking the open (the fstat check below then refuses it). Without
 * following, O_NOFOLLOW refuses a symlink (ELOOP): the store checked its tree with lstat, and a file
 * swapped for a link since must not be hashed through the link.
 */
export function hashOpenFlags(followSymlinks: boolean): number {
  return constants.O_RDONLY | constants.O_NONBLOCK | (followSymlinks ? 0 : constants.O_NOFOLLOW)
}

export interface ReadFileOptions {
  /** Open through a symlink (hub snapshots are links into blobs/). Default false: a symlink is refused (ELOOP). */
  followSymlinks?: boolean
  /** fsync the file through the descriptor already open. */
  fsync?: boolean
  /** Read at most this many bytes from the start. */
  length?: number
}

/** The error for anything but a regular file (a directory, a fifo, a device), code ENOTFILE. */
export function notRegularFile(): Error {
  return Object.assign(new Error('not a regular file'), { code: 'ENOTFILE' })
}

/**
 * Feeds the file's bytes to `update` in order and returns how many there were. The chunk is the reused
 * buffer: valid only during the call (Hash.update copies what it needs).
 */
export async function readChunks(path: string, update: (chunk: Buffer) => void, options: ReadFileOptions = {}): Promise<number> {
  const fh = await open(path, hashOpenFlags(options.followSymlinks ?? false))
  try {
    if (!(await fh.stat()).isFile()) throw notRegularFile()
    const buf = Buffer.allocUnsafe(HASH_CHUNK)
    const limit = options.length ?? Infinity
    let size = 0
    while (size < limit) {
      const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, limit - size), null)
      if (bytesRead === 0) break
      update(bytesRead === buf.length ? buf : buf.subarray(0, bytesRead))
      size += bytesRead
    }
    if (options.fsync) await fh.sync()
    return size
  } finally {
    await fh.close()
  }
}

export interface FileDigest {
  size: number
  sha256: string
}

export async function sha256File(path: string, options: ReadFileOptions = {}): Promise<FileDigest> {
  const h = createHash('sha256')
  const size = await readChunks(path, (chunk) => h.update(chunk), options)
  return { size, sha256: h.digest('hex') }
}
