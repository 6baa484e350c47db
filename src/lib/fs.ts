/**
 * Durability and atomic replacement, shared by the model store and the hub cache: fsync of files and
 * directories, writing a file whole (new or replacing), and replacing a symlink without a moment when the
 * name is missing.
 */
import { randomBytes } from 'node:crypto'
import { chmodSync, closeSync, existsSync, fchmodSync, fstatSync, fsyncSync, mkdirSync, openSync, statSync } from 'node:fs'
import { chmod, mkdir, open, rename, rm, stat, symlink, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'

/** Prefix and suffix of temporary links; `store gc` removes leftovers matching them. */
export const TEMP_LINK_PREFIX = '.link-'
export const TEMP_SUFFIX = '.tmp'

/**
 * `-<pid>-<8 hex>.tmp`, the tail of every temporary name made here and in lock.ts: unique among concurrent
 * writers, and the pid lets a cleaner (removeStaleLockTemps) leave a live writer's file alone.
 */
export function tempTail(): string {
  return `-${process.pid}-${randomBytes(4).toString('hex')}${TEMP_SUFFIX}`
}

/** fsync a directory so that entries created, renamed or removed in it survive a power loss. */
export async function fsyncDir(dir: string): Promise<void> {
  await fsyncPath(dir)
}

/** fsync a file or directory by path (a file another step wrote, made durable before it is published). */
export async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, 'r')
  try {
    await fh.sync()
  } finally {
    await fh.close()
  }
}

/** fsyncDir for synchronous writers (the audit log). */
export function fsyncDirSync(dir: string): void {
  const fd = openSync(dir, 'r')
  try {
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}

export interface EnsureDirOptions {
  /**
   * Each directory created inside a setgid directory (a tree a group shares, as `store init` makes the
   * store) gets that parent's permission bits and setgid bit, whatever this process's umask: see
   * shareLikeParent. Without it, new directories get the umask's mode as usual.
   */
  shared?: boolean
}

/**
 * mkdir -p that reports the real failure. Node's recursive mkdir answers ENOENT where the parent exists but
 * refuses the new entry (EROFS on a read-only mount, for one): the one directory that fails is then made
 * again without `recursive`, which gives the true error.
 */
export async function ensureDir(dir: string, options: EnsureDirOptions = {}): Promise<void> {
  let first: string | undefined
  try {
    first = await mkdir(dir, { recursive: true })
  } catch (err) {
    if ((err as { code?: string }).code !== 'ENOENT') throw err
    let missing = dir
    while (!(await exists(dirname(missing))) && dirname(missing) !== missing) missing = dirname(missing)
    await mkdir(missing)
    throw err
  }
  if (options.shared && first !== undefined) for (const d of createdChain(first, dir)) await shareLikeParent(d)
}

/** ensureDir for synchronous writers (locks, the audit log), with the same true errno. */
export function ensureDirSync(dir: string, options: EnsureDirOptions = {}): void {
  let first: string | undefined
  try {
    first = mkdirSync(dir, { recursive: true })
  } catch (err) {
    if ((err as { code?: string }).code !== 'ENOENT') throw err
    let missing = dir
    while (!existsSync(dirname(missing)) && dirname(missing) !== missing) missing = dirname(missing)
    mkdirSync(missing)
    throw err
  }
  if (options.shared && first !== undefined) for (const d of createdChain(first, dir)) shareLikeParentSync(d)
}

/** The set-group-ID bit of st_mode (Node's fs.constants lacks it): on a directory, new entries get its group. */
export const S_ISGID = 0o2000

/** The directories a recursive mkdir created: from `first` (what it returned) down to `dir`, parents first. */
function createdChain(first: string, dir: string): string[] {
  const chain: string[] = []
  for (let d = dir; ; d = dirname(d)) {
    chain.unshift(d)
    if (d === first || dirname(d) === d) return chain
  }
}

/**
 * The mode of a new directory inside a shared one: its parent's permission bits and setgid bit (not the
 * sticky bit), or null when the parent is not setgid. The kernel passes the group and the setgid bit on by
 * itself; the permission bits it takes from the umask, and a trainer whose umask is 022 would otherwise
 * make a directory the rest of its group cannot write to.
 */
function sharedDirMode(parentMode: number): number | null {
  return parentMode & S_ISGID ? parentMode & 0o2777 : null
}

/** Gives the directory `dir` (just made by this process) its parent's mode when the parent is setgid; whether it did. */
export async function shareLikeParent(dir: string): Promise<boolean> {
  const mode = sharedDirMode((await stat(dirname(dir))).mode)
  if (mode === null) return false
  await chmod(dir, mode)
  return true
}

function shareLikeParentSync(dir: string): void {
  const mode = sharedDirMode(statSync(dirname(dir)).mode)
  if (mode !== null) chmodSync(dir, mode)
}

/**
 * For a file this process just created in `dir` (the store's audit log, appended to by every trainer of
 * the group): when `dir` is setgid, the file gets the directory's read and write bits (no execute), so
 * that the rest of the group can append too, whatever the creator's umask.
 */
export function shareFileLikeDirSync(fd: number, dir: string): void {
  const parent = statSync(dir).mode
  if (!(parent & S_ISGID)) return
  const st = fstatSync(fd)
  if (st.uid !== process.geteuid?.()) return
  const mode = (st.mode & 0o777) | (parent & 0o666)
  if (mode !== (st.mode & 0o777)) fchmodSync(fd, mode)
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path)
    return true
  } catch {
    return false
  }
}

