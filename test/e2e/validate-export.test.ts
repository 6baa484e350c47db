/**
 * Acceptance 1 end to end: `modelforge export --exporter native` of every hf-tiny checkpoint, then
 * `modelforge validate` of the result against the PyTorch outputs in reference.json within atol 1e-4.
 */
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cli, envelope } from '../helpers/store-helpers.js'

const TINY = ['tiny-bert', 'tiny-bert-classifier', 'tiny-roberta', 'tiny-distilbert-classifier']
let dir: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mf-e2e-export-validate-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

describe('native export validated against PyTorch', () => {
  it.each(TINY)('%s', (m) => {
    const out = join(dir, m)
    const exported = cli(['export', `fixtures/hf-tiny/${m}`, '--out', out, '--exporter', 'native', '--json'])
    expect(exported.code, exported.stdout).toBe(0)
    const r = cli(['validate', join(out, 'model.onnx'), '--reference', `fixtures/hf-tiny/${m}/reference.json`, '--atol', '1e-4', '--json'])
    expect(r.code, r.stdout).toBe(0)
    const result = envelope(r).result
    expect(result.passed).toBe(true)
    expect(result.outputs.length).toBeGreaterThan(0)
    for (const o of result.outputs) {
      expect(o.atol).toBe(1e-4)
      expect(o.mismatches).toBe(0)
      expect(o.cosine).toBeGreaterThan(0.99999)
    }
  })

  it('the native tiny-bert export agrees with the torch export on generated, padded inputs', () => {
    const out = join(dir, 'tiny-bert')
    // Reuses the export above; makes its own when this test runs alone.
    if (!existsSync(join(out, 'model.onnx'))) expect(cli(['export', 'fixtures/hf-tiny/tiny-bert', '--out', out, '--exporter', 'native']).code).toBe(0)
    const r = cli(['validate', join(out, 'model.onnx'), '--reference', 'fixtures/hf-tiny/tiny-bert/model.onnx', '--samples', '4', '--sequence-length', '64', '--seed', '3', '--json'])
    expect(r.code, r.stdout).toBe(0)
    expect(envelope(r).result).toMatchObject({ passed: true, inputsFrom: 'generated', generated: { shapes: { input_ids: [4, 64] } } })
  })
})
