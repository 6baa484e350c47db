/**
 * The store refuses to make an operator's mistake worse, seen from the CLI: strict readers, and (below)
 * the flags and outputs of the safety checks whose mechanisms test/publish covers.
 */
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { cli, envelope, makeTemp, removeTemps } from '../helpers/store-helpers.js'

afterAll(removeTemps)

const strict = { env: { STRICT_MODEL_STORE: '1' } }

describe('STRICT_MODEL_STORE=1 and the store readers', () => {
  it('store list, show and verify of a missing store exit 6 when strict; non-strict list says so and exits 0', () => {
    const missing = join(makeTemp(), 'nope')
    for (const args of [['store', 'list'], ['store', 'list', '--json'], ['store', 'show', 'scout'], ['store', 'verify']]) {
      const r = cli([...args, '--store', missing], strict)
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(6)
      if (args.includes('--json')) expect(envelope(r).error).toMatchObject({ code: 'STORE_NOT_FOUND' })
      else expect(r.stderr).toMatch(/Model store .*nope does not exist\nHint: /)
    }
    expect(cli(['store', 'list', '--store', missing])).toMatchObject({ code: 0, stdout: 'No agents.\n' })
    expect(envelope(cli(['store', 'list', '--store', missing, '--json']))).toEqual({ status: 0, result: [] })
  })
})
