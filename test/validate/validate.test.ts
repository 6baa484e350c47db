import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { GraphBuilder } from '../../src/onnx/graph-builder.js'
import { DataType, writeModel } from '../../src/onnx/proto.js'
import { IntegrityError, NotFoundError, UsageError } from '../../src/lib/errors.js'
import { assertValidated, formatValidation, validateModel, validationError } from '../../src/validate/validate.js'

const TINY = ['tiny-bert', 'tiny-bert-classifier', 'tiny-roberta', 'tiny-distilbert-classifier']
let dir: string

/** y = x * scale (+ bias), float32 [batch, 4] or float16. */
async function scaleModel(name: string, scale: number, opts: { bias?: number; elem?: number; outName?: string } = {}): Promise<string> {
  const elem = opts.elem ?? DataType.FLOAT
  const g = new GraphBuilder()
  g.input('x', elem, ['batch', 4])
  const k = g.initializer('k', [], elem === DataType.FLOAT ? new Float32Array([scale]) : new Uint16Array([0x3c00]), elem)
  let y = g.op('Mul', ['x', k])
  if (opts.bias !== undefined) y = g.op('Add', [y, g.initializer('b', [4], new Float32Array([opts.bias, 0, 0, 0]))])
  g.node('Identity', [y], [opts.outName ?? 'y'])
  g.output(opts.outName ?? 'y', elem, ['batch', 4])
  const path = join(dir, name)
  await writeModel(path, g.toModel())
  return path
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mf-validate-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

describe('validateModel against reference.json (PyTorch outputs)', () => {
  it.each(TINY)('%s: the torch export matches within 1e-4', async (m) => {
    const result = await validateModel({
      candidate: `fixtures/hf-tiny/${m}/model.onnx`,
      reference: `fixtures/hf-tiny/${m}/reference.json`,
      atol: ['1e-4'],
    })
    expect(result.failed).toEqual([])
    expect(result).toMatchObject({ passed: true, referenceKind: 'json', inputsFrom: 'reference', datasets: 1 })
    for (const o of result.outputs) expect(o.maxAbsErr).toBeLessThan(1e-5)
    expect(formatValidation(result)).toMatch(/PASSED: (\d) of \1 outputs within tolerance/)
  })

  it('refuses a reference made for another model', async () => {
    const err = await validateModel({
      candidate: 'fixtures/hf-tiny/tiny-bert/model.onnx',
      reference: 'fixtures/hf-tiny/tiny-bert-classifier/reference.json',
    }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(UsageError)
    expect((err as UsageError).message).toMatch(/expected output "logits" is not one of the model's \(last_hidden_state, pooler_output\)/)
  })

  it('needs inputs when the reference carries only outputs', async () => {
    const ref = JSON.parse(await readFile('fixtures/hf-tiny/tiny-bert/reference.json', 'utf8')) as { inputs: unknown; outputs: unknown }
    const outputsOnly = join(dir, 'outputs-only.json')
    const inputsOnly = join(dir, 'inputs-only.json')
    await writeFile(outputsOnly, JSON.stringify({ outputs: ref.outputs }))
    await writeFile(inputsOnly, JSON.stringify({ inputs: ref.inputs }))
    const base = { candidate: 'fixtures/hf-tiny/tiny-bert/model.onnx', reference: outputsOnly }
    await expect(validateModel(base)).rejects.toMatchObject({ code: 'INPUTS_REQUIRED' })
    const result = await validateModel({ ...base, inputs: inputsOnly })
    expect(result).toMatchObject({ passed: true, inputsFrom: 'inputs' })
    await expect(validateModel({ ...base, reference: inputsOnly })).rejects.toMatchObject({ code: 'REFERENCE_EMPTY' })
  })

  it('pairs --inputs sets with the reference data sets, one for all or one each', async () => {
    const t = join(dir, 'two-sets')
    const { cp } = await import('node:fs/promises')
    await cp('fixtures/onnx-backend-node/test_add', t, { recursive: true })
    await cp(join(t, 'test_data_set_0'), join(t, 'test_data_set_1'), { recursive: true })
    const candidate = join(t, 'model.onnx')
    const result = await validateModel({ candidate, reference: t })
    expect(result).toMatchObject({ passed: true, datasets: 2 })
    expect(result.outputs.map((o) => o.dataset)).toEqual(['test_data_set_0', 'test_data_set_1'])
    expect((await validateModel({ candidate, reference: t, inputs: join(t, 'test_data_set_0') })).passed).toBe(true)
    const three = join(dir, 'three-sets')
    await cp(t, three, { recursive: true })
    await cp(join(t, 'test_data_set_0'), join(three, 'test_data_set_2'), { recursive: true })
    await expect(validateModel({ candidate, reference: t, inputs: three })).rejects.toThrow(/--inputs holds 3 input sets but the reference 2/)
  })

  it('compares only the outputs asked for, and refuses unknown ones', async () => {
    const base = { candidate: 'fixtures/hf-tiny/tiny-bert/model.onnx', reference: 'fixtures/hf-tiny/tiny-bert/reference.json' }
    const result = await validateModel({ ...base, outputs: ['pooler_output'] })
    expect(result.outputs.map((o) => o.name)).toEqual(['pooler_output'])
    await expect(validateModel({ ...base, outputs: ['nope'] })).rejects.toMatchObject({ code: 'OUTPUT_UNKNOWN' })
  })

  it('applies name:value tolerances to that output only, and refuses a name no output has', async () => {
    const base = { candidate: 'fixtures/hf-tiny/tiny-bert/model.onnx', reference: 'fixtures/hf-tiny/tiny-bert/reference.json' }
    // The torch export differs from reference.json by up to ~6e-7: zero tolerance fails, but only where asked.
    const strict = await validateModel({ ...base, atol: ['pooler_output:0'], rtol: ['pooler_output:0'] })
    const byName = Object.fromEntries(strict.outputs.map((o) => [o.name, o]))
    expect(byName.pooler_output).toMatchObject({ atol: 0, rtol: 0, passed: false })
    expect(byName.last_hidden_state).toMatchObject({ atol: 1e-4, rtol: 1e-3, passed: true })
    expect(strict.failed).toEqual(['reference.json/pooler_output'])

    const err = (await validateModel({ ...base, atol: ['pooler_outptu:1e-3'] }).catch((e: unknown) => e)) as UsageError
    expect(err).toBeInstanceOf(UsageError)
    expect(err.exitCode).toBe(2)
    expect(err.code).toBe('OUTPUT_UNKNOWN')
    expect(err.message).toMatch(/--atol pooler_outptu:0.001: no compared output is named pooler_outptu \(outputs: last_hidden_state, pooler_output\)/)
    expect(err.hint).toMatch(/--atol last_hidden_state:1e-3/)
    await expect(validateModel({ ...base, rtol: ['logits:1e-2'] })).rejects.toMatchObject({ code: 'OUTPUT_UNKNOWN' })
  })
})

describe('validateModel against another ONNX model', () => {
  it('passes a model against itself on generated inputs, reporting seed and shapes', async () => {
    const m = 'fixtures/hf-tiny/tiny-bert/model.onnx'
    const result = await validateModel({ candidate: m, reference: m, generate: { samples: 3, sequenceLength: 5, seed: 11 } })
    expect(result).toMatchObject({ passed: true, referenceKind: 'onnx', inputsFrom: 'generated' })
    expect(result.generated).toEqual({ seed: 11, shapes: { input_ids: [3, 5], attention_mask: [3, 5], token_type_ids: [3, 5] } })
    expect(result.outputs.map((o) => [o.name, o.maxAbsErr])).toEqual([['last_hidden_state', 0], ['pooler_output', 0]])
  })

  it('fails a different model with exit 4, saying which output and by how much', async () => {
    const a = await scaleModel('a.onnx', 2)
    const b = await scaleModel('b.onnx', 2, { bias: 0.01 })
    const result = await validateModel({ candidate: b, reference: a })
    expect(result.passed).toBe(false)
    expect(result.failed).toEqual(['generated/y'])
    const y = result.outputs[0]
    expect(y.maxAbsErr).toBeCloseTo(0.01, 6)
    expect(y.mismatches).toBe(2) // column 0 of both generated rows
    const err = validationError(result)
    expect(err).toBeInstanceOf(IntegrityError)
    expect(err.exitCode).toBe(4)
    expect(err.message).toMatch(/validation failed for 1 of 1 outputs: y: 2 of 8 elements outside atol 0.0001/)
    expect(err.hint).toMatch(/--atol y:0.015/)
    expect((err.details as { result: unknown }).result).toBe(result)
    expect(() => assertValidated(result)).toThrow(IntegrityError)
    expect(formatValidation(result)).toMatch(/y +\[2,4\] .* FAIL: 2 of 8 elements/)
    // A per-output tolerance lets it through.
    expect((await validateModel({ candidate: b, reference: a, atol: ['y:0.02'] })).passed).toBe(true)
  })

  it('gives a hint about provenance when outputs are unrelated', async () => {
    const a = await scaleModel('c.onnx', 2)
    const b = await scaleModel('d.onnx', -2)
    const result = await validateModel({ candidate: b, reference: a })
    expect(validationError(result).hint).toMatch(/cosine -1.000\): check that the candidate comes from the same weights/)
  })

  it('uses --inputs with a model reference', async () => {
    const a = await scaleModel('e.onnx', 3)
    const inputs = join(dir, 'x.json')
    await writeFile(inputs, JSON.stringify({ inputs: { x: { dtype: 'float32', dims: [1, 4], data: [1, 2, 3, 4] } } }))
    const result = await validateModel({ candidate: a, reference: a, inputs })
    expect(result).toMatchObject({ passed: true, inputsFrom: 'inputs' })
    expect(result.outputs[0].dims).toEqual([1, 4])
  })

  it('refuses models that share no output', async () => {
    const a = await scaleModel('f.onnx', 1)
    const b = await scaleModel('g.onnx', 1, { outName: 'z' })
    await expect(validateModel({ candidate: b, reference: a })).rejects.toMatchObject({ code: 'REFERENCE_MISMATCH' })
  })

  it('applies fp16 tolerances to a float16 candidate', async () => {
    // float16 x*1 vs float32 x*1.004: 0.4% off, inside fp16's 1e-2 but not fp32's defaults.
    const half = await scaleModel('h16.onnx', 1, { elem: DataType.FLOAT16 })
    const g = new GraphBuilder()
    g.input('x', DataType.FLOAT16, ['batch', 4])
    const x32 = g.op('Cast', ['x'], { to: DataType.FLOAT })
    const y = g.op('Mul', [x32, g.initializer('k', [], new Float32Array([1.004]))])
    g.node('Identity', [y], ['y'])
    g.output('y', DataType.FLOAT, ['batch', 4])
    const ref = join(dir, 'ref32.onnx')
    await writeModel(ref, g.toModel())
    expect((await validateModel({ candidate: half, reference: ref })).passed).toBe(false)
    const r = await validateModel({ candidate: half, reference: ref, precision: 'fp16' })
    expect(r.passed).toBe(true)
    expect(r.outputs[0]).toMatchObject({ dtype: 'float16', referenceDtype: 'float32', atol: 1e-2, rtol: 1e-2 })
  })

  it('judges int8 logits by cosine and argmax', async () => {
    const logits = async (name: string, w: number[]) => {
      const g = new GraphBuilder()
      g.input('x', DataType.FLOAT, ['batch', 2])
      g.node('MatMul', ['x', g.initializer('w', [2, 2], new Float32Array(w))], ['logits'])
      g.output('logits', DataType.FLOAT, ['batch', 2])
      const p = join(dir, name)
      await writeModel(p, g.toModel())
      return p
    }
    const ref = await logits('ref-logits.onnx', [1, 0, 0, 1])
    // Symmetric change: logit0 - logit1 = 1.01 (x0 - x1), so the argmax is kept while every value moves.
    const close = await logits('q-logits.onnx', [1.02, 0.01, 0.01, 1.02])
    const swapped = await logits('bad-logits.onnx', [0, 1, 1, 0])
    const ok = await validateModel({ candidate: close, reference: ref, precision: 'int8', generate: { samples: 8 } })
    expect(ok.passed).toBe(true)
    expect(ok.outputs[0]).toMatchObject({ argmaxAgreement: 1 })
    expect(ok.outputs[0].maxAbsErr).toBeGreaterThan(1e-3)
    const bad = await validateModel({ candidate: swapped, reference: ref, precision: 'int8', generate: { samples: 8 } })
    expect(bad.passed).toBe(false)
    expect(bad.outputs[0].reason).toMatch(/argmax differs/)
  })

  it('under int8, a per-output tolerance adds the elementwise rule to that output only', async () => {
    const two = async (name: string, k: number, w: number[]) => {
      const g = new GraphBuilder()
      g.input('x', DataType.FLOAT, ['batch', 2])
      g.node('MatMul', ['x', g.initializer('w', [2, 2], new Float32Array(w))], ['logits'])
      g.node('Mul', ['x', g.initializer('k', [], new Float32Array([k]))], ['hidden'])
      g.output('logits', DataType.FLOAT, ['batch', 2])
      g.output('hidden', DataType.FLOAT, ['batch', 2])
      const p = join(dir, name)
      await writeModel(p, g.toModel())
      return p
    }
    const ref = await two('ref-two.onnx', 1, [1, 0, 0, 1])
    // hidden is 1.5x the reference: same direction (cosine 1), far outside 0.1 elementwise.
    const cand = await two('cand-two.onnx', 1.5, [1.02, 0.01, 0.01, 1.02])
    const base = { candidate: cand, reference: ref, precision: 'int8' as const, generate: { samples: 8 } }
    const perOutput = await validateModel({ ...base, atol: ['logits:0.5'] })
    expect(perOutput.outputs.map((o) => [o.name, o.passed])).toEqual([['logits', true], ['hidden', true]])
    const strict = await validateModel({ ...base, atol: ['logits:0.5', 'hidden:0.01'], rtol: ['hidden:0.01'] })
    expect(strict.failed).toEqual(['generated/hidden'])
    expect(strict.outputs[1].reason).toMatch(/elements outside atol 0.01/)
    // A default tolerance applies everywhere.
    expect((await validateModel({ ...base, atol: ['0.01'], rtol: ['0.01'] })).failed).toEqual(['generated/logits', 'generated/hidden'])
  })
})

describe('validateModel errors', () => {
  it('reports a missing candidate or reference with exit 6', async () => {
    await expect(validateModel({ candidate: join(dir, 'none.onnx'), reference: 'fixtures/hf-tiny/tiny-bert/reference.json' })).rejects.toBeInstanceOf(NotFoundError)
    await expect(validateModel({ candidate: 'fixtures/hf-tiny/tiny-bert/model.onnx', reference: join(dir, 'none.json') })).rejects.toBeInstanceOf(NotFoundError)
  })

  it('refuses a broken candidate with exit 4 and an unknown precision with exit 2', async () => {
    const broken = join(dir, 'broken.onnx')
    const bytes = await readFile('fixtures/hf-tiny/tiny-bert/model.onnx')
    await writeFile(broken, bytes.subarray(0, 5000))
    await expect(validateModel({ candidate: broken, reference: 'fixtures/hf-tiny/tiny-bert/reference.json' })).rejects.toMatchObject({ exitCode: 4, code: 'ONNX_INVALID' })
    // @ts-expect-error an invalid precision from an untyped caller
    await expect(validateModel({ candidate: broken, reference: broken, precision: 'int4' })).rejects.toMatchObject({ exitCode: 2, code: 'INVALID_PRECISION' })
  })

  it('refuses inputs of the wrong dtype, naming the input', async () => {
    const a = await scaleModel('i.onnx', 1)
    const inputs = join(dir, 'x64.json')
    await writeFile(inputs, JSON.stringify({ inputs: { x: { dtype: 'int64', dims: [1, 4], data: [1, 2, 3, 4] } } }))
    await expect(validateModel({ candidate: a, reference: a, inputs })).rejects.toMatchObject({ code: 'INPUT_DTYPE_MISMATCH' })
  })
})
