import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { dateVersion, freeVersion, takenVersions } from '../../src/pipeline/naming.js'

describe('version names', () => {
  it('v<YYYY-MM-DD> of the UTC date', () => {
    expect(dateVersion(new Date('2026-12-01T23:59:59Z'))).toBe('v2026-12-01')
    expect(dateVersion(new Date('2026-12-01T23:59:59-05:00'))).toBe('v2026-12-02')
  })

  it('the base name, else the first free .N', () => {
    expect(freeVersion('v2026-12-01', new Set())).toBe('v2026-12-01')
    expect(freeVersion('v2026-12-01', new Set(['v2026-12-01']))).toBe('v2026-12-01.1')
    expect(freeVersion('v2026-12-01', new Set(['v2026-12-01', 'v2026-12-01.1', 'v2026-12-01.3']))).toBe('v2026-12-01.2')
  })

  it('a version being staged takes its name too; a new agent has none', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mf-naming-'))
    try {
      expect(takenVersions(join(dir, 'versions'))).toEqual(new Set())
      mkdirSync(join(dir, 'versions', 'v1'), { recursive: true })
      mkdirSync(join(dir, 'versions', 'v2.tmp'))
      expect(takenVersions(join(dir, 'versions'))).toEqual(new Set(['v1', 'v2']))
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
