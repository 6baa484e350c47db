/**
 * makeFp16Model: the reference run that keeps nodes fp16 would break, then the rewrite; on the four tiny
 * Hugging Face fixtures against PyTorch's reference.json, and on models built to overflow or underflow.
 */
import { describe, expect, it } from 'vitest'
import { GraphBuilder } from '../../src/onnx/graph-builder.js'
import { DataType, encodeModel, readModel, type ModelProto } from '../../src/onnx/proto.js'
import { convertToFp16 } from '../../src/onnx/to-fp16.js'
import { DEFAULT_FP16_MAX_ABS, makeFp16Model, measureMagnitudes } from '../../src/validate/fp16-model.js'
import { loadModel, runModel, withModel } from '../../src/validate/runtime.js'
import { bindByName, readReferenceJson } from '../../src/validate/reference.js'
import { compareOutput } from '../../src/validate/compare.js'
import { generateInputs } from '../../src/validate/inputs.js'
import { withExposedValues } from '../../src/validate/intermediates.js'
import { f16ToF32 } from '../../src/onnx/float16.js'
import { prng, uniform } from '../../src/lib/random.js'
import { ModelforgeError } from '../../src/lib/errors.js'
import type { HostTensor, TensorMap } from '../../src/validate/tensors.js'

const FIXTURES = ['tiny-bert', 'tiny-bert-classifier', 'tiny-roberta', 'tiny-distilbert-classifier']

const floatWeightBytes = (model: ModelProto): number =>
  (model.graph?.initializer ?? []).filter((t) => t.dataType === DataType.FLOAT || t.dataType === DataType.FLOAT16).reduce((a, t) => a + (t.rawData?.length ?? 0), 0)
const values = (t: HostTensor): number[] => Array.from(t.data as Float32Array)

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p
  } catch (err) {
    if (err instanceof ModelforgeError) return err.code
    throw err
  }
  return undefined
}

/** Two batches of generated inputs for a fixture (in its 43-token vocabulary). */
async function samplesFor(path: string): Promise<TensorMap[]> {
  const loaded = await loadModel(path)
  try {
    return [0, 1].map((seed) => generateInputs(loaded.inputs, { vocabSize: 43, samples: 4, sequenceLength: 16, seed }))
  } finally {
    await loaded.session.release()
  }
}

describe('makeFp16Model on the tiny Hugging Face fixtures', () => {
  it.each(FIXTURES)('%s: half the weights, int64 in, float32 out, PyTorch reference within 1e-2', async (name) => {
    const dir = `fixtures/hf-tiny/${name}`
    const path = `${dir}/model.onnx`
    const original = await readModel(path)
    const { model, report } = await makeFp16Model({ model: original, path, samples: await samplesFor(path) })

    // Weight bytes halve exactly. The whole file does not (about 0.69-0.75): a third of these tiny exports
    // is graph structure, node and value names that fp16 does not shrink.
    expect(floatWeightBytes(model) / floatWeightBytes(original)).toBe(0.5)
    const ratio = encodeModel(model).length / encodeModel(original).length
    expect(ratio).toBeGreaterThan(0.45)
    expect(ratio).toBeLessThan(0.76)

    // The additive attention mask (-3.4e38 where padded) is beyond any fp16 range: measured and kept.
    expect(report.kept.length).toBeGreaterThan(0)
    expect(report.kept.every((k) => k.reason === 'magnitude' && ['Where', 'Add', 'Softmax'].includes(k.opType))).toBe(true)

    const ref = await readReferenceJson(`${dir}/reference.json`)
    await withModel(encodeModel(model), async (m) => {
      expect(m.inputs.every((i) => i.dtype === 'int64')).toBe(true)
      expect(m.outputs.every((o) => o.dtype === 'float32')).toBe(true)
      const out = await runModel(m, bindByName(ref.inputs, m.inputs.map((i) => i.name), 'inputs'))
      for (const o of ref.outputs) {
        const metrics = compareOutput(o.name!, 'reference.json', out[o.name!]!, o.tensor, { atol: 1e-2, rtol: 0, precision: 'fp16' })
        expect(metrics.passed, `${name} ${o.name}: max abs error ${metrics.maxAbsErr}`).toBe(true)
        expect(metrics.maxAbsErr).toBeLessThan(1e-2)
      }
    })
  })

  it('a weights-dominated model halves as a whole file (0.45 to 0.6)', async () => {
    const rng = prng(1)
    const g = new GraphBuilder('wide')
    g.input('x', DataType.FLOAT, ['batch', 256])
    g.node('MatMul', [g.op('Relu', [g.op('MatMul', ['x', g.initializer('W1', [256, 256], uniform(rng, 65536, 0.05))])]), g.initializer('W2', [256, 64], uniform(rng, 16384, 0.05))], ['y'])
    g.output('y', DataType.FLOAT, ['batch', 64])
    const original = g.toModel()
    const x = { dtype: 'float32' as const, dims: [4, 256], data: uniform(rng, 1024, 1) }
    const { model } = await makeFp16Model({ model: original, path: 'wide.onnx', samples: [{ x }] })
    const ratio = encodeModel(model).length / encodeModel(original).length
    expect(ratio).toBeGreaterThan(0.45)
    expect(ratio).toBeLessThan(0.6)
  })
})

