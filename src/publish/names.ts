/**
 * Names of agents, versions and channels (docs/store.md). They become path components, so anything
 * that could escape the store, hide (leading dot), look like a flag (leading dash), or collide with the
 * store's own entries (`versions`, `<version>.tmp`) is refused before any write.
 */
import { UsageError } from '../lib/errors.js'

export type NameKind = 'agent' | 'version' | 'channel'

const PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/

/** Why `name` is not a valid name of this kind, or null when it is. */
export function nameProblem(kind: NameKind, name: unknown): string | null {
  if (typeof name !== 'string' || name.length === 0) return 'it is empty'
  if (name.length > 128) return `it is ${name.length} characters long (at most 128)`
  if (name === '.' || name === '..') return `"${name}" is reserved`
  if (!PATTERN.test(name)) {
    if (name.includes('/') || name.includes('\\')) return 'it contains a path separator'
    if (name.startsWith('.')) return 'it starts with "."'
    if (name.startsWith('-')) return 'it starts with "-"'
    return 'it may only hold letters, digits, ".", "_" and "-"'
  }
  if (name.toLowerCase().endsWith('.tmp')) return 'it ends in ".tmp" (reserved for staging)'
  if (name === 'versions') return '"versions" is reserved'
  if (kind === 'version' && name === 'current') return '"current" is reserved'
  return null
}

export function validateName(kind: NameKind, name: unknown): string {
  const problem = nameProblem(kind, name)
  if (problem) {
    const shown = typeof name === 'string' ? JSON.stringify(name.length > 60 ? name.slice(0, 60) + '…' : name) : String(name)
    throw new UsageError(`Invalid ${kind} name ${shown}: ${problem}`, {
      code: 'INVALID_NAME',
      hint: `${kind === 'agent' ? 'An' : 'A'} ${kind} name is 1 to 128 characters of letters, digits, ".", "_" and "-", starting with a letter or digit, not ending in ".tmp".`,
      details: { kind, name },
    })
  }
  return name as string
}
