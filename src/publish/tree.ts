/**
 * Walking a version or staging tree with lstat, so that symlinks, devices, sockets and fifos are seen as
 * what they are (never followed).
 */
import { lstat, readdir } from 'node:fs/promises'
import { join } from 'node:path'

export type EntryType = 'file' | 'directory' | 'symlink' | 'fifo' | 'socket' | 'block-device' | 'character-device' | 'unknown'

export interface TreeEntry {
  /** Relative path with '/' separators. */
  rel: string
  abs: string
  type: EntryType
  size: number
  mtimeMs: number
}

function typeOf(st: import('node:fs').Stats): EntryType {
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

/**
 * Every entry under `dir` (not `dir` itself), directories included, in Python's sorted os.walk order:
 * a directory's files (sorted), then each subdirectory (sorted) recursively.
 */
export async function walkTree(dir: string): Promise<TreeEntry[]> {
  const out: TreeEntry[] = []
  const visit = async (abs: string, rel: string): Promise<void> => {
    const names = (await readdir(abs)).sort(compareBytes)
    const entries: TreeEntry[] = []
    for (const name of names) {
      const childAbs = join(abs, name)
      const st = await lstat(childAbs)
      entries.push({ rel: rel ? `${rel}/${name}` : name, abs: childAbs, type: typeOf(st), size: st.size, mtimeMs: st.mtimeMs })
    }
    for (const e of entries) if (e.type !== 'directory') out.push(e)
    for (const e of entries) {
      if (e.type !== 'directory') continue
      out.push(e)
      await visit(e.abs, e.rel)
    }
  }
  await visit(dir, '')
  return out
}
