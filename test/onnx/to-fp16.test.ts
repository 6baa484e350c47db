/**
 * The fp16 rewrite on its own (no measurement): real fixtures converted with the graph's own types, and
 * small GraphBuilder models for each rule. Every converted model is loaded and run in onnxruntime-node.
 */
import { describe, expect, it } from 'vitest'
import { GraphBuilder, float, int64s, tensor } from '../../src/onnx/graph-builder.js'
import { DataType, encodeModel, num, readModel, type ModelProto, type NodeProto, type TensorProto } from '../../src/onnx/proto.js'
import { f16ToF32 } from '../../src/onnx/float16.js'
import { convertToFp16, DEFAULT_KEEP_FP32_OPS, FP16_MIN_SUBNORMAL, isFp16Model, nameNodes } from '../../src/onnx/to-fp16.js'
import { loadModel, runModel, withModel } from '../../src/validate/runtime.js'
import { bindByName, readReferenceJson } from '../../src/validate/reference.js'
import { compareOutput } from '../../src/validate/compare.js'
import { prng, uniform } from '../../src/lib/random.js'
import type { HostTensor, TensorMap } from '../../src/validate/tensors.js'
import { ModelforgeError } from '../../src/lib/errors.js'

async function run(model: ModelProto, feeds: TensorMap): Promise<TensorMap> {
  return withModel(encodeModel(model), (m) => runModel(m, feeds), { label: 'test model' })
}

const f32 = (dims: number[], data: Float32Array): HostTensor => ({ dtype: 'float32', dims, data })
const maxAbsDiff = (a: HostTensor, b: HostTensor): number => {
  let m = 0
  for (let i = 0; i < a.data.length; i++) m = Math.max(m, Math.abs((a.data[i] as number) - (b.data[i] as number)))
  return m
}
const byOp = (model: ModelProto, op: string): NodeProto[] => (model.graph?.node ?? []).filter((n) => n.opType === op)
const castTo = (n: NodeProto): number => num(n.attribute!.find((a) => a.name === 'to')!.i)
const halfValues = (t: TensorProto): Float32Array => f16ToF32(new Uint16Array(new Uint8Array(t.rawData!).buffer))

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (err) {
    if (err instanceof ModelforgeError) return err.code
    throw err
  }
  return undefined
}

/** x [2, 8] -> MatMul W -> Add b -> Relu -> MatMul W2 -> y [2, 4], with seeded weights. */
function mlp(extra?: (g: GraphBuilder, h: string) => string): ModelProto {
  const rng = prng(3)
  const g = new GraphBuilder('mlp')
  g.input('x', DataType.FLOAT, [2, 8])
  let h = g.op('Relu', [g.op('Add', [g.op('MatMul', ['x', g.initializer('W', [8, 16], uniform(rng, 128, 0.5))]), g.initializer('b', [16], uniform(rng, 16, 0.1))])])
  if (extra) h = extra(g, h)
  g.node('MatMul', [h, g.initializer('W2', [16, 4], uniform(rng, 64, 0.5))], ['y'])
  g.output('y', DataType.FLOAT, [2, 4])
  return g.toModel({ opset: 17 })
}
const X = f32([2, 8], uniform(prng(9), 16, 1))

describe('convertToFp16 on the tiny Hugging Face fixtures, with the types the graph declares', () => {
  it('tiny-bert: int64 inputs, float32 outputs, weights halved, PyTorch reference within 1e-2', async () => {
    const dir = 'fixtures/hf-tiny/tiny-bert'
    const original = await readModel(`${dir}/model.onnx`)
    const { model, report } = convertToFp16(original)
    expect(report.convertedNodes).toBeGreaterThan(100)
    expect(report.initializersConverted).toBe(original.graph!.initializer!.length)
    expect(model.graph!.initializer!.every((t) => t.dataType === DataType.FLOAT16)).toBe(true)
    // The two graph outputs are computed in fp16 and cast up into their declared names.
    expect(report.castsInserted).toBe(2)
    const ref = await readReferenceJson(`${dir}/reference.json`)
    await withModel(encodeModel(model), async (m) => {
      expect(m.inputs.map((i) => i.dtype)).toEqual(['int64', 'int64', 'int64'])
      expect(m.outputs.map((o) => o.dtype)).toEqual(['float32', 'float32'])
      const out = await runModel(m, bindByName(ref.inputs, m.inputs.map((i) => i.name), 'inputs'))
      for (const o of ref.outputs) {
        const metrics = compareOutput(o.name!, 'reference.json', out[o.name!]!, o.tensor, { atol: 1e-2, rtol: 0, precision: 'fp16' })
        expect(metrics.maxAbsErr).toBeLessThan(1e-2)
      }
    })
  })
})