/**
 * Node's errors of calls on a descriptor (write, fsync) carry no path; the file's is put on them, so the
 * message of a full disk names the file that could not be written.
 */
export function withPath<E>(err: E, path: string): E {
  if (err && typeof err === 'object' && !('path' in err)) Object.assign(err, { path })
  return err
}

/**
 * Writes a new file (refusing to overwrite) and fsyncs it. A write that fails (a full disk) removes the
 * file it created, so no half-written file is left behind to be mistaken for a whole one.
 */
export async function writeFileDurable(path: string, data: string | Uint8Array): Promise<void> {
  const fh = await open(path, 'wx')
  try {
    await fh.writeFile(data)
    await fh.sync()
  } catch (err) {
    await fh.close().catch(() => undefined)
    await rm(path, { force: true }).catch(() => undefined)
    throw withPath(err, path)
  }
  await fh.close()
}

export interface AtomicWriteOptions {
  /**
   * fsync the file before the rename (finalize's manifest: a crash or a full disk leaves it as it was or
   * absent, never torn; the caller fsyncs the directory). Off for the hub cache's refs and listings, which
   * huggingface_hub writes the same way: one lost to a power loss reads as absent and is fetched again.
   */
  durable?: boolean
}

/**
 * Writes a file atomically under a temporary name (`<path>-<pid>-<hex>.tmp`) renamed over `path`: readers
 * see the old content or the new one, never a mix. Creates the directory; removes the temporary file when
 * writing fails (one a crash leaves behind matches tempTail()).
 */
export async function writeFileAtomic(file: string, data: string | Uint8Array, options: AtomicWriteOptions = {}): Promise<void> {
  await ensureDir(dirname(file))
  const tmp = `${file}${tempTail()}`
  try {
    if (options.durable) await writeFileDurable(tmp, data)
    else await writeFile(tmp, data)
    await rename(tmp, file)
  } catch (err) {
    await rm(tmp, { force: true })
    throw withPath(err, file)
  }
}

export interface SymlinkOptions {
  /** fsync the directory after the rename, so the new link survives a power loss (default true). */
  durable?: boolean
}

/**
 * Points `dir/name` at `target` atomically: a temporary symlink is created beside it and renamed over it,
 * so readers see either the old or the new link, never none.
 */
export async function swapSymlink(dir: string, name: string, target: string, options: SymlinkOptions = {}): Promise<void> {
  const temp = join(dir, `${TEMP_LINK_PREFIX}${name}${tempTail()}`)
  await symlink(target, temp)
  try {
    await rename(temp, join(dir, name))
  } catch (err) {
    await rm(temp, { force: true })
    throw err
  }
  if (options.durable ?? true) await fsyncDir(dir)
}
