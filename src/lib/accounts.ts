/**
 * Unix accounts by number and by name: the group `store init --group` names, and the owner a refusal
 * names ("it belongs to uid 65534 (nobody)"). Looked up with getent, so groups and users from NSS sources
 * (LDAP, sssd) count as they do for `ls -l` and `chgrp`; where getent is missing (a minimal container),
 * /etc/group and /etc/passwd are read instead. Answers are kept for the life of the process.
 */
import { readFile } from 'node:fs/promises'
import { errnoCode, ModelforgeError } from './errors.js'
import { run } from './exec.js'

export interface Group {
  gid: number
  name: string
}

type Db = 'group' | 'passwd'

const cache = new Map<string, Promise<string[] | null>>()

/** The fields of the entry of `key` (a name, or a number: the id) in `db`, or null when there is none. */
function entry(db: Db, key: string): Promise<string[] | null> {
  const k = `${db}:${key}`
  let found = cache.get(k)
  if (!found) {
    found = lookup(db, key)
    cache.set(k, found)
  }
  return found
}

async function lookup(db: Db, key: string): Promise<string[] | null> {
  try {
    const r = await run('getent', [db, key], { reject: false, timeout: 10_000 })
    // 0: found; 2: no such key. Anything else (an NSS failure) is treated as not found, like ls -l does.
    if (r.exitCode !== 0) return null
    const line = r.stdout.split('\n')[0] ?? ''
    return line ? line.split(':') : null
  } catch (err) {
    if (!(err instanceof ModelforgeError && err.code === 'TOOL_NOT_FOUND')) throw err
  }
  let text: string
  try {
    text = await readFile(`/etc/${db}`, 'utf8')
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return null
    throw err
  }
  const byId = /^\d+$/.test(key)
  for (const line of text.split('\n')) {
    const fields = line.split(':')
    if (fields.length < 3) continue
    if (byId ? fields[2] === key : fields[0] === key) return fields
  }
  return null
}

/** A group by name or by number; null when the system knows no such group. */
export async function findGroup(nameOrGid: string): Promise<Group | null> {
  const fields = await entry('group', nameOrGid)
  if (!fields || !/^\d+$/.test(fields[2] ?? '')) return null
  return { gid: Number(fields[2]), name: fields[0]! }
}

/** The name of a group, or null when it has none (a bare number, as ls -l then shows). */
export async function groupName(gid: number): Promise<string | null> {
  return (await findGroup(String(gid)))?.name ?? null
}

/** The name of a user, or null when it has none (a uid without passwd entry, common in containers). */
export async function userName(uid: number): Promise<string | null> {
  const fields = await entry('passwd', String(uid))
  return fields?.[0] || null
}

/** `uid 65534 (nobody)`, or `uid 65533` for a uid without a name. */
export async function describeUser(uid: number): Promise<string> {
  const name = await userName(uid)
  return name ? `uid ${uid} (${name})` : `uid ${uid}`
}

/** `mf-trainers (gid 1001)`, or `gid 1001` for a gid without a name. */
export async function describeGroup(gid: number): Promise<string> {
  const name = await groupName(gid)
  return name ? `${name} (gid ${gid})` : `gid ${gid}`
}

/** The effective uid of this process (0 where the platform has none: Windows is no target of the store's modes). */
export function effectiveUid(): number {
  return process.geteuid?.() ?? 0
}

/**
 * Whether this process may give a file it owns the group `gid`: root may give any, others only their
 * effective group or one of their supplementary groups (chown(2)).
 */
export function mayGiveGroup(gid: number): boolean {
  if (effectiveUid() === 0) return true
  return process.getegid?.() === gid || (process.getgroups?.() ?? []).includes(gid)
}
