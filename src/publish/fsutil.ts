/** Durability helpers: fsync of files and directories, and atomic symlink replacement. */
import { randomBytes } from 'node:crypto'
import { open, rename, rm, symlink } from 'node:fs/promises'
import { join } from 'node:path'

/** fsync a directory so that entries created, renamed or removed in it survive a power loss. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r')
  try {
    await fh.sync()
  } finally {
    await fh.close()
  }
}

/** Writes a new file (refusing to overwrite) and fsyncs it. */
export async function writeFileDurable(path: string, data: string | Uint8Array): Promise<void> {
  const fh = await open(path, 'wx')
  try {
    await fh.writeFile(data)
    await fh.sync()
  } finally {
    await fh.close()
  }
}

/** Prefix and suffix of temporary links; `store gc` removes leftovers matching them. */
export const TEMP_LINK_PREFIX = '.link-'
export const TEMP_SUFFIX = '.tmp'

/**
 * Points `dir/name` at `target` atomically: a temporary symlink is created beside it and renamed over it,
 * so readers see either the old or the new link, never none. Leaves the directory fsynced.
 */
export async function swapSymlink(dir: string, name: string, target: string): Promise<void> {
  const temp = join(dir, `${TEMP_LINK_PREFIX}${name}-${process.pid}-${randomBytes(4).toString('hex')}${TEMP_SUFFIX}`)
  await symlink(target, temp)
  try {
    await rename(temp, join(dir, name))
  } catch (err) {
    await rm(temp, { force: true })
    throw err
  }
  await fsyncDir(dir)
}
