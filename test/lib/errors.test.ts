import { describe, expect, it } from 'vitest'
import {
  ConflictError,
  describeError,
  ExitCode,
  ExternalError,
  IntegrityError,
  errorFromCode,
  InternalError,
  InterruptedError,
  NotFoundError,
  PolicyError,
  UsageError,
} from '../../src/lib/errors.js'

describe('errors', () => {
  it('map each family to its documented exit code', () => {
    expect(new UsageError('x', { code: 'USAGE' }).exitCode).toBe(2)
    expect(new ExternalError('x', { code: 'TOOL_FAILED' }).exitCode).toBe(3)
    expect(new IntegrityError('x', { code: 'VERIFY_FAILED' }).exitCode).toBe(4)
    expect(new ConflictError('x', { code: 'VERSION_EXISTS' }).exitCode).toBe(5)
    expect(new NotFoundError('x', { code: 'VERSION_NOT_FOUND' }).exitCode).toBe(6)
    expect(new PolicyError('x', { code: 'SOURCE_NOT_ALLOWED' }).exitCode).toBe(7)
    expect(new InternalError('x', { code: 'INTERNAL' }).exitCode).toBe(1)
    expect(new InterruptedError('x', { code: 'INTERRUPTED' }).exitCode).toBe(130)
  })

  it('an interrupted command exits 130, as shells report one that SIGINT ended, also when rebuilt from its code', () => {
    const err = new InterruptedError('build interrupted', { code: 'INTERRUPTED' })
    expect(describeError(err)).toMatchObject({ exitCode: 130, error: { code: 'INTERRUPTED', hint: expect.stringMatching(/Rerun/) } })
    expect(errorFromCode('INTERRUPTED', 'again')).toBeInstanceOf(InterruptedError)
  })

  it('describe our errors with code, message, hint and details for --json', () => {
    const err = new ConflictError('version v1 of scout exists', {
      code: 'VERSION_EXISTS',
      hint: 'Pick a new version name.',
      details: { agent: 'scout' },
    })
    expect(describeError(err)).toEqual({
      exitCode: ExitCode.conflict,
      error: { code: 'VERSION_EXISTS', message: 'version v1 of scout exists', hint: 'Pick a new version name.', details: { agent: 'scout' } },
    })
  })

  it('treat oclif parse errors as usage errors', () => {
    const parseError = Object.assign(new Error('Nonexistent flag: --nope\nSee more help with --help'), { oclif: { exit: 2 } })
    expect(describeError(parseError).exitCode).toBe(ExitCode.usage)
    expect(describeError(parseError).error.message).toBe('Nonexistent flag: --nope')
    expect(describeError(parseError).error.hint).toMatch(/--help/)
  })

  it('treat anything else as a bug (exit 1) with a hint to report it', () => {
    const d = describeError(new TypeError('cannot read x of undefined'))
    expect(d.exitCode).toBe(ExitCode.internal)
    expect(d.error.code).toBe('INTERNAL')
    expect(d.error.hint).toMatch(/bug/)
    expect(describeError('plain string').error.message).toBe('plain string')
  })
})
