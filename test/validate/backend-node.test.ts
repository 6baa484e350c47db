/**
 * Acceptance 4: validate passes on every ONNX backend node test onnxruntime-node can run, and the ones it
 * cannot are exactly those listed (with their error code) in fixtures/onnx-backend-node/unsupported.json.
 * In-process library calls: about 2 s for all 286 tests.
 */
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { readdirSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { decodeTensor, encodeTensor } from '../../src/onnx/proto.js'
import { IntegrityError, ModelforgeError } from '../../src/lib/errors.js'
import { assertValidated, validateModel } from '../../src/validate/validate.js'

const ROOT = 'fixtures/onnx-backend-node'
const unsupported = (JSON.parse(readFileSync(join(ROOT, 'unsupported.json'), 'utf8')) as { tests: Record<string, { code: string; reason: string }> }).tests
const tests = readdirSync(ROOT).filter((d) => d.startsWith('test_')).sort()
// ONNX's own loader defaults (onnx/backend/test/loader).
const tolerances = { atol: ['1e-7'], rtol: ['1e-3'] }

describe('ONNX backend node tests', () => {
  it('has the fixture set and a list that only names existing tests', () => {
    expect(tests.length).toBe(286)
    for (const name of Object.keys(unsupported)) expect(tests).toContain(name)
    for (const entry of Object.values(unsupported)) expect(entry.reason.length).toBeGreaterThan(20)
  })

  for (const name of tests) {
    const listed = unsupported[name]
    it(listed ? `${name} is refused (${listed.code})` : `${name} passes`, async () => {
      const run = validateModel({ candidate: join(ROOT, name, 'model.onnx'), reference: join(ROOT, name), ...tolerances })
      if (listed) {
        const err = await run.then(() => undefined, (e: unknown) => e)
        expect(err, `${name} is listed as unsupported but now works: remove it from unsupported.json`).toBeInstanceOf(ModelforgeError)
        expect((err as ModelforgeError).code).toBe(listed.code)
        expect((err as ModelforgeError).hint).toBeTruthy()
      } else {
        const result = await run
        expect(result.failed, JSON.stringify(result.outputs.filter((o) => !o.passed))).toEqual([])
        expect(result.inputsFrom).toBe('reference')
        expect(result.outputs.length).toBeGreaterThan(0)
      }
    })
  }
})

describe('perturbed expected outputs fail', () => {
  let dir: string
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mf-perturb-'))
  })
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  /** Copies a test and adds delta to element `index` of output_0.pb (raw little-endian float32 or int data). */
  async function perturb(name: string, edit: (view: DataView, count: number) => void): Promise<string> {
    const target = join(dir, name)
    await cp(join(ROOT, name), target, { recursive: true })
    const pb = join(target, 'test_data_set_0', 'output_0.pb')
    const proto = decodeTensor(await readFile(pb))
    const raw = Buffer.from(proto.rawData!)
    edit(new DataView(raw.buffer, raw.byteOffset, raw.byteLength), raw.byteLength)
    proto.rawData = raw
    await writeFile(pb, encodeTensor(proto))
    return target
  }

  it.each([
    ['test_add', 1e-3],
    ['test_softmax_example', 1e-4],
    ['test_layer_normalization_4d_axis_negative_1', 5e-3],
    ['test_attention_3d_gqa_causal', 1e-2],
  ])('%s with one float changed by %s', async (name, delta) => {
    const ref = await perturb(name, (v) => v.setFloat32(4, v.getFloat32(4, true) + delta * 10, true))
    const result = await validateModel({ candidate: join(ROOT, name, 'model.onnx'), reference: ref, ...tolerances })
    expect(result.passed).toBe(false)
    const bad = result.outputs.find((o) => !o.passed)!
    expect(bad.mismatches).toBe(1)
    expect(bad.worst?.index).toBe(1)
    expect(bad.maxAbsErr).toBeCloseTo(delta * 10, 3)
    expect(bad.reason).toMatch(/1 of \d+ elements outside atol/)
    const err = (() => { try { assertValidated(result) } catch (e) { return e } })()
    expect(err).toBeInstanceOf(IntegrityError)
    expect((err as IntegrityError).exitCode).toBe(4)
    expect((err as IntegrityError).message).toContain(bad.name)
  })

  it('an integer output off by one fails', async () => {
    const ref = await perturb('test_add_int8', (v) => v.setInt8(0, v.getInt8(0) + 1))
    const result = await validateModel({ candidate: join(ROOT, 'test_add_int8', 'model.onnx'), reference: ref, ...tolerances })
    expect(result.passed).toBe(false)
    expect(result.outputs[0].maxAbsErr).toBe(1)
  })
})