describe('Casts', () => {
  it('retargets a Cast-to-float inside the fp16 region (and an int -> float one) so the model is valid and matches fp32', async () => {
    const g = new GraphBuilder('cast-inside')
    const rng = prng(5)
    g.input('x', DataType.FLOAT, [2, 8])
    g.input('ids', DataType.INT64, [2, 1])
    const h = g.op('MatMul', ['x', g.initializer('W', [8, 8], uniform(rng, 64, 0.5))])
    // What exporters leave behind: a Cast to float of a value that is float already, and one from ints.
    const c = g.op('Cast', [h], { to: DataType.FLOAT })
    const scale = g.op('Cast', ['ids'], { to: DataType.FLOAT })
    g.node('Add', [g.op('Mul', [c, scale]), g.initializer('b', [8], uniform(rng, 8, 0.1))], ['y'])
    g.output('y', DataType.FLOAT, [2, 8])
    const original = g.toModel({ opset: 17 })
    const { model, report } = convertToFp16(original)
    expect(report.castsRetargeted).toBe(2)
    const inner = byOp(model, 'Cast').filter((n) => n.name?.startsWith('Cast_'))
    expect(inner.map(castTo)).toEqual([DataType.FLOAT16, DataType.FLOAT16])
    const feeds = { x: X, ids: { dtype: 'int64' as const, dims: [2, 1], data: int64s([2, 3]) } }
    const [want, got] = [await run(original, feeds), await run(model, feeds)]
    expect(maxAbsDiff(got.y!, want.y!)).toBeLessThan(1e-2)
  })

  it('leaves a Cast-to-float whose value leaves the graph as it is (no round trip through fp16)', async () => {
    const g = new GraphBuilder('cast-out')
    g.input('x', DataType.FLOAT, [2, 8])
    g.input('n', DataType.INT64, [2])
    g.node('Relu', ['x'], ['y'])
    g.node('Cast', ['n'], ['count'], { to: DataType.FLOAT })
    g.output('y', DataType.FLOAT, [2, 8])
    g.output('count', DataType.FLOAT, [2])
    const { model, report } = convertToFp16(g.toModel())
    expect(report.castsRetargeted).toBe(0)
    const out = await run(model, { x: X, n: { dtype: 'int64', dims: [2], data: int64s([4097, 1]) } })
    // 4097 has no fp16 representation; the untouched Cast keeps it exact.
    expect(Array.from(out.count!.data as Float32Array)).toEqual([4097, 1])
  })

  it('shares one Cast per value and direction among its consumers', () => {
    const g = new GraphBuilder('shared')
    g.input('x', DataType.FLOAT, [2, 8])
    const a = g.op('Relu', ['x'])
    const b = g.op('Sigmoid', ['x'])
    const s1 = g.op('CumSum', [a, g.initializer('axis', [], int64s([1]))])
    const s2 = g.op('CumSum', [a, g.initializer('axis1', [], int64s([0]))])
    g.node('Add', [g.op('Add', [s1, s2]), b], ['y'])
    g.output('y', DataType.FLOAT, [2, 8])
    const { model, report } = convertToFp16(g.toModel())
    // x down (one, for Relu and Sigmoid), a up (one, for both CumSums), s1 and s2 down, y up.
    expect(report.castsInserted).toBe(5)
    const inputsOfCumSums = byOp(model, 'CumSum').map((n) => n.input![0])
    expect(new Set(inputsOfCumSums).size).toBe(1)
  })
})

