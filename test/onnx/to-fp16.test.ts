/**
 * The fp16 transform on models built here and on the tiny exports: fp32 edges, Cast-to-float retargeted,
 * the block list and its replacement, nodes kept by measured magnitude, clamping, and what it refuses.
 */
import { describe, expect, it } from 'vitest'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll } from 'vitest'
import { ModelforgeError } from '../../src/lib/errors.js'
import { GraphBuilder, int64s } from '../../src/onnx/graph-builder.js'
import { halfToFloat } from '../../src/onnx/float16.js'
import { DataType, encodeModel, readModel, writeModel, type ModelProto } from '../../src/onnx/proto.js'
import { convertToFp16, DEFAULT_KEEP_FP32_OPS, isFp16Model, nodeKey } from '../../src/onnx/to-fp16.js'
import { makeFp16Model, measureMagnitudes } from '../../src/validate/fp16-model.js'
import { valueTypes } from '../../src/validate/intermediates.js'
import { closeModel, loadModel, runModel } from '../../src/validate/runtime.js'
import type { TensorMap } from '../../src/validate/tensors.js'

let dir: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mf-fp16-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

async function save(name: string, model: ModelProto): Promise<string> {
  const path = join(dir, name)
  await writeModel(path, model)
  return path
}

async function run(model: ModelProto | string, feeds: TensorMap): Promise<TensorMap> {
  const m = await loadModel(typeof model === 'string' ? model : encodeModel(model))
  try {
    return await runModel(m, feeds)
  } finally {
    await closeModel(m)
  }
}

const x = (values: number[], dims = [1, values.length]): TensorMap => ({ x: { dtype: 'float32', dims, data: Float32Array.from(values) } })

/** x -> MatMul(W) -> Cast(to=FLOAT) of an int path -> Add -> y, with a Range the block list keeps. */
function castModel(): ModelProto {
  const g = new GraphBuilder('cast')
  g.input('x', DataType.FLOAT, ['batch', 4])
  const h = g.op('MatMul', ['x', g.initializer('W', [4, 4], Float32Array.from({ length: 16 }, (_, i) => (i % 5) / 10))])
  // A Cast to float inside: the count of columns (an int64 from Shape) made float and added.
  const cols = g.op('Gather', [g.op('Shape', [h]), g.initializer('one', [], int64s([1]))])
  const colsF = g.op('Cast', [cols], { to: DataType.FLOAT })
  const added = g.op('Add', [h, colsF])
  const ramp = g.op('Range', [g.initializer('start', [], new Float32Array([0])), g.initializer('limit', [], new Float32Array([4])), g.initializer('delta', [], new Float32Array([1]))])
  g.node('Add', [added, ramp], ['y'])
  g.output('y', DataType.FLOAT, ['batch', 4])
  return g.toModel({ opset: 17 })
}