/**
 * x [4, 16] -> MatMul (weights 4e3 to 5e3: values near 7e4) -> Mul 1e-3 -> Add -> y (~70).
 *
 * onnxruntime's CPU provider has fp16 kernels for few ops: it widens whole fp16 regions to float32 with
 * Casts of its own, so an fp16 model's final outputs on the CPU show only the rounding of stored values.
 * What fp16 does to a value is seen by fetching that value itself, as fp16 (exposeValues): onnxruntime
 * must then produce it in its declared type, as TensorRT holds it.
 */
function overflowing(): ModelProto {
  const rng = prng(2)
  const w = uniform(rng, 16 * 8, 1).map((v) => 1e3 * (4 + Math.abs(v)))
  const g = new GraphBuilder('overflow')
  g.input('x', DataType.FLOAT, [4, 16])
  g.node('MatMul', ['x', g.initializer('W', [16, 8], w)], ['big'])
  g.node('Add', [g.op('Mul', ['big', g.initializer('scale', [], new Float32Array([1e-3]))]), g.initializer('b', [8], uniform(rng, 8, 1))], ['y'])
  g.output('y', DataType.FLOAT, [4, 8])
  return g.toModel()
}

/** The value `name` of `model` (in the type the model gives it) and its outputs, for one batch. */
async function inner(model: ModelProto, name: string, feeds: TensorMap): Promise<{ value: HostTensor; y: HostTensor }> {
  return withExposedValues(model, 'test model', [name], async (m) => {
    const out = await m.run(feeds, [name, 'y'])
    return { value: out[name]!, y: out.y! }
  })
}
const asNumbers = (t: HostTensor): number[] => (t.dtype === 'float16' ? Array.from(f16ToF32(t.data as Uint16Array)) : values(t))

