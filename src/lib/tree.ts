/**
 * Walking a directory tree, for the model store (a version or staging tree, seen with lstat so that
 * symlinks, devices, sockets and fifos are what they are), the hub (a snapshot made of symlinks into
 * blobs/, followed) and export (its staging directory). One order for all, names in byte order, except
 * where the store must reproduce what Python's unsorted os.walk saw (order: 'listing').
 */
import { lstat, opendir, readdir, stat } from 'node:fs/promises'
import type { Stats } from 'node:fs'
import { join } from 'node:path'
import { errnoCode } from './errors.js'

export type EntryType = 'file' | 'directory' | 'symlink' | 'fifo' | 'socket' | 'block-device' | 'character-device' | 'unknown'

export interface TreeEntry {
  /** Relative path with '/' separators. */
  rel: string
  abs: string
  type: EntryType
  size: number
  mtimeMs: number
  /** The inode change time: set by the kernel on every change (write, rename, chmod, utime), never back. */
  ctimeMs: number
  /** Type and permission bits (st_mode), owner, group and link count: the store's modes are judged by them. */
  mode: number
  uid: number
  gid: number
  nlink: number
}

export interface WalkOptions {
  /**
   * Type entries by what a symlink points to, and descend into linked directories (a hub snapshot is made
   * of links). A link that points nowhere (or into a loop) stays a 'symlink' entry. Default: lstat, never
   * followed (what the store publishes must be what is in the tree, not what a link leads to).
   */
  followSymlinks?: boolean
  /** Names left out at every depth, with everything under them (the hub skips .git). */
  skip?: readonly string[]
  /**
   * 'sorted' (default): every directory's entries in byte order. 'listing': subdirectories in the order
   * the filesystem lists them (a directory stream read without sorting, as Python's os.walk reads it; on
   * ext4 that is the order of the names' hashes), other entries still sorted within each directory. The
   * original Python ModelStore's checksum was taken in that order, so only it reproduces such a checksum.
   */
  order?: WalkOrder
}

export type WalkOrder = 'sorted' | 'listing'

/** What lstat (or stat) says an entry is. */
export function typeOf(st: Stats): EntryType {
  if (st.isFile()) return 'file'
  if (st.isDirectory()) return 'directory'
  if (st.isSymbolicLink()) return 'symlink'
  if (st.isFIFO()) return 'fifo'
  if (st.isSocket()) return 'socket'
  if (st.isBlockDevice()) return 'block-device'
  if (st.isCharacterDevice()) return 'character-device'
  return 'unknown'
}

/** Byte-order comparison of strings as UTF-8 (what `LC_ALL=C sort` does). */
export function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'))
}

/** What a TreeEntry records of an entry's stat, besides its path and type. */
export function statFacts(st: Stats): Pick<TreeEntry, 'size' | 'mtimeMs' | 'ctimeMs' | 'mode' | 'uid' | 'gid' | 'nlink'> {
  return { size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, mode: st.mode, uid: st.uid, gid: st.gid, nlink: st.nlink }
}

async function statEntry(path: string, follow: boolean): Promise<Stats | undefined> {
  if (follow) {
    try {
      return await stat(path)
    } catch (err) {
      const code = errnoCode(err)
      if (code !== 'ENOENT' && code !== 'ELOOP' && code !== 'ENOTDIR') throw err
    }
  }
  try {
    return await lstat(path)
  } catch (err) {
    // Removed since readdir: only a followed walk (a cache others write to) lets it go unnoticed.
    if (follow && errnoCode(err) === 'ENOENT') return undefined
    throw err
  }
}

/**
 * A directory's names as the filesystem lists them. Not readdir(): libuv's scandir sorts the names
 * (strcmp) before Node sees them; a directory stream (opendir) hands them over in the kernel's order.
 */
async function listedNames(dir: string): Promise<string[]> {
  const names: string[] = []
  // for await closes the stream, also when the loop throws.
  for await (const d of await opendir(dir)) names.push(d.name)
  return names
}

/**
 * Every entry under `dir` (not `dir` itself), directories included, in Python's os.walk order: a
 * directory's other entries (sorted), then each subdirectory recursively, sorted or (order: 'listing') as
 * listed. The store's legacy checksum depends on this order.
 */
export async function walkTree(dir: string, options: WalkOptions = {}): Promise<TreeEntry[]> {
  const follow = options.followSymlinks ?? false
  const listing = options.order === 'listing'
  const skip = new Set(options.skip ?? [])
  const out: TreeEntry[] = []
  // Directories on the current path (device:inode): a followed link back up the tree is not descended.
  const ancestors = new Set<string>()
  const visit = async (abs: string, rel: string, id: string): Promise<void> => {
    ancestors.add(id)
    const listed = (listing ? await listedNames(abs) : await readdir(abs)).filter((n) => !skip.has(n))
    // Listing order keeps the listed order for the subdirectories only; files are sorted either way.
    const names = listing ? listed : listed.sort(compareBytes)
    const entries: { entry: TreeEntry; id: string }[] = []
    for (const name of names) {
      const childAbs = join(abs, name)
      const st = await statEntry(childAbs, follow)
      if (!st) continue
      entries.push({ entry: { rel: rel ? `${rel}/${name}` : name, abs: childAbs, type: typeOf(st), ...statFacts(st) }, id: `${st.dev}:${st.ino}` })
    }
    const others = entries.filter((e) => e.entry.type !== 'directory')
    if (listing) others.sort((a, b) => compareBytes(a.entry.rel, b.entry.rel))
    for (const e of others) out.push(e.entry)
    for (const e of entries) {
      if (e.entry.type !== 'directory') continue
      out.push(e.entry)
      if (!ancestors.has(e.id)) await visit(e.entry.abs, e.entry.rel, e.id)
    }
    ancestors.delete(id)
  }
  const top = await stat(dir)
  await visit(dir, '', `${top.dev}:${top.ino}`)
  return out
}

/** The regular files under `dir` (see walkTree for the options), sorted by path in byte order. */
export async function listFiles(dir: string, options: WalkOptions = {}): Promise<TreeEntry[]> {
  return (await walkTree(dir, options)).filter((e) => e.type === 'file').sort((a, b) => compareBytes(a.rel, b.rel))
}
