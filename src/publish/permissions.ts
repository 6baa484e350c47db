/**
 * The modes of a finalized version (docs/store.md, "Trainers and agents in separate accounts").
 *
 * finalize makes a version read-only, which is what "immutable" promises: every write bit of its files
 * and directories is removed, so that nobody but root can write into it (its owner could only by a chmod
 * first, which verify then reports). The read bits are those of the version's own entries plus the ones
 * the agent's versions/ directory grants: every class (owner, group, others) that may read versions/ may
 * read each file and list and traverse each directory. So readers never depend on the umask the trainer
 * had; the operator decides who reads through the store's own directories (store init, chmod o-rx).
 * Execute bits of files stay as they were; setuid, setgid and sticky bits of files go; a directory keeps
 * its setgid bit. The entries also get the store root's group, where this process may give it.
 *
 * A hard link's mode and group are its inode's, shared with every other name it has: a file with more
 * than one link is never chmod-ed or chgrp-ed. When it needs a change it is replaced by a copy of its own
 * (the other names keep their file as it was); import links only files that need none. So do files of
 * another owner, whose mode only their owner could change.
 */
import { access, chmod, chown, constants, lstat, rename, rm, stat } from 'node:fs/promises'
import { dirname } from 'node:path'
import { describeGroup, describeUser, effectiveUid, mayGiveGroup } from '../lib/accounts.js'
import { filePlacer } from '../lib/copy.js'
import { PolicyError } from '../lib/errors.js'
import { tempTail } from '../lib/fs.js'
import { walkTree, type TreeEntry } from '../lib/tree.js'
import { restoreWriteBits } from './discard.js'
import { unreadable } from './hash.js'

/**
 * The infix of the temporary name a copy made by prepareStaged has until it is renamed over the file:
 * `<file>.modelforge-copy-<pid>-<hex>.tmp`. One a killed finalize left is no file of the version; the next
 * finalize removes it (isCopyTemp).
 */
const COPY_TEMP_INFIX = '.modelforge-copy'
const COPY_TEMP = /\.modelforge-copy-\d+-[0-9a-f]{8}\.tmp$/

/** Whether a staged path is a copy a killed finalize left under its temporary name. */
export function isCopyTemp(rel: string): boolean {
  return COPY_TEMP.test(rel)
}

export interface VersionModes {
  /** The read bits (and traverse bits, for directories) every entry of a version gets: what versions/ grants. */
  grant: number
  /** The group every entry of a version gets: the store root's, when this process may give it (else none). */
  gid?: number
}

/** The modes the versions of the agent whose versions/ directory is `versionsDir` get, in the store at `root`. */
export async function versionModes(root: string, versionsDir: string): Promise<VersionModes> {
  const grant = (await stat(versionsDir)).mode & 0o555
  const gid = (await stat(root)).gid
  return { grant, ...(mayGiveGroup(gid) ? { gid } : {}) }
}

/** The permission bits (with setgid, for a directory) an entry of a finalized version has: see the top of this file. */
export function finalMode(type: 'file' | 'directory', mode: number, grant: number): number {
  return type === 'directory' ? (mode & 0o2555) | (grant & 0o555) : (mode & 0o555) | (grant & 0o444)
}

/** Whether an entry already is what a finalized version's entry must be (nothing to change). */
export function fits(entry: { type: string; mode: number; gid: number }, modes: VersionModes): boolean {
  if (entry.type !== 'file' && entry.type !== 'directory') return true
  return (entry.mode & 0o7777) === finalMode(entry.type, entry.mode, modes.grant) && (modes.gid === undefined || entry.gid === modes.gid)
}

/**
 * Before hashing: makes sure makeReadOnly can then do its work without touching anything outside the
 * staged tree. Refuses (PERMISSION_DENIED, before any change) a directory that needs a change and is not
 * this process's own; replaces a file that needs one and has other links or another owner by a copy of its
 * own; gives the directories back the write bits a finalize killed after makeReadOnly took away. Returns
 * how many files it copied.
 */
