/** Replaying the audit log into the history of `current`, which rollback walks back through. */

/**
 * The sequence of `current` versions the audit log records, after undoing rollbacks (the last entry is the
 * version current names now). Each record also holds the version current named just before it (`previous`,
 * read from the link itself): when that differs from the stack's top, a change was made whose audit line a
 * crash lost (the line is written after the link swap), and the version it left is put back in its place.
 */
export function currentHistory(records: { op: string; channel?: string; version?: string; previous?: string | null }[]): string[] {
  const stack: string[] = []
  const push = (v: string): void => {
    if (stack[stack.length - 1] !== v) stack.push(v)
  }
  for (const r of records) {
    if (r.channel !== 'current' || !r.version) continue
    if (typeof r.previous === 'string') push(r.previous)
    if (r.op === 'rollback') stack.pop()
    push(r.version)
  }
  return stack
}