describe('convertToFp16', () => {
  it('keeps the float32 interface with Casts at the edges, retargets Cast-to-float, and runs like fp32', async () => {
    const fp32 = castModel()
    const path = await save('cast.onnx', fp32)
    const types = await valueTypes(fp32, path)
    const { model, report } = convertToFp16(fp32, { valueTypes: types })
    expect(model.graph!.input![0]!.type!.tensorType!.elemType).toBe(DataType.FLOAT)
    expect(model.graph!.output![0]!.type!.tensorType!.elemType).toBe(DataType.FLOAT)
    expect(report.castsRetargeted).toBe(1)
    const inner = model.graph!.node!.find((n) => n.opType === 'Cast' && n.input![0] === fp32.graph!.node![2]!.output![0])!
    expect(Number(inner.attribute![0]!.i)).toBe(DataType.FLOAT16)
    expect(report.kept).toEqual([{ node: nodeKey(fp32.graph!.node![5]!, 5), opType: 'Range', reason: 'block-list' }])
    expect(model.graph!.initializer!.find((t) => t.name === 'W')!.dataType).toBe(DataType.FLOAT16)
    // Range's inputs stay float32: only the kept node reads them.
    expect(model.graph!.initializer!.find((t) => t.name === 'limit')!.dataType).toBe(DataType.FLOAT)
    const feeds = x([0.5, -1, 2, 0.25, 1, 1, 1, 1], [2, 4])
    const want = (await run(fp32, feeds)).y!.data as Float32Array
    const got = (await run(model, feeds)).y!.data as Float32Array
    for (let i = 0; i < want.length; i++) expect(got[i]).toBeCloseTo(want[i]!, 2)
  })

  it('--keep-fp32 replaces the block list; an op with no fp16 kernel in onnxruntime is kept all the same', async () => {
    const fp32 = castModel()
    const path = await save('cast2.onnx', fp32)
    const types = await valueTypes(fp32, path)
    const none = convertToFp16(fp32, { valueTypes: types, keepFp32Ops: [] })
    expect(none.report.kept).toEqual([])
    // Range has no float16 type in ONNX: onnxruntime refuses the plain conversion, makeFp16Model keeps it.
    await expect(run(none.model, x([1, 2, 3, 4]))).rejects.toThrow(/Range/)
    const made = await makeFp16Model({ model: fp32, path, samples: [x([1, 2, 3, 4])], valueTypes: types, keepFp32Ops: [] })
    expect(made.report.kept).toEqual([{ node: 'Range_5', opType: 'Range', reason: 'no-fp16-kernel' }])
    expect(((await run(made.model, x([1, 2, 3, 4]))).y!.data as Float32Array).every(Number.isFinite)).toBe(true)
    const keepMatMul = await makeFp16Model({ model: fp32, path, samples: [x([1, 2, 3, 4])], valueTypes: types, keepFp32Ops: ['MatMul'] })
    expect(keepMatMul.report.kept.map((k) => k.opType)).toEqual(['MatMul', 'Range'])
    expect(keepMatMul.model.graph!.initializer!.find((t) => t.name === 'W')!.dataType).toBe(DataType.FLOAT)
    const y = (await run(keepMatMul.model, x([1, 2, 3, 4]))).y!.data as Float32Array
    expect(y.every(Number.isFinite)).toBe(true)
    expect(DEFAULT_KEEP_FP32_OPS).toEqual(expect.arrayContaining(['Resize', 'Range', 'CumSum', 'TopK']))
  })

  it('clamps weights beyond fp16 to 65504 and keeps tiny ones from flushing to zero', async () => {
    const g = new GraphBuilder('clamp')
    g.input('x', DataType.FLOAT, [1, 3])
    g.node('Mul', ['x', g.initializer('k', [3], Float32Array.of(1e6, -1e-9, 0.5))], ['y'])
    g.output('y', DataType.FLOAT, [1, 3])
    const fp32 = g.toModel()
    const { model, report } = convertToFp16(fp32, { valueTypes: await valueTypes(fp32, await save('clamp.onnx', fp32)) })
    expect(report.clampedValues).toBe(2)
    const k = model.graph!.initializer!.find((t) => t.name === 'k')!
    const bits = new Uint16Array(new Uint8Array(k.rawData!).buffer)
    expect([...bits].map(halfToFloat)).toEqual([65504, -(2 ** -24), 0.5])
  })

  it('tells an fp16 model from an fp32 one', async () => {
    const fp32 = castModel()
    const { model } = convertToFp16(fp32, { valueTypes: await valueTypes(fp32, await save('c3.onnx', fp32)) })
    expect(isFp16Model(fp32)).toBe(false)
    expect(isFp16Model(model)).toBe(true)
  })
})

