/**
 * Putting a file's bytes at a new path without changing the source: a hard link when asked for and the
 * operating system allows it; else a reflink (a copy-on-write clone: instant and sharing blocks, yet a file
 * of its own) where the filesystem has them (btrfs, XFS, APFS...); else a copy through one reused 1 MiB
 * buffer, reporting bytes as it goes. The store's import is its user.
 */
import { constants, type Stats } from 'node:fs'
import { copyFile, link, open, rm, type FileHandle } from 'node:fs/promises'
import { errnoCode } from './errors.js'
import { withPath } from './fs.js'
import { HASH_CHUNK, hashOpenFlags, notRegularFile } from './hash.js'

export type PlaceMethod = 'link' | 'reflink' | 'copy'

/**
 * Why link(2) refuses where a copy still works: another filesystem (EXDEV), a file of another user under
 * fs.protected_hardlinks (EPERM), too many links to the inode (EMLINK), a filesystem without hard links.
 */
const LINK_REFUSED = new Set(['EXDEV', 'EPERM', 'EMLINK', 'ENOTSUP', 'EOPNOTSUPP'])
/** Why a clone (FICLONE) fails where a copy still works: no clones on this filesystem, or across two. */
const CLONE_REFUSED = new Set(['ENOTSUP', 'EOPNOTSUPP', 'EXDEV', 'EINVAL', 'ENOTTY', 'ENOSYS', 'EBADF'])

export interface FilePlacer {
  /**
   * Makes `dst` (which must not exist) hold the bytes of the regular file `src`; onBytes gets the bytes
   * placed so far (all of them at once for a link or a reflink). A failure leaves no `dst` behind.
   */
  place(src: string, dst: string, onBytes?: (done: number) => void): Promise<PlaceMethod>
}

/**
 * A placer for many files (`link`: hard links where allowed; `linkIf`: only for the files it accepts, the
 * others are cloned or copied). Once a clone fails it is not tried again: the files of one import share their
 * filesystems, and a failed clone costs a file creation each time.
 */
export function filePlacer(options: { link?: boolean; linkIf?: (st: Stats) => boolean } = {}): FilePlacer {
  let clone = true
  return {
    async place(src, dst, onBytes) {
      // The source is opened (and checked) first, not following a link and not blocking on a fifo: the
      // caller checked it with lstat, and one swapped since must not be linked, cloned or copied. link(2)
      // and copyFile take the path, checked just before.
      const from = await open(src, hashOpenFlags(false))
      try {
        const st = await from.stat()
        if (!st.isFile()) throw withPath(notRegularFile(), src)
        // linkIf judges the opened file: the store links only files already as read-only as its versions
        // must be, since a hard link's mode is the source's own.
        if (options.link && (options.linkIf?.(st) ?? true)) {
          try {
            await link(src, dst)
            onBytes?.(st.size)
            return 'link'
          } catch (err) {
            if (!LINK_REFUSED.has(errnoCode(err) ?? '')) throw err
          }
        }
        if (clone) {
          try {
            // FICLONE_FORCE fails where the filesystem cannot clone (plain FICLONE would copy silently,
            // and then this could not say which it did); it removes the file it made when it fails.
            await copyFile(src, dst, constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE_FORCE)
            onBytes?.(st.size)
            return 'reflink'
          } catch (err) {
            if (!CLONE_REFUSED.has(errnoCode(err) ?? '')) throw err
            clone = false
          }
        }
        await copyBytes(from, src, dst, st.mode, onBytes)
        return 'copy'
      } finally {
        await from.close()
      }
    },
  }
}

/** A byte copy through one reused buffer, keeping the permission bits (as cp does, minus the umask). */
async function copyBytes(from: FileHandle, src: string, dst: string, mode: number, onBytes?: (done: number) => void): Promise<void> {
  const to = await open(dst, 'wx', mode & 0o777)
  try {
    const buf = Buffer.allocUnsafe(HASH_CHUNK)
    let done = 0
    for (;;) {
      const { bytesRead } = await from.read(buf, 0, buf.length, null).catch((err: unknown) => Promise.reject(withPath(err, src)))
      if (bytesRead === 0) break
      for (let off = 0; off < bytesRead;) off += (await to.write(buf, off, bytesRead - off)).bytesWritten
      done += bytesRead
      onBytes?.(done)
    }
    await to.close()
  } catch (err) {
    await to.close().catch(() => undefined)
    await rm(dst, { force: true }).catch(() => undefined)
    throw withPath(err, dst)
  }
}