describe('the block list', () => {
  const withCumSum = (): ModelProto => mlp((g, h) => g.op('CumSum', [h, g.initializer('axis', [], int64s([1]))]))

  it('keeps CumSum (a default) in float32 between Casts, and the model runs close to fp32', async () => {
    expect(DEFAULT_KEEP_FP32_OPS).toEqual(expect.arrayContaining(['Resize', 'Range', 'CumSum', 'TopK', 'NonMaxSuppression', 'RoiAlign', 'RandomUniformLike', 'RandomNormal', 'Multinomial', 'EyeLike']))
    const original = withCumSum()
    const { model, report } = convertToFp16(original)
    expect(report.kept).toEqual([{ node: 'CumSum_3', opType: 'CumSum', reason: 'block-list' }])
    const cumsum = byOp(model, 'CumSum')[0]!
    const producerOf = (v: string): NodeProto => model.graph!.node!.find((n) => n.output!.includes(v))!
    expect(producerOf(cumsum.input![0]!).opType).toBe('Cast')
    expect(castTo(producerOf(cumsum.input![0]!))).toBe(DataType.FLOAT)
    const [want, got] = [await run(original, { x: X }), await run(model, { x: X })]
    expect(maxAbsDiff(got.y!, want.y!)).toBeLessThan(2e-2)
  })

  it('--keep-fp32 replaces the list: CumSum converts, Relu stays', async () => {
    const { model, report } = convertToFp16(withCumSum(), { keepFp32Ops: ['Relu'] })
    expect(report.kept.map((k) => k.opType)).toEqual(['Relu'])
    expect(model.graph!.node!.filter((n) => n.opType === 'Cast').length).toBe(4)
    await run(model, { x: X })
  })

  it('keeps the nodes measurement names, with the reason it gave', () => {
    const { report } = convertToFp16(mlp(), { keepFp32Nodes: new Map([['Add_1', 'magnitude']]) })
    expect(report.kept).toEqual([{ node: 'Add_1', opType: 'Add', reason: 'magnitude' }])
  })

  it('keeps ops ONNX defines no fp16 type for, whatever the list says (an fp16 Celu does not even load)', async () => {
    const g = new GraphBuilder('celu')
    g.input('x', DataType.FLOAT, [2, 8])
    g.node('Celu', [g.op('Relu', ['x'])], ['y'])
    g.output('y', DataType.FLOAT, [2, 8])
    const { model, report } = convertToFp16(g.toModel(), { keepFp32Ops: [] })
    expect(report.kept).toEqual([{ node: 'Celu_1', opType: 'Celu', reason: 'unsupported', detail: 'ONNX defines no float16 type for it' }])
    await run(model, { x: X })

    const half = new GraphBuilder('celu16')
    half.input('x', DataType.FLOAT16, [2])
    half.node('Celu', ['x'], ['y'])
    half.output('y', DataType.FLOAT16, [2])
    await expect(loadModel(encodeModel(half.toModel()))).rejects.toThrow(/tensor\(float16\).*Celu.*invalid/)
  })

  it('keeps a node holding a subgraph and the outer values it reads in float32', async () => {
    const branch = (name: string, op: string): ModelProto['graph'] => {
      const b = new GraphBuilder(name)
      b.node(op, ['h'], [`${name}_out`])
      b.output(`${name}_out`, DataType.FLOAT, [2, 16])
      return b.toModel().graph
    }
    const model = mlp((g, h) => {
      g.node('Identity', [h], ['h'])
      const cond = g.op('Greater', [g.op('ReduceSum', ['h'], { keepdims: 0 }), g.initializer('zero', [], new Float32Array([0]))])
      return g.node('If', [cond], 1)[0]!
    })
    // GraphBuilder's attribute() makes no graph values; the branches are set here.
    const ifNode = byOp(model, 'If')[0]!
    ifNode.attribute = [
      { name: 'then_branch', type: 5, g: branch('then', 'Relu') },
      { name: 'else_branch', type: 5, g: branch('else', 'Neg') },
    ]
    const { model: converted, report } = convertToFp16(model)
    expect(report.kept.map((k) => [k.opType, k.reason])).toEqual([['If', 'unsupported']])
    // h is produced in fp16 under a new name and cast back into "h", which the branches read.
    const identity = byOp(converted, 'Identity')[0]!
    expect(identity.output).toEqual(['h_fp16'])
    const [want, got] = [await run(model, { x: X }), await run(converted, { x: X })]
    expect(maxAbsDiff(got.y!, want.y!)).toBeLessThan(2e-2)
  })
})

