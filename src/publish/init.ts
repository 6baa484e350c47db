/**
 * store init: a store root for trainers (writers) and agents (readers) in separate Unix accounts, created
 * or adopted (docs/store.md, "Trainers and agents in separate accounts").
 *
 * The store's own directories (the root, .modelforge, .modelforge/locks, every agent directory and its
 * versions/) get the group and the setgid bit, so that everything created below them inherits the group,
 * and group read, write and traverse bits, so that any trainer of the group can stage, take locks and
 * publish; the audit log gets the group and group read and write. Directories the store creates later
 * inherit the same mode from their parent (lib/fs.ts shareLikeParent), whatever the trainer's umask.
 * Owner and other bits are left as they are: others' read and traverse bits are how agents outside the
 * group read, and whether they may is the operator's choice.
 *
 * What is inside the agents' directories (versions, staging directories, a Python-made current
 * directory) gets the group too, so that verify finds every version of the store's group, but not a mode
 * bit more: a finalized version stays read-only. A file with more than one link is left alone (its group
 * is that of its other names, outside the store: an import --link source) and listed.
 *
 * Everything is checked before anything changes: another account's directory (only its owner or root may
 * change its mode) or a group this account may not give is refused, naming it. Idempotent: a second run
 * changes nothing and lists nothing.
 */
import { chmod, chown, lstat, stat } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { describeGroup, describeUser, effectiveUid, findGroup, mayGiveGroup } from '../lib/accounts.js'
import { debugLog } from '../lib/debug.js'
import { PolicyError, UsageError } from '../lib/errors.js'
import { ensureDir, S_ISGID } from '../lib/fs.js'
import { walkTree } from '../lib/tree.js'
import { auditDone, auditPath } from './audit.js'
import { storeRootExists } from './current.js'
import { listAgents } from './readers.js'
import { exists, type StoreContext } from './store-context.js'

export interface InitOptions {
  /** The group (name or gid) trainers share; default: the root's current group. */
  group?: string
}

export interface InitChange {
  path: string
  change: 'created' | 'group' | 'mode'
  /** The group (`name (gid N)`) or mode (octal) before; absent for `created` and for a tree's entries. */
  from?: string
  /** The group or mode after (for `created`: the mode). */
  to: string
  /** For the group of what a version or staging directory holds: how many entries changed. */
  entries?: number
}

export interface InitResult {
  root: string
  group: { gid: number; name: string | null }
  /** The root did not exist. */
  created: boolean
  /** What was changed, in order; empty when the store was already set up (a second run). */
  changed: InitChange[]
  /** Files left with their group, as they have other links outside the store (an import --link source). */
  skipped: { path: string; reason: string }[]
  /** What failed after the changes were made (they stand): e.g. the audit record. */
  warnings?: string[]
}

/** The bits the store's own directories get: group read, write and traverse, and setgid. */
const SHARED_DIR_BITS = S_ISGID | 0o070
/** The bits the audit log gets: group read and write. */
const SHARED_FILE_BITS = 0o060

const log = debugLog('store')

interface Planned {
  path: string
  uid: number
  gid: number
  mode: number
  /** The mode it must have (undefined: only its group changes). */
  want?: number
}

