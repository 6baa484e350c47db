/**
 * `modelforge validate` end to end through bin/run.js (dist/ must be built): acceptance 1 on the shipped
 * torch exports, exit 4 with the table on a perturbed reference, the --json envelope, usage errors.
 */
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { decodeTensor, encodeTensor } from '../../src/onnx/proto.js'
import { cli, envelope } from '../helpers/store-helpers.js'

const TINY = ['tiny-bert', 'tiny-bert-classifier', 'tiny-roberta', 'tiny-distilbert-classifier']
let dir: string
let perturbed: string

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mf-e2e-validate-'))
  // test_softmax_example with its second expected value raised by 0.05.
  perturbed = join(dir, 'test_softmax_example')
  await cp('fixtures/onnx-backend-node/test_softmax_example', perturbed, { recursive: true })
  const pb = join(perturbed, 'test_data_set_0', 'output_0.pb')
  const proto = decodeTensor(await readFile(pb))
  const raw = Buffer.from(proto.rawData!)
  raw.writeFloatLE(raw.readFloatLE(4) + 0.05, 4)
  proto.rawData = raw
  await writeFile(pb, encodeTensor(proto))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

describe('modelforge validate', () => {
  it.each(TINY)('%s: the shipped export matches reference.json within atol 1e-4 (exit 0)', (m) => {
    const r = cli(['validate', `fixtures/hf-tiny/${m}/model.onnx`, '--reference', `fixtures/hf-tiny/${m}/reference.json`, '--atol', '1e-4'])
    expect(r.stderr).not.toMatch(/Error/)
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/PASSED: (\d) of \1 outputs within tolerance/)
    expect(r.stdout).toMatch(/max abs +max rel +mean abs +cosine/)
  })

  it('--json: one object with per-output metrics', () => {
    const r = cli(['validate', 'fixtures/hf-tiny/tiny-bert/model.onnx', '--reference', 'fixtures/hf-tiny/tiny-bert/reference.json', '--json'])
    expect(r.code).toBe(0)
    const env = envelope(r)
    expect(env.status).toBe(0)
    expect(env.result).toMatchObject({ passed: true, referenceKind: 'json', precision: 'fp32', inputsFrom: 'reference', failed: [] })
    expect(env.result.outputs.map((o: { name: string }) => o.name)).toEqual(['last_hidden_state', 'pooler_output'])
    expect(env.result.outputs[0]).toMatchObject({ atol: 1e-4, rtol: 1e-3, mismatches: 0, nan: { candidate: 0, reference: 0 } })
  })

  it('an ONNX backend node test passes through the CLI with ONNX tolerances (exit 0)', () => {
    const r = cli(['validate', 'fixtures/onnx-backend-node/test_softmax_example/model.onnx', '--reference', 'fixtures/onnx-backend-node/test_softmax_example', '--atol', '1e-7', '--rtol', '1e-3'])
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/reference: .*test_softmax_example \(test-data\); inputs: reference/)
    expect(r.stdout).toMatch(/PASSED: 1 of 1 outputs within tolerance/)
  })

  it('a perturbed expected output: exit 4, the table names the output and the error', () => {
    const r = cli(['validate', 'fixtures/onnx-backend-node/test_softmax_example/model.onnx', '--reference', perturbed, '--atol', '1e-7', '--rtol', '1e-3'])
    expect(r.code).toBe(4)
    expect(r.stdout).toMatch(/^y +\[1,3\] +0\.05 .*FAIL: 1 of 3 elements outside atol 1e-7 \/ rtol 0.001/m)
    expect(r.stdout).toMatch(/FAILED: test_data_set_0\/y/)
    expect(r.stderr).toMatch(/Error: validation failed for 1 of 1 outputs: y: 1 of 3 elements/)
    expect(r.stderr).toMatch(/Hint: /)
  })

  it('a perturbed expected output with --json: status 4 and the metrics in error.details', () => {
    const r = cli(['validate', 'fixtures/onnx-backend-node/test_softmax_example/model.onnx', '--reference', perturbed, '--json'])
    expect(r.code).toBe(4)
    const env = envelope(r)
    expect(env.status).toBe(4)
    expect(env.error!.code).toBe('VALIDATION_FAILED')
    const y = env.error!.details.result.outputs[0]
    expect(y).toMatchObject({ name: 'y', passed: false, mismatches: 1, worst: { index: 1 } })
    expect(y.maxAbsErr).toBeCloseTo(0.05, 4)
  })

  it('another ONNX model as the reference, on generated inputs', () => {
    const r = cli(['validate', 'fixtures/hf-tiny/tiny-roberta/model.onnx', '--reference', 'fixtures/hf-tiny/tiny-roberta/model.onnx', '--samples', '3', '--sequence-length', '7', '--seed', '5', '--json'])
    expect(r.code).toBe(0)
    expect(envelope(r).result.generated).toEqual({ seed: 5, shapes: { input_ids: [3, 7], attention_mask: [3, 7] } })
  })

  it('usage errors exit 2, a missing model exits 6', () => {
    const bad = cli(['validate', 'fixtures/hf-tiny/tiny-bert/model.onnx', '--reference', 'fixtures/hf-tiny/tiny-bert/reference.json', '--atol', 'tight', '--json'])
    expect(bad.code).toBe(2)
    expect(envelope(bad).error).toMatchObject({ code: 'INVALID_TOLERANCE', hint: expect.stringMatching(/--atol logits:1e-3/) })
    expect(cli(['validate', 'fixtures/hf-tiny/tiny-bert/model.onnx']).code).toBe(2)
    const missing = cli(['validate', join(dir, 'nope.onnx'), '--reference', 'fixtures/hf-tiny/tiny-bert/reference.json', '--json'])
    expect(missing.code).toBe(6)
    expect(envelope(missing).error!.code).toBe('ONNX_NOT_FOUND')
  })

  it('a reference value its dtype cannot hold exits 2 (REFERENCE_INVALID) naming the tensor and the index, not 1', async () => {
    const ref = JSON.parse(await readFile('fixtures/hf-tiny/tiny-bert/reference.json', 'utf8'))
    const bad = (mutate: (r: typeof ref) => void): string => {
      const copy = structuredClone(ref)
      mutate(copy)
      return JSON.stringify(copy)
    }
    const cases: [string, string, RegExp][] = [
      ['float-id.json', bad((r) => { r.inputs.input_ids.data[2] = 1.5 }), /^inputs\.input_ids\[2\]: 1\.5 is not an integer, which int64 needs/],
      ['word.json', bad((r) => { r.outputs.pooler_output.data[7] = 'x' }), /^outputs\.pooler_output\[7\]: "x" is not a number/],
      ['huge-id.json', bad((r) => { r.inputs.attention_mask.data[0] = '99999999999999999999' }), /^inputs\.attention_mask\[0\]: 99999999999999999999 is outside the range of int64/],
    ]
    for (const [name, body, message] of cases) {
      await writeFile(join(dir, name), body)
      const r = cli(['validate', 'fixtures/hf-tiny/tiny-bert/model.onnx', '--reference', join(dir, name), '--json'])
      expect(r.code, r.stdout + r.stderr).toBe(2)
      expect(envelope(r).error).toMatchObject({ code: 'REFERENCE_INVALID', message: expect.stringMatching(message) })
    }
  })

  it('a --min-cosine that is not a number in [-1, 1] exits 2 before anything runs', () => {
    for (const value of ['abc', '1.5']) {
      const r = cli(['validate', 'fixtures/hf-tiny/tiny-bert/model.onnx', '--reference', 'fixtures/hf-tiny/tiny-bert/reference.json', '--min-cosine', value, '--json'])
      expect(r.code).toBe(2)
      expect(envelope(r).error).toMatchObject({ code: 'INVALID_COSINE', hint: expect.stringMatching(/--min-cosine 0.99/) })
    }
  })
})
