/**
 * The name of a new version: the one asked for, else v<YYYY-MM-DD> of the UTC date, with .1, .2 ... when
 * that is taken by a finalized version or by one being staged (another build's claim on the name).
 */
import { readdirSync } from 'node:fs'
import { errnoCode } from '../lib/errors.js'
import { TEMP_SUFFIX } from '../lib/fs.js'

export function dateVersion(now: Date): string {
  return `v${now.toISOString().slice(0, 10)}`
}

/** Finalized and staged version names under <agent>/versions (none when the agent is new). */
export function takenVersions(versionsDir: string): Set<string> {
  let names: string[]
  try {
    names = readdirSync(versionsDir)
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return new Set()
    throw err
  }
  return new Set(names.map((n) => (n.endsWith(TEMP_SUFFIX) ? n.slice(0, -TEMP_SUFFIX.length) : n)))
}

/** base, else base.1, base.2 ... the first not in taken. */
export function freeVersion(base: string, taken: ReadonlySet<string>): string {
  if (!taken.has(base)) return base
  for (let i = 1; ; i++) if (!taken.has(`${base}.${i}`)) return `${base}.${i}`
}