/** Creates or adopts the store at ctx.root for a group (see the top of this file). */
export async function initStore(ctx: StoreContext, options: InitOptions = {}): Promise<InitResult> {
  const group = options.group === undefined ? null : await findGroup(options.group)
  if (options.group !== undefined && !group) {
    throw new UsageError(`There is no group ${options.group} on this system`, {
      code: 'GROUP_NOT_FOUND',
      hint: `Create it first (\`groupadd ${options.group}\`), or name an existing group (\`getent group\` lists them).`,
      details: { group: options.group },
    })
  }
  const root = ctx.root
  const me = effectiveUid()
  const created = !storeRootExists(root)
  if (created && group && !mayGiveGroup(group.gid)) throw await groupRefused(root, group.gid, me)
  const changed: InitChange[] = []
  if (created) {
    await ensureDir(root)
    changed.push({ path: root, change: 'created', to: octal((await stat(root)).mode) })
  }
  const gid = group?.gid ?? (await stat(root)).gid
  const dirs: Planned[] = []
  const plan = async (path: string, bits: number): Promise<void> => {
    // The root may be a link to the store's directory (chmod and chown follow it too); nothing below is.
    const st = path === root ? await stat(path) : await lstat(path)
    if (st.isDirectory() || st.isFile()) dirs.push({ path, uid: st.uid, gid: st.gid, mode: st.mode, want: (st.mode & 0o7777) | (st.isDirectory() ? bits : SHARED_FILE_BITS) })
  }
  await plan(root, SHARED_DIR_BITS)
  for (const p of [join(root, '.modelforge'), join(root, '.modelforge', 'locks')]) if (await exists(p)) await plan(p, SHARED_DIR_BITS)
  if (await exists(auditPath(root))) await plan(auditPath(root), SHARED_FILE_BITS)
  // What the agents hold: their directories and versions/ are the store's own; the rest only gets the group.
  const trees: { path: string; entries: Planned[] }[] = []
  const skipped: InitResult['skipped'] = []
  for (const agent of await listAgents({ ...ctx, strict: false })) {
    const agentDir = ctx.agentDir(agent)
    await plan(agentDir, SHARED_DIR_BITS)
    const versionsDir = join(agentDir, 'versions')
    if (await isDir(versionsDir)) await plan(versionsDir, SHARED_DIR_BITS)
    const byTree = new Map<string, Planned[]>()
    for (const e of await walkTree(agentDir)) {
      if ((e.type !== 'file' && e.type !== 'directory') || e.rel === 'versions' || e.gid === gid) continue
      if (e.type === 'file' && e.nlink > 1) {
        skipped.push({ path: e.abs, reason: `it has ${e.nlink} links: its group is also that of its names outside the store` })
        continue
      }
      // Reported per version (or staging directory, or other entry of the agent), not per file.
      const parts = e.rel.split('/')
      const top = join(agentDir, ...(parts[0] === 'versions' ? parts.slice(0, 2) : parts.slice(0, 1)))
      let list = byTree.get(top)
      if (!list) byTree.set(top, (list = []))
      list.push({ path: e.abs, uid: e.uid, gid: e.gid, mode: e.mode })
    }
    for (const [path, entries] of byTree) trees.push({ path, entries })
  }
  // Everything is checked before the first change.
  for (const p of [...dirs, ...trees.flatMap((t) => t.entries)]) {
    const regroup = p.gid !== gid
    const remode = p.want !== undefined && (p.mode & 0o7777) !== p.want
    if (me === 0 || (!regroup && !remode)) continue
    if (p.uid !== me) throw await notOwner(p.path, p.uid, me, gid)
    if (regroup && !mayGiveGroup(gid)) throw await groupRefused(p.path, gid, me)
  }
  const to = await describeGroup(gid)
  for (const p of dirs) {
    if (p.gid !== gid) {
      await chown(p.path, -1, gid)
      changed.push({ path: p.path, change: 'group', from: await describeGroup(p.gid), to })
    }
    // After the chown, which may clear the setgid bit.
    const now = (p.path === root ? await stat(p.path) : await lstat(p.path)).mode
    if ((now & 0o7777) !== p.want) {
      await chmod(p.path, p.want!)
      changed.push({ path: p.path, change: 'mode', from: octal(p.mode), to: octal(p.want!) })
    }
  }
  // Created now, inside the setgid directories: they get the root's mode (lib/fs.ts shareLikeParent).
  for (const p of [join(root, '.modelforge'), join(root, '.modelforge', 'locks')]) {
    if (await exists(p)) continue
    await ensureDir(p, { shared: true })
    changed.push({ path: p, change: 'created', to: octal((await stat(p)).mode) })
  }
  for (const t of trees) {
    for (const e of t.entries) await chown(e.path, -1, gid)
    changed.push({ path: t.path, change: 'group', to, entries: t.entries.length })
  }
  for (const c of changed) log(`init ${root}: ${relative(root, c.path) || '.'} ${c.change}${c.from ? ` ${c.from} ->` : ''} ${c.to}${c.entries ? ` (${c.entries} entries)` : ''}`)
  const warnings: string[] = []
  if (changed.length > 0) {
    const hadLog = await exists(auditPath(root))
    auditDone(root, { op: 'init', group: group?.name ?? null, gid, changed: changed.length }, `the store ${root} was set up for group ${to}`, warnings)
    if (!hadLog && (await exists(auditPath(root)))) changed.push({ path: auditPath(root), change: 'created', to: octal((await stat(auditPath(root))).mode) })
  }
  return {
    root, group: { gid, name: group?.name ?? (await findGroup(String(gid)))?.name ?? null }, created, changed, skipped,
    ...(warnings.length > 0 ? { warnings } : {}),
  }
}

function octal(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, '0')
}

async function isDir(path: string): Promise<boolean> {
  try {
    return (await lstat(path)).isDirectory()
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return false
    throw err
  }
}

async function notOwner(path: string, uid: number, me: number, gid: number): Promise<PolicyError> {
  return new PolicyError(`Cannot set up ${path} for group ${await describeGroup(gid)}: it belongs to ${await describeUser(uid)}, and this is ${await describeUser(me)}; only its owner or root may change its group and mode`, {
    code: 'PERMISSION_DENIED',
    hint: 'Run `modelforge store init` as root (or as the owner of the whole store). Nothing was changed.',
    details: { path, owner: { uid }, by: { uid: me }, gid },
  })
}

async function groupRefused(path: string, gid: number, me: number): Promise<PolicyError> {
  return new PolicyError(`Cannot give ${path} the group ${await describeGroup(gid)}: ${await describeUser(me)} is not a member of it`, {
    code: 'PERMISSION_DENIED',
    hint: 'Run `modelforge store init` as root, or as a member of that group. Nothing was changed.',
    details: { path, gid, by: { uid: me } },
  })
}
