import { describe, expect, it } from 'vitest'
import { currentHistory } from '../../src/publish/history.js'

describe('currentHistory', () => {
  it('currentHistory undoes rollbacks', () => {
    const f = (version: string) => ({ op: 'finalize', channel: 'current', version })
    expect(currentHistory([f('v1'), f('v2'), f('v3'), { op: 'rollback', channel: 'current', version: 'v2' }])).toEqual(['v1', 'v2'])
    expect(currentHistory([f('v1'), f('v2'), { op: 'promote', channel: 'staging', version: 'v1' }])).toEqual(['v1', 'v2'])
    // A crash between a link swap and its audit line loses the line; the next record's `previous` (read from
    // the link) brings the lost version back, so rollback returns to what current really named before.
    const g = (previous: string | null, version: string, op = 'finalize') => ({ op, channel: 'current', version, previous })
    expect(currentHistory([g(null, 'v1'), g('v1', 'v2'), g('v3', 'v4')])).toEqual(['v1', 'v2', 'v3', 'v4'])
    expect(currentHistory([g(null, 'v1'), g('v1', 'v2'), g('v1', 'v3'), g('v3', 'v1', 'rollback')])).toEqual(['v1', 'v2', 'v1'])
  })

  it('a rollback that skipped gone or damaged versions takes them off the history too', () => {
    const g = (previous: string | null, version: string, op = 'finalize', skipped?: string[]) => ({ op, channel: 'current', version, previous, ...(skipped ? { skipped } : {}) })
    const log = [g(null, 'v1'), g('v1', 'v2'), g('v2', 'v3'), g('v3', 'v4'), g('v4', 'v1', 'rollback', ['v3', 'v2'])]
    expect(currentHistory(log)).toEqual(['v1'])
    // From a dangling current (previous null), skipping the version the log last named.
    expect(currentHistory([g(null, 'v1'), g('v1', 'v2'), g(null, 'v1', 'rollback', ['v2'])])).toEqual(['v1'])
  })
})
