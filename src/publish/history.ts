/** Replaying the audit log into the history of `current`, which rollback walks back through. */

/**
 * The sequence of `current` versions the audit log records, after undoing rollbacks (the last entry is the
 * version current names now). Each record also holds the version current named just before it (`previous`,
 * read from the link itself): when that differs from the stack's top, a change was made whose audit line a
 * crash lost (the line is written after the link swap), and the version it left is put back in its place.
 * A rollback's `skipped` (versions it passed over, gone or damaged) are taken off with the version it left.
 */
export function currentHistory(records: { op: string; channel?: string; version?: string; previous?: string | null; skipped?: unknown }[]): string[] {
  const stack: string[] = []
  const push = (v: string): void => {
    if (stack[stack.length - 1] !== v) stack.push(v)
  }
  for (const r of records) {
    if (r.channel !== 'current' || !r.version) continue
    if (typeof r.previous === 'string') push(r.previous)
    if (r.op === 'rollback') {
      stack.pop()
      // A rollback that passed over gone or damaged versions went back past them, too.
      const skipped = new Set(Array.isArray(r.skipped) ? r.skipped : [])
      while (stack.length > 0 && stack[stack.length - 1] !== r.version && skipped.has(stack[stack.length - 1])) stack.pop()
    }
    push(r.version)
  }
  return stack
}
