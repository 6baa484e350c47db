/**
 * Append-only JSON-lines logs (the store's and the hub cache's audit.jsonl): one JSON object per line,
 * appended with a single write(2) on an O_APPEND descriptor, so concurrent writers never interleave inside
 * a line, and fsynced, so a record that was reported written survives a power loss. A crash mid-append
 * loses at most that one record: the torn line is skipped by readers and the next writer starts on a
 * fresh line.
 */
import { closeSync, fstatSync, fsyncSync, openSync, readFileSync, readSync, writeSync } from 'node:fs'
import { userInfo } from 'node:os'
import { dirname } from 'node:path'
import { errnoCode, ExternalError } from './errors.js'
import { ensureDirSync, fsyncDirSync, shareFileLikeDirSync } from './fs.js'

/** The user name for a log record; the uid where the user has no name (a container without passwd entry). */
export function currentUser(): string {
  try {
    return userInfo().username
  } catch {
    return String(process.getuid?.() ?? 'unknown')
  }
}

export interface AppendOptions {
  /**
   * The log is shared by the accounts of a group (the store's, after `store init`): a directory made for it
   * and the log itself, when this append creates them inside a setgid directory, get that directory's
   * group permissions (lib/fs.ts shareLikeParent), so that every member can append.
   */
  shared?: boolean
}

export function appendJsonLine(path: string, record: object, options: AppendOptions = {}): void {
  ensureDirSync(dirname(path), { shared: options.shared })
  const fd = openSync(path, 'a+')
  try {
    const size = fstatSync(fd).size
    // An empty log was just created (or was never written): one made with a private umask would shut the
    // rest of the group out of the log for good.
    if (size === 0 && options.shared) shareFileLikeDirSync(fd, dirname(path))
    // A crash mid-append can leave a torn last line; start on a fresh line so this record stays whole.
    const last = Buffer.alloc(1)
    const torn = size > 0 && readSync(fd, last, 0, 1, size - 1) === 1 && last[0] !== 0x0a
    const line = Buffer.from((torn ? '\n' : '') + JSON.stringify(record) + '\n', 'utf8')
    const n = writeSync(fd, line)
    // A short write without an error: the device took less than asked (a full disk, a quota).
    if (n !== line.length) throw new ExternalError(`Short write to ${path} (${n} of ${line.length} bytes)`, { code: 'DISK_FULL' })
    fsyncSync(fd)
    // The log was just created: make its directory entry durable too, or a power loss could drop the file.
    if (size === 0) fsyncDirSync(dirname(path))
  } finally {
    closeSync(fd)
  }
}

/** Every complete record, oldest first; none when the log does not exist. */
export function readJsonLines<T>(path: string): T[] {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return []
    throw err
  }
  const out: T[] = []
  for (const line of text.split('\n')) {
    if (!line.trim()) continue
    try {
      out.push(JSON.parse(line) as T)
    } catch {
      // a line torn by a crash mid-append: nothing after it was written by that process
    }
  }
  return out
}
