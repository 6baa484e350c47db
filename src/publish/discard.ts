/**
 * Removing a whole finalized version, for prune and delete, and any tree of the store (gc's staging
 * directories and prune leftovers). A recursive delete killed half-way would leave a version with files
 * missing under its own name, so the version is first renamed to a hidden `.prune-<version>-<hex>.tmp`
 * name (one rename: atomic), and only that is deleted. A crash at any instant leaves either the whole
 * version or a leftover that no valid version name can match, which `store gc` removes whatever its age.
 * The caller holds the agent's lock and fsyncs the versions directory after.
 *
 * A finalized version is read-only (finalize.ts), and unlink(2) needs write permission on the directory
 * holding the name, so its directories get their write bits back first, which only their owner (or root)
 * may do. That happens after the rename aside: a crash then leaves a writable leftover, never a writable
 * version. Who may not do it is told so before anything is touched (assertRemovable), naming the owner.
 */
import { randomBytes } from 'node:crypto'
import { access, chmod, constants, lstat, rename, rm } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { describeUser, effectiveUid, userName } from '../lib/accounts.js'
import { PolicyError } from '../lib/errors.js'
import { fsyncDir, TEMP_SUFFIX } from '../lib/fs.js'
import { walkTree } from '../lib/tree.js'

/** The prefix of a version being removed; gc removes `<PRUNE_PREFIX>...<TEMP_SUFFIX>` entries whatever their age. */
export const PRUNE_PREFIX = '.prune-'

/** Renames versions/<version> aside (durably), then deletes it; returns the name it had while deleted. */
export async function discardVersion(versionsDir: string, version: string): Promise<string> {
  const doomed = join(versionsDir, `${PRUNE_PREFIX}${version}-${randomBytes(4).toString('hex')}${TEMP_SUFFIX}`)
  await rename(join(versionsDir, version), doomed)
  await fsyncDir(versionsDir)
  await removeTree(doomed)
  return doomed
}

/** Deletes a tree of the store, giving its directories (this process's own) their write bits back first. */
export async function removeTree(path: string): Promise<void> {
  await restoreWriteBits(path)
  await rm(path, { recursive: true, force: true })
}

/**
 * Gives the directory `top` and every directory under it that this process owns (root: every one) the
 * owner's read, write and traverse bits where one is missing: what a recursive delete, or a finalize run
 * again over a tree a crashed one made read-only, needs to remove and create names in them. Files keep
 * their modes (unlinking a read-only file needs write permission on its directory only). Nothing when
 * `top` is gone.
 */
export async function restoreWriteBits(top: string): Promise<void> {
  let st
  try {
    st = await lstat(top)
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return
    throw err
  }
  if (!st.isDirectory()) return
  const me = effectiveUid()
  const fix = async (path: string, mode: number, uid: number): Promise<void> => {
    if ((mode & 0o700) !== 0o700 && (me === 0 || uid === me)) await chmod(path, (mode & 0o7777) | 0o700)
  }
  // The top first: a directory without its read or traverse bit could not be walked.
  await fix(top, st.mode, st.uid)
  for (const e of await walkTree(top)) if (e.type === 'directory') await fix(e.abs, e.mode, e.uid)
}

export interface RemovalSubject {
  /** What it is, for the message: `scout/v1`, `the staging directory scout/v3.tmp`. */
  what: string
  /** The command that would remove it, for the message: `delete`, `prune`, `gc`. */
  op: string
  /** Why only the owner may, for the message (default: a finalized version is read-only). */
  why?: string
  details?: Record<string, unknown>
}

/**
 * Throws PolicyError PERMISSION_DENIED (exit 7) unless this process can remove the tree at `path`: root
 * can; any other account needs, for every directory in it, to own it (to restore its write bits) or to be
 * let write into it already (a tree the group may write, as a staging directory can be). The message names
 * the owner and the account that tried. Called before anything is changed, so a refusal changes nothing.
 */
export async function assertRemovable(path: string, subject: RemovalSubject): Promise<void> {
  const me = effectiveUid()
  if (me === 0) return
  const top = await lstat(path)
  if (!top.isDirectory()) return
  const dirs = [{ abs: path, uid: top.uid }, ...(await walkTree(path)).filter((e) => e.type === 'directory')]
  for (const d of dirs) {
    if (d.uid === me || (await writable(d.abs))) continue
    const owner = await describeUser(d.uid)
    const self = await describeUser(me)
    const inner = d.abs === path ? '' : ` (its directory ${relative(path, d.abs)})`
    const why = subject.why ?? 'a finalized version is read-only, and only its owner or root may make it writable again to remove it'
    throw new PolicyError(`Cannot ${subject.op} ${subject.what}: it${inner} belongs to ${owner}, and this is ${self}; ${why}`, {
      code: 'PERMISSION_DENIED',
      hint: `Run \`modelforge store ${subject.op}\` as ${owner} or as root. Nothing was changed.`,
      details: { ...subject.details, path, dir: d.abs, owner: { uid: d.uid, user: await userName(d.uid) }, by: { uid: me, user: await userName(me) } },
    })
  }
}

async function writable(dir: string): Promise<boolean> {
  try {
    await access(dir, constants.R_OK | constants.W_OK | constants.X_OK)
    return true
  } catch {
    return false
  }
}