export async function prepareStaged(agent: string, version: string, staging: string, tree: TreeEntry[], modes: VersionModes): Promise<number> {
  const me = effectiveUid()
  const top = await lstat(staging)
  const dirs = [{ abs: staging, rel: '.', type: 'directory', mode: top.mode, uid: top.uid, gid: top.gid }, ...tree.filter((e) => e.type === 'directory')]
  const files = tree.filter((e) => e.type === 'file' && !fits(e, modes) && (e.nlink > 1 || (me !== 0 && e.uid !== me)))
  const withCopies = new Set(files.map((f) => dirname(f.abs)))
  for (const d of dirs) {
    // A directory of another owner can neither be made read-only nor hold the copies made below.
    if (me !== 0 && d.uid !== me && (!fits(d, modes) || withCopies.has(d.abs))) throw await notOwner(agent, version, d.rel, d.uid, me)
  }
  // A finalize killed after makeReadOnly left the tree read-only: manifest.json and the copies need room.
  if (dirs.some((d) => (d.mode & 0o700) !== 0o700)) await restoreWriteBits(staging)
  // Each is read by the copy: one this account may not read is refused now, as hashing would refuse it.
  for (const f of files) await access(f.abs, constants.R_OK).catch((err: NodeJS.ErrnoException) => Promise.reject(unreadable(f.rel, err)))
  const placer = filePlacer()
  for (const f of files) {
    const temp = `${f.abs}${COPY_TEMP_INFIX}${tempTail()}`
    try {
      await placer.place(f.abs, temp)
      await rename(temp, f.abs)
    } catch (err) {
      await rm(temp, { force: true })
      throw err
    }
  }
  return files.length
}

/**
 * After hashing, before the rename into place: removes every write bit of the version's files and
 * directories and gives them the read bits and group of `modes` (see the top of this file). Each entry is
 * looked at again, as manifest.json and the copies prepareStaged made are new. A file with other links is
 * left alone, whatever it is: its mode is that of files outside the version too. Returns how many entries
 * it changed.
 */
export async function makeReadOnly(staging: string, modes: VersionModes): Promise<number> {
  const entries = (await walkTree(staging)).filter((e) => e.type === 'file' || e.type === 'directory')
  let changed = 0
  const fix = async (abs: string, type: 'file' | 'directory', mode: number, gid: number, nlink: number): Promise<void> => {
    if (fits({ type, mode, gid }, modes) || (type === 'file' && nlink > 1)) return
    if (modes.gid !== undefined && gid !== modes.gid) await chown(abs, -1, modes.gid)
    await chmod(abs, finalMode(type, mode, modes.grant))
    changed++
  }
  // chmod needs no write permission on the directory: the order does not matter.
  for (const e of entries) await fix(e.abs, e.type as 'file' | 'directory', e.mode, e.gid, e.nlink)
  const top = await lstat(staging)
  await fix(staging, 'directory', top.mode, top.gid, top.nlink)
  return changed
}

/**
 * What verify says of a version directory whose entries became writable, or are not of the store root's
 * group: warnings, not problems (the bytes may still be right; the next write may not be).
 */
export async function modeWarnings(root: string, dir: string): Promise<string[]> {
  const rootGid = (await stat(root)).gid
  const top = await lstat(dir)
  const entries = [{ rel: '.', type: 'directory', mode: top.mode, gid: top.gid }, ...(await walkTree(dir))].filter((e) => e.type === 'file' || e.type === 'directory')
  const warnings: string[] = []
  const writable = entries.filter((e) => e.mode & 0o222)
  if (writable.length > 0) {
    warnings.push(`writable: ${names(writable.map((e) => e.rel))}: a finalized version must be read-only, and \`chmod -R a-w ${dir}\` makes it so again`)
  }
  const foreign = entries.filter((e) => e.gid !== rootGid)
  if (foreign.length > 0) {
    const groups = [...new Set(foreign.map((e) => e.gid))]
    const theirs = (await Promise.all(groups.map(describeGroup))).join(', ')
    warnings.push(`group: ${names(foreign.map((e) => e.rel))} ${foreign.length === 1 ? 'is' : 'are'} of ${theirs}, not of the store's group ${await describeGroup(rootGid)}: \`modelforge store init --store ${root}\` gives them the store's group`)
  }
  return warnings
}

/** `a, b, c and 4 more` (with how many in all). */
function names(rels: string[]): string {
  const shown = rels.slice(0, 5).join(', ')
  const all = `${rels.length} ${rels.length === 1 ? 'entry' : 'entries'}`
  return rels.length > 5 ? `${all} (${shown} and ${rels.length - 5} more)` : `${all} (${shown})`
}

async function notOwner(agent: string, version: string, rel: string, uid: number, me: number): Promise<PolicyError> {
  const where = rel === '.' ? 'its staging directory' : `its directory ${rel}`
  const owner = await describeUser(uid)
  return new PolicyError(`Cannot finalize ${agent}/${version}: ${where} belongs to ${owner}, and this is ${await describeUser(me)}; finalize makes every directory of a version read-only, which only its owner or root may do`, {
    code: 'PERMISSION_DENIED',
    hint: `Finalize it as ${owner} or as root. Nothing was changed.`,
    details: { agent, version, path: rel, owner: { uid }, by: { uid: me } },
  })
}
