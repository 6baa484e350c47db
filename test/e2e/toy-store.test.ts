/** Acceptance 2: toy-store builds a verified demo store whose current models run in onnxruntime-node. */
import { lstatSync, readlinkSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { checkToyModel } from '../../src/toy/check.js'
import { cli, envelope, makeTemp, removeTemps, snapshot } from '../helpers/store-helpers.js'

afterAll(removeTemps)

describe('toy-store', () => {
  it('creates a demo store: --json exits 0, store verify exits 0, current is a relative link to a runnable model', async () => {
    const dir = join(makeTemp(), 'demo-store')
    const r = cli(['toy-store', dir, '--json'])
    expect(r.code, r.stderr).toBe(0)
    const out = envelope(r)
    expect(out.status).toBe(0)
    expect(out.result.agents.map((a: { agent: string; current: string }) => `${a.agent}:${a.current}`)).toEqual(['scout:v2', 'synthesizer:v2', 'analyst:v2', 'memory:v2'])
    expect(out.result.verified).toBe(8)
    const verify = cli(['store', 'verify', '--store', dir])
    expect(verify.code, verify.stderr).toBe(0)
    for (const agent of ['scout', 'synthesizer', 'analyst', 'memory']) {
      const link = join(dir, agent, 'current')
      expect(lstatSync(link).isSymbolicLink()).toBe(true)
      expect(readlinkSync(link)).toBe('versions/v2')
      const check = await checkToyModel(join(dir, agent, 'versions', 'v2'))
      expect(check.shape[0]).toBe(2)
    }
  })

  it('refuses to overwrite versions that exist (exit 5), leaving the store unchanged; bad agent names exit 2', () => {
    const dir = join(makeTemp(), 'demo')
    expect(cli(['toy-store', dir, '--agents', 'scout', '--versions', '1']).code).toBe(0)
    const before = snapshot(dir)
    const again = cli(['toy-store', dir, '--agents', 'memory,scout'])
    expect(again.code).toBe(5)
    expect(again.stderr).toContain('already holds scout v1')
    const bad = cli(['toy-store', dir, '--agents', 'ok,../evil'])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toContain('Invalid agent name "../evil"')
    expect(snapshot(dir)).toEqual(before)
  })
})