describe('makeFp16Model: the magnitude check', () => {
  /** y = (x - 1e5) * 0.5: inputs near 1e5 (beyond fp16's 65504), outputs small. */
  function bigModel(): ModelProto {
    const g = new GraphBuilder('big')
    g.input('x', DataType.FLOAT, ['batch', 8])
    const d = g.op('Sub', ['x', g.initializer('c', [], new Float32Array([1e5]))])
    g.node('Mul', [d, g.initializer('half', [], new Float32Array([0.5]))], ['y'])
    g.output('y', DataType.FLOAT, ['batch', 8])
    return g.toModel()
  }

  it('keeps nodes whose values pass --fp16-max-abs in fp32: exact, where plain conversion is far off', async () => {
    const fp32 = bigModel()
    const path = await save('big.onnx', fp32)
    const types = await valueTypes(fp32, path)
    const feeds = x(Array.from({ length: 8 }, (_, i) => 1e5 + i), [1, 8])
    const want = (await run(fp32, feeds)).y!.data as Float32Array
    expect([...want]).toEqual([0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5])
    // Plain conversion clamps 1e5 to 65504 (onnxruntime's CPU, lacking fp16 kernels, even computes the
    // rest in float32, so the damage is that alone): thousands off.
    const plain = (await run(convertToFp16(fp32, { valueTypes: types }).model, feeds)).y!.data as Float32Array
    expect(plain.every((v, i) => !Number.isFinite(v) || Math.abs(v - want[i]!) > 1000)).toBe(true)
    const keep = await measureMagnitudes(fp32, path, [feeds], types, 512)
    expect([...keep.entries()]).toEqual([[nodeKey(fp32.graph!.node![0]!, 0), 'magnitude']])
    const { model, report } = await makeFp16Model({ model: fp32, path, samples: [feeds], valueTypes: types })
    expect(report.kept.map((k) => [k.opType, k.reason])).toEqual([['Sub', 'magnitude']])
    const got = (await run(model, feeds)).y!.data as Float32Array
    for (let i = 0; i < 8; i++) expect(got[i]).toBeCloseTo(want[i]!, 3)
    // A higher --fp16-max-abs lets it through.
    expect((await measureMagnitudes(fp32, path, [feeds], types, 2e5)).size).toBe(0)
  })

  it('keeps a node whose outputs would flush to zero in fp16', async () => {
    const g = new GraphBuilder('tiny')
    g.input('x', DataType.FLOAT, [1, 4])
    g.node('Mul', ['x', g.initializer('s', [], new Float32Array([1e-9]))], ['y'])
    g.output('y', DataType.FLOAT, [1, 4])
    const fp32 = g.toModel()
    const path = await save('tiny.onnx', fp32)
    const types = await valueTypes(fp32, path)
    const { report } = await makeFp16Model({ model: fp32, path, samples: [x([1, 2, 3, 4])], valueTypes: types })
    expect(report.kept).toEqual([{ node: nodeKey(fp32.graph!.node![0]!, 0), opType: 'Mul', reason: 'underflow' }])
  })

  it('refuses an fp16 model (ALREADY_FP16) and a model without float32 computation (exit 2)', async () => {
    const fp32 = castModel()
    const path = await save('c4.onnx', fp32)
    const types = await valueTypes(fp32, path)
    const { model } = convertToFp16(fp32, { valueTypes: types })
    const half = await save('c4-half.onnx', model)
    const err = await makeFp16Model({ model: await readModel(half), path: half, samples: [], valueTypes: await valueTypes(model, half) }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ModelforgeError)
    expect(err).toMatchObject({ code: 'ALREADY_FP16', exitCode: 2 })
    const g = new GraphBuilder('ints')
    g.input('i', DataType.INT64, [2])
    g.node('Add', ['i', g.initializer('one', [1], int64s([1]))], ['o'])
    g.output('o', DataType.INT64, [2])
    const ints = g.toModel()
    const intsPath = await save('ints.onnx', ints)
    const none = await makeFp16Model({ model: ints, path: intsPath, samples: [], valueTypes: await valueTypes(ints, intsPath) }).catch((e: unknown) => e)
    expect(none).toMatchObject({ code: 'NOTHING_TO_CONVERT', exitCode: 2 })
  })
})