describe('ops whose inputs or outputs do not follow the float type', () => {
  it('LayerNormalization: Mean and InvStdDev stay float32, scale and bias follow X', async () => {
    const g = new GraphBuilder('ln')
    g.input('x', DataType.FLOAT, [2, 8])
    const [y, mean] = g.node('LayerNormalization', ['x', g.initializer('s', [8], new Float32Array(8).fill(1.5)), g.initializer('bias', [8], new Float32Array(8).fill(0.25))], 3)
    g.node('Add', [y!, g.op('Relu', [mean!])], ['out'])
    g.output('out', DataType.FLOAT, [2, 8])
    const original = g.toModel({ opset: 17 })
    const { model } = convertToFp16(original)
    const relu = byOp(model, 'Relu')[0]!
    // Relu computes in fp16, so the float32 Mean goes through a Cast down first.
    expect(relu.input![0]).toMatch(/_fp16$/)
    const [want, got] = [await run(original, { x: X }), await run(model, { x: X })]
    expect(maxAbsDiff(got.out!, want.out!)).toBeLessThan(1e-2)
  })

  it('Clip bounds, Pad constant value, ConstantOfShape value and Constant nodes become fp16 with the data', async () => {
    const g = new GraphBuilder('typed-inputs')
    g.input('x', DataType.FLOAT, [2, 8])
    const clipped = g.op('Clip', ['x', g.initializer('lo', [], new Float32Array([-0.5])), g.initializer('hi', [], new Float32Array([0.5]))])
    const padded = g.op('Pad', [clipped, g.initializer('pads', [4], int64s([0, 1, 0, 1])), g.initializer('cv', [], new Float32Array([2]))])
    const ones = g.op('ConstantOfShape', [g.initializer('shape', [2], int64s([2, 10]))], { value: tensor('v', [1], new Float32Array([1])) })
    const k = g.op('Constant', [], { value_float: float(3) })
    g.node('Mul', [g.op('Add', [padded, ones]), k], ['y'])
    g.output('y', DataType.FLOAT, [2, 10])
    const original = g.toModel({ opset: 17 })
    const { model, report } = convertToFp16(original)
    expect(report.constantsConverted).toBe(1)
    expect(byOp(model, 'ConstantOfShape')[0]!.attribute![0]!.t!.dataType).toBe(DataType.FLOAT16)
    expect(byOp(model, 'Constant')[0]!.attribute![0]!.t!.dataType).toBe(DataType.FLOAT16)
    const [want, got] = [await run(original, { x: X }), await run(model, { x: X })]
    expect(maxAbsDiff(got.y!, want.y!)).toBeLessThan(1e-2)
  })

  it('updates value_info to the new types', async () => {
    const model = mlp()
    model.graph!.valueInfo = [{ name: model.graph!.node![2]!.output![0]!, type: { tensorType: { elemType: DataType.FLOAT, shape: { dim: [{ dimValue: 2 }, { dimValue: 16 }] } } } }]
    const { model: converted } = convertToFp16(model)
    expect(converted.graph!.valueInfo![0]!.type!.tensorType!.elemType).toBe(DataType.FLOAT16)
    await run(converted, { x: X })
  })
})