describe('the magnitude check', () => {
  it('keeps a MatMul whose values reach 1e5 (and its consumer) in float32: inf in fp16 without the check, exact with it', async () => {
    const original = overflowing()
    const x = { dtype: 'float32' as const, dims: [4, 16], data: new Float32Array(64).fill(1) }
    const want = await inner(original, 'big', { x })
    expect(Math.max(...values(want.value).map(Math.abs))).toBeGreaterThan(65504)

    const blind = await inner(convertToFp16(original).model, 'big', { x })
    expect(blind.value.dtype).toBe('float16')
    expect(asNumbers(blind.value).some((v) => !Number.isFinite(v))).toBe(true)

    const { model, report } = await makeFp16Model({ model: original, path: 'overflow.onnx', samples: [{ x }] })
    expect(report.kept.map((k) => `${k.node}:${k.reason}`)).toEqual(['MatMul_0:magnitude', 'Mul_1:magnitude'])
    const kept = await inner(model, 'big', { x })
    expect(kept.value.dtype).toBe('float32')
    expect(values(kept.value)).toEqual(values(want.value))
    values(kept.y).forEach((v, i) => expect(Math.abs(v - values(want.y)[i]!)).toBeLessThan(0.1))
  })

  it('maxAbs is the threshold (default 512): raised past the values, nothing is kept', async () => {
    expect(DEFAULT_FP16_MAX_ABS).toBe(512)
    const x = { dtype: 'float32' as const, dims: [4, 16], data: new Float32Array(64).fill(1) }
    const kept = await measureMagnitudes(overflowing(), 'overflow.onnx', [{ x }], { maxAbs: 1e6 })
    expect(kept.size).toBe(0)
  })

  it('keeps a node reading a stored value beyond 65504 instead of clamping it', async () => {
    const g = new GraphBuilder('big-constant')
    g.input('x', DataType.FLOAT, [4])
    g.node('Mul', [g.op('Add', ['x', g.initializer('huge', [], new Float32Array([1e6]))]), g.initializer('tiny', [], new Float32Array([1e-6]))], ['y'])
    g.output('y', DataType.FLOAT, [4])
    const x = { dtype: 'float32' as const, dims: [4], data: new Float32Array([1, 2, 3, 4]) }
    const kept = await measureMagnitudes(g.toModel(), 'big.onnx', [{ x }], { maxAbs: 1e9 })
    expect([...kept]).toEqual([['Add_0', 'magnitude']])
  })

  it('keeps values fp16 would flush to zero: a 1e-9 scale undone later', async () => {
    const g = new GraphBuilder('underflow')
    g.input('x', DataType.FLOAT, [4, 8])
    const k = (v: number): string => g.constant('k', [], new Float32Array([v]))
    // Each constant is an ordinary fp16 number; their product, about 1e-9, is not (2^-24 is 6e-8).
    g.node('Mul', [g.op('Mul', [g.op('Relu', ['x']), k(1e-4)]), k(1e-5)], ['tiny'])
    g.node('Mul', [g.op('Mul', ['tiny', k(1e4)]), k(1e4)], ['y'])
    g.output('y', DataType.FLOAT, [4, 8])
    const original = g.toModel()
    const x = { dtype: 'float32' as const, dims: [4, 8], data: uniform(prng(6), 32, 1).map((v) => v + 1.5) }
    const want = await inner(original, 'tiny', { x })

    const blind = await inner(convertToFp16(original).model, 'tiny', { x })
    expect(asNumbers(blind.value).every((v) => v === 0)).toBe(true)

    const { model, report } = await makeFp16Model({ model: original, path: 'underflow.onnx', samples: [{ x }] })
    expect(report.kept.map((k) => `${k.node}:${k.reason}`)).toEqual(['Mul_2:underflow', 'Mul_3:underflow'])
    const kept = await inner(model, 'tiny', { x })
    asNumbers(kept.value).forEach((v, i) => expect(v / values(want.value)[i]!).toBeCloseTo(1, 2))
    values(kept.y).forEach((v, i) => expect(v).toBeCloseTo(values(want.y)[i]!, 2))
  })

  it('passes keepFp32Ops through: an empty list blocks nothing', async () => {
    const g = new GraphBuilder('cumsum')
    g.input('x', DataType.FLOAT, [2, 4])
    g.node('CumSum', [g.op('Relu', ['x']), g.initializer('axis', [], new BigInt64Array([1n]))], ['y'])
    g.output('y', DataType.FLOAT, [2, 4])
    const x = { dtype: 'float32' as const, dims: [2, 4], data: new Float32Array(8).fill(0.5) }
    const blocked = await makeFp16Model({ model: g.toModel(), path: 'c.onnx', samples: [{ x }] })
    expect(blocked.report.kept.map((k) => k.reason)).toEqual(['block-list'])
    const open = await makeFp16Model({ model: g.toModel(), path: 'c.onnx', samples: [{ x }], keepFp32Ops: [] })
    expect(open.report.kept).toEqual([])
  })
})

describe('errors', () => {
  it('an fp16 model -> ALREADY_FP16, before any run', async () => {
    const { model } = convertToFp16(overflowing())
    expect(await codeOf(makeFp16Model({ model, path: 'fp16.onnx', samples: [] }))).toBe('ALREADY_FP16')
  })

  it('no sample inputs -> FP16_NO_SAMPLES', async () => {
    expect(await codeOf(makeFp16Model({ model: overflowing(), path: 'o.onnx', samples: [] }))).toBe('FP16_NO_SAMPLES')
  })

  it('a model with no float32 computation -> NO_FLOAT32_COMPUTE', async () => {
    const g = new GraphBuilder('ints')
    g.input('a', DataType.INT64, [2])
    g.node('Mul', ['a', 'a'], ['b'])
    g.output('b', DataType.INT64, [2])
    const a = { dtype: 'int64' as const, dims: [2], data: new BigInt64Array([2n, 3n]) }
    expect(await codeOf(makeFp16Model({ model: g.toModel(), path: 'ints.onnx', samples: [{ a }] }))).toBe('NO_FLOAT32_COMPUTE')
  })
})
