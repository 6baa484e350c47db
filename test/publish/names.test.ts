import { describe, expect, it } from 'vitest'
import { nameProblem, validateName } from '../../src/publish/names.js'
import { UsageError } from '../../src/lib/errors.js'

describe('names', () => {
  it.each(['scout', 'v1', 'v2026-11-23', 'A.b_c-9', '9lives', 'x'.repeat(128)])('accepts %s', (name) => {
    expect(nameProblem('version', name)).toBeNull()
    expect(validateName('agent', name)).toBe(name)
  })

  it.each([
    ['', /empty/],
    ['..', /reserved/],
    ['.', /reserved/],
    ['a/b', /path separator/],
    ['../etc', /separator/],
    ['a\\b', /separator/],
    ['.hidden', /starts with "\."/],
    ['-rf', /starts with "-"/],
    ['v1.tmp', /\.tmp/],
    ['v1.TMP', /\.tmp/],
    ['x'.repeat(129), /129 characters/],
    ['versions', /reserved/],
    ['a b', /letters, digits/],
    ['naïve', /letters, digits/],
  ])('refuses %j', (name, why) => {
    expect(nameProblem('agent', name)).toMatch(why)
    expect(() => validateName('version', name)).toThrow(UsageError)
  })

  it('refuses "current" as a version but not as a channel', () => {
    expect(nameProblem('version', 'current')).toMatch(/reserved/)
    expect(nameProblem('channel', 'current')).toBeNull()
  })

  it('carries code INVALID_NAME, exit 2 and a hint', () => {
    try {
      validateName('agent', '../x')
      expect.unreachable()
    } catch (err) {
      const e = err as UsageError
      expect(e.exitCode).toBe(2)
      expect(e.code).toBe('INVALID_NAME')
      expect(e.hint).toMatch(/1 to 128 characters/)
    }
  })
})