describe('stored values', () => {
  it('clamps beyond +-65504, raises tiny nonzero values to +-2^-24 (sign kept), keeps infinities', () => {
    const g = new GraphBuilder('clamp')
    g.input('x', DataType.FLOAT, [6])
    g.node('Add', ['x', g.initializer('c', [6], new Float32Array([1e6, -1e6, 1e-30, -1e-30, -Infinity, 0.5]))], ['y'])
    g.output('y', DataType.FLOAT, [6])
    const { model, report } = convertToFp16(g.toModel())
    expect(report.clampedValues).toBe(4)
    expect(Array.from(halfValues(model.graph!.initializer![0]!))).toEqual([65504, -65504, FP16_MIN_SUBNORMAL, -FP16_MIN_SUBNORMAL, -Infinity, 0.5])
  })

  it('stores an initializer both ways when float32 and fp16 consumers share it', async () => {
    const g = new GraphBuilder('shared-weight')
    g.input('x', DataType.FLOAT, [2, 8])
    const w = g.initializer('w', [8], uniform(prng(4), 8, 1))
    // Mul computes in fp16; CumSum (block list) reads the same weight in float32, exactly.
    g.node('Add', [g.op('Mul', ['x', w]), g.op('CumSum', [w, g.initializer('axis', [], int64s([0]))])], ['y'])
    g.output('y', DataType.FLOAT, [2, 8])
    const original = g.toModel()
    const { model, report } = convertToFp16(original)
    expect(model.graph!.initializer!.map((t) => `${t.name}:${t.dataType}`)).toEqual([`w:${DataType.FLOAT}`, `w_fp16:${DataType.FLOAT16}`, `axis:${DataType.INT64}`])
    expect(byOp(model, 'CumSum')[0]!.input![0]).toBe('w')
    expect(byOp(model, 'Mul')[0]!.input![1]).toBe('w_fp16')
    expect(report.initializersConverted).toBe(1)
    const [want, got] = [await run(original, { x: X }), await run(model, { x: X })]
    expect(maxAbsDiff(got.y!, want.y!)).toBeLessThan(1e-2)
  })
})

describe('isFp16Model', () => {
  it('tells a converted model from its float32 original', () => {
    const original = mlp()
    expect(isFp16Model(original)).toBe(false)
    const { model } = convertToFp16(original)
    expect(isFp16Model(model)).toBe(true)
  })

  it('a model with no float weights at all is no fp16 model', () => {
    const g = new GraphBuilder('noweights')
    g.input('x', DataType.FLOAT, [2])
    g.node('Relu', ['x'], ['y'])
    g.output('y', DataType.FLOAT, [2])
    expect(isFp16Model(g.toModel())).toBe(false)
  })
})

describe('nameNodes', () => {
  it('names unnamed nodes without taking an existing name', () => {
    const model = mlp()
    model.graph!.node![0]!.name = ''
    model.graph!.node![1]!.name = 'MatMul_0'
    expect(nameNodes(model).graph!.node!.slice(0, 2).map((n) => n.name)).toEqual(['MatMul_0_1', 'MatMul_0'])
  })
})

describe('errors', () => {
  it('an fp16 model -> ALREADY_FP16', () => {
    const { model } = convertToFp16(mlp())
    expect(codeOf(() => convertToFp16(model))).toBe('ALREADY_FP16')
  })

  it('a model without float32 computation -> NO_FLOAT32_COMPUTE; so is one whose every float32 node is kept', () => {
    const g = new GraphBuilder('ints')
    g.input('a', DataType.INT64, [2])
    g.node('Add', ['a', 'a'], ['b'])
    g.output('b', DataType.INT64, [2])
    expect(codeOf(() => convertToFp16(g.toModel()))).toBe('NO_FLOAT32_COMPUTE')
    expect(codeOf(() => convertToFp16(mlp(), { keepFp32Ops: ['MatMul', 'Add', 'Relu'] }))).toBe('NO_FLOAT32_COMPUTE')
  })

  it('values whose type nothing says -> FP16_TYPES_UNKNOWN', () => {
    const model = mlp()
    const custom = model.graph!.node![2]!
    custom.domain = 'com.example'
    expect(codeOf(() => convertToFp16(model))).toBe('FP16_TYPES_UNKNOWN')
    // onnxruntime's types (what makeFp16Model passes) settle it; the custom op itself stays float32.
    const { report } = convertToFp16(model, { valueTypes: new Map([[custom.output![0]!, 'float32']]) })
    expect(report.kept.map((k) => k.reason)).toEqual(['unsupported'])
  })

  it('float32 weights still in external data -> FP16_EXTERNAL_DATA', () => {
    const model = mlp()
    const w = model.graph!.initializer![0]!
    w.rawData = undefined
    w.dataLocation = 1
    w.externalData = [{ key: 'location', value: 'model.onnx.data' }]
    expect(codeOf(() => convertToFp16(model))).toBe('FP16_EXTERNAL_DATA')
  })

  it('a default-domain opset before 6 (no Cast to float16) -> ONNX_UNSUPPORTED', () => {
    const model = mlp()
    model.opsetImport = [{ domain: '', version: 5 }]
    expect(codeOf(() => convertToFp16(model))).toBe('ONNX_UNSUPPORTED')
  })
})
