/**
 * Q/DQ placement and rewrite, on the tiny Hugging Face exports and on small models built here. Ranges come
 * from plain max |x| over batches run with the activations exposed (calibration proper is another module),
 * and every rewritten model is run in onnxruntime-node against the fp32 model on other inputs.
 */
import { describe, expect, it } from 'vitest'
import { ModelforgeError } from '../../src/lib/errors.js'
import { GraphBuilder, tensor } from '../../src/onnx/graph-builder.js'
import { DataType, encodeModel, num, readModel, type ModelProto, type NodeProto, type TensorProto } from '../../src/onnx/proto.js'
import { applyQdq, isQdqModel, MIN_SCALE, planQdq, quantizeWeightPerChannel, type ActivationRange, type QdqOptions, type QdqPlan } from '../../src/onnx/qdq.js'
import { prng, uniform } from '../../src/lib/random.js'
import { compareOutput } from '../../src/validate/compare.js'
import { generateInputs, modelHints, type GenerateOptions } from '../../src/validate/inputs.js'
import { valueTypes, withExposedValues } from '../../src/validate/intermediates.js'
import type { TensorMap } from '../../src/validate/tensors.js'

const fixture = (name: string) => `fixtures/hf-tiny/${name}/model.onnx`

/** max |x| of every planned activation over `batches` generated batches (seeds from 100). */
async function maxRanges(model: ModelProto, path: string, plan: QdqPlan, gen: GenerateOptions, batches = 6): Promise<Record<string, ActivationRange>> {
  const ranges: Record<string, ActivationRange> = {}
  await withExposedValues(model, path, plan.activations, async (m) => {
    for (let b = 0; b < batches; b++) {
      const out = await m.run(generateInputs(m.loaded.inputs, { ...gen, seed: 100 + b }))
      for (const t of plan.activations) {
        let amax = ranges[t]?.amax ?? 0
        for (const x of out[t]!.data as Float32Array) amax = Math.max(amax, Math.abs(x))
        ranges[t] = { amax }
      }
    }
  })
  return ranges
}

/** Runs a model on held-out batches (seeds from 900), fetching `names`. */
async function runHeldOut(model: ModelProto, path: string, names: string[], gen: GenerateOptions, batches = 3): Promise<TensorMap[]> {
  return withExposedValues(model, path, names, async (m) => {
    const out: TensorMap[] = []
    for (let b = 0; b < batches; b++) out.push(await m.run(generateInputs(m.loaded.inputs, { ...gen, seed: 900 + b }), names))
    return out
  })
}

/** The lowest cosine of each name over the held-out batches, and the lowest argmax agreement of logits. */
async function accuracy(fp32: ModelProto, qdq: ModelProto, path: string, names: string[], gen: GenerateOptions) {
  const ref = await runHeldOut(fp32, path, names, gen)
  const got = await runHeldOut(qdq, path, names, gen)
  const cosine: Record<string, number> = {}
  let argmax = 1
  for (const n of names) {
    for (let b = 0; b < ref.length; b++) {
      const m = compareOutput(n, `held-out ${b}`, got[b]![n]!, ref[b]![n]!, { atol: 0.1, rtol: 0.1, precision: 'int8' })
      cosine[n] = Math.min(cosine[n] ?? 1, m.cosine)
      if (m.argmaxAgreement !== undefined) argmax = Math.min(argmax, m.argmaxAgreement)
    }
  }
  return { cosine, argmax }
}

const nodesOf = (m: ModelProto): NodeProto[] => m.graph!.node ?? []
const initOf = (m: ModelProto, name: string): TensorProto | undefined => (m.graph!.initializer ?? []).find((t) => t.name === name)
const int8s = (t: TensorProto): Int8Array => new Int8Array(Uint8Array.from(t.rawData!).buffer)
const floats = (t: TensorProto): Float32Array => new Float32Array(Uint8Array.from(t.rawData!).buffer)
const axisOf = (n: NodeProto): number | undefined => {
  const a = (n.attribute ?? []).find((x) => x.name === 'axis')
  return a ? num(a.i) : undefined
}
const consumersOf = (m: ModelProto, value: string): NodeProto[] => nodesOf(m).filter((n) => (n.input ?? []).includes(value))

function expectCode(fn: () => unknown, code: string, exitCode: number): ModelforgeError {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(ModelforgeError)
    expect((err as ModelforgeError).code).toBe(code)
    expect((err as ModelforgeError).exitCode).toBe(exitCode)
    return err as ModelforgeError
  }
  throw new Error(`expected ${code}`)
}

/** Everything a Q/DQ model must hold, whatever the graph: the checks TensorRT's Q/DQ rules imply. */
function checkQdqStructure(q: ModelProto, plan: QdqPlan): void {
  const names = new Set<string>()
  for (const n of nodesOf(q)) {
    if (n.name) {
      expect(names.has(n.name), `node name ${n.name} once`).toBe(false)
      names.add(n.name)
    }
  }
  for (const n of nodesOf(q).filter((x) => x.opType === 'QuantizeLinear')) {
    // One pair per consumer: each QuantizeLinear feeds one DequantizeLinear, which feeds one node.
    const qUses = consumersOf(q, n.output![0]!)
    expect(qUses.map((u) => u.opType)).toEqual(['DequantizeLinear'])
    expect(consumersOf(q, qUses[0]!.output![0]!)).toHaveLength(1)
    const scale = initOf(q, n.input![1]!)!
    const zp = initOf(q, n.input![2]!)!
    expect(scale.dims).toEqual([])
    expect(floats(scale)[0]).toBeGreaterThan(0)
    expect(zp.dataType).toBe(DataType.INT8)
    expect(int8s(zp)[0]).toBe(0)
  }
  for (const w of plan.weights) {
    const consumer = nodesOf(q).find((n) => n.name === w.node)!
    const dq = nodesOf(q).find((n) => n.output?.[0] === consumer.input![w.input])!
    expect(dq.opType).toBe('DequantizeLinear')
    expect(axisOf(dq)).toBe(w.axis)
    const [qw, scale, zp] = dq.input!.map((v) => initOf(q, v)!)
    expect(qw!.dataType).toBe(DataType.INT8)
    expect(num(qw!.dims![w.axis])).toBe(w.channels)
    expect(scale!.dims!.map(num)).toEqual([w.channels])
    expect(zp!.dims!.map(num)).toEqual([w.channels])
    expect(zp!.dataType).toBe(DataType.INT8)
    expect(int8s(zp!).every((z) => z === 0)).toBe(true)
    expect(floats(scale!).every((s) => s > 0 && Number.isFinite(s))).toBe(true)
    const values = int8s(qw!)
    expect(values.every((v) => v >= -127 && v <= 127)).toBe(true)
    expect(consumersOf(q, dq.output![0]!)).toEqual([consumer])
  }
  expect(nodesOf(q).filter((n) => n.opType === 'DequantizeLinear')).toHaveLength(plan.activationInputs.length + plan.weights.length)
}

const FIXTURES = [
  { name: 'tiny-bert', quantized: { MatMul: 12, Gemm: 1 }, skipped: { 'float-op': 9, 'attention-core': 4, 'residual-not-fusible': 4 }, classifier: false },
  { name: 'tiny-bert-classifier', quantized: { MatMul: 18, Gemm: 2 }, skipped: { 'float-op': 13, 'attention-core': 6, 'residual-not-fusible': 6 }, classifier: true },
  { name: 'tiny-roberta', quantized: { MatMul: 12 }, skipped: { 'float-op': 9, 'attention-core': 4, 'residual-not-fusible': 4 }, classifier: false },
  { name: 'tiny-distilbert-classifier', quantized: { MatMul: 12, Gemm: 2 }, skipped: { 'float-op': 9, 'attention-core': 4, 'residual-not-fusible': 4 }, classifier: true },
]

describe.each(FIXTURES)('int8 Q/DQ on $name', ({ name, quantized, skipped, classifier }) => {
  const path = fixture(name)

  it('plans Q/DQ on the dense layers and the pooler/classifier Gemms, and keeps the attention core, LayerNorm, Softmax and GELU in float', async () => {
    const model = await readModel(path)
    const plan = planQdq(model, { valueTypes: await valueTypes(model, path) })
    expect(plan.counts.quantized).toEqual(quantized)
    expect(plan.counts.skipped).toEqual(skipped)
    // Every projection and feed-forward weight is [K, N] (axis 1); the Gemms have transB=1 (axis 0).
    for (const w of plan.weights) {
      const op = plan.quantized.find((q) => q.node === w.node)!.opType
      expect(w.axis).toBe(op === 'MatMul' ? 1 : 0)
      expect(w.input).toBe(1)
      const dims = initOf(model, w.initializer)!.dims!.map(num)
      expect(w.channels).toBe(dims[w.axis])
    }
    // The skipped residual Adds are those after the dense layers, two per transformer layer.
    const adds = plan.skipped.filter((s) => s.reason === 'residual-not-fusible')
    expect(adds.every((s) => s.opType === 'Add' && /(output|layer\.\d+)\/Add(_1)?$/.test(s.node))).toBe(true)
    // Only the inputs of the weighted ops get Q/DQ: one pair each, and each tensor is calibrated once.
    expect(plan.activationInputs).toHaveLength(plan.weights.length)
    expect(new Set(plan.activations).size).toBe(plan.activations.length)
    expect(plan.skipped.filter((s) => s.reason === 'float-op').map((s) => s.opType).sort()).toEqual(
      nodesOf(model).filter((n) => ['LayerNormalization', 'Softmax', 'Erf'].includes(n.opType)).map((n) => n.opType).sort(),
    )
  })

  it('gives a model onnxruntime runs, within cosine 0.99 of fp32 on held-out inputs, with per-channel int8 weights', async () => {
    const model = await readModel(path)
    const before = encodeModel(model)
    const plan = planQdq(model)
    const gen = { ...(await modelHints(path)), samples: 4, sequenceLength: 16 }
    const q = applyQdq(model, plan, await maxRanges(model, path, plan, gen))
    expect(Buffer.from(encodeModel(model)).equals(Buffer.from(before))).toBe(true)
    checkQdqStructure(q, plan)
    expect(isQdqModel(q)).toBe(true)
    expect(isQdqModel(model)).toBe(false)
    // The float weights that were quantized are gone (the model shrinks), the opset is as it was.
    for (const w of plan.weights) expect(initOf(q, w.initializer)).toBeUndefined()
    expect(encodeModel(q).byteLength).toBeLessThan(before.byteLength * 0.9)
    expect(q.opsetImport).toEqual(model.opsetImport)

    const lns = nodesOf(model).filter((n) => n.opType === 'LayerNormalization')
    const hidden = lns[lns.length - 1]!.output![0]!
    const names = [...new Set([...model.graph!.output!.map((o) => o.name), hidden])]
    const { cosine, argmax } = await accuracy(model, q, path, names, gen)
    for (const n of names) expect(cosine[n], n).toBeGreaterThanOrEqual(0.99)
    if (classifier) expect(argmax).toBeGreaterThanOrEqual(0.95)
  })

  it('writes the same bytes for the same input', async () => {
    const model = await readModel(path)
    const a = planQdq(model)
    const b = planQdq(await readModel(path))
    expect(b).toEqual(a)
    const ranges = Object.fromEntries(a.activations.map((t, i) => [t, { amax: 1 + i / 8 }]))
    expect(Buffer.from(encodeModel(applyQdq(model, a, ranges))).equals(Buffer.from(encodeModel(applyQdq(await readModel(path), b, ranges))))).toBe(true)
  })
})

describe('quantizeAttention', () => {
  it('adds Q/DQ to both inputs of QK^T and of attention x V, and still keeps LayerNorm, Softmax and GELU in float', async () => {
    const path = fixture('tiny-bert')
    const model = await readModel(path)
    const plain = planQdq(model)
    const plan = planQdq(model, { quantizeAttention: true, valueTypes: await valueTypes(model, path) })
    expect(plan.counts.quantized).toEqual({ MatMul: 16, Gemm: 1 })
    expect(plan.counts.skipped).toEqual({ 'float-op': 9, 'residual-not-fusible': 4 })
    const qk = '/m/encoder/layer.0/attention/self/MatMul'
    expect(plain.activationInputs.some((s) => s.node === qk)).toBe(false)
    expect(plan.activationInputs.filter((s) => s.node === qk).map((s) => s.input)).toEqual([0, 1])
    expect(plan.activationInputs.filter((s) => s.node === '/m/encoder/layer.0/attention/self/MatMul_1').map((s) => s.input)).toEqual([0, 1])
    expect(plan.weights).toEqual(plain.weights)

    const gen = { ...(await modelHints(path)), samples: 4, sequenceLength: 16 }
    const q = applyQdq(model, plan, await maxRanges(model, path, plan, gen))
    checkQdqStructure(q, plan)
    const qkNode = nodesOf(q).find((n) => n.name === qk)!
    for (const v of qkNode.input!) expect(nodesOf(q).find((n) => n.output?.[0] === v)!.opType).toBe('DequantizeLinear')
    const { cosine } = await accuracy(model, q, path, ['last_hidden_state'], gen)
    expect(cosine.last_hidden_state).toBeGreaterThanOrEqual(0.99)
  })

  it('skips a two-activation MatMul whose inputs onnxruntime types as other than float32', async () => {
    const path = fixture('tiny-bert')
    const model = await readModel(path)
    const types = new Map(await valueTypes(model, path))
    types.set(nodesOf(model).find((n) => n.name === '/m/encoder/layer.0/attention/self/MatMul')!.input![0]!, 'float16')
    const plan = planQdq(model, { quantizeAttention: true, valueTypes: types })
    expect(plan.skipped.find((s) => s.node === '/m/encoder/layer.0/attention/self/MatMul')!.reason).toBe('not-float')
  })
})

/** A small CNN: a stem, a basic residual block (identity shortcut) and a downsample block (Conv shortcut). */
function resnetBlock(): ModelProto {
  const rng = prng(7)
  const g = new GraphBuilder('resnet')
  g.input('x', DataType.FLOAT, [1, 4, 8, 8])
  const conv = (x: string, cin: number, cout: number, k: number, name: string) => {
    const w = g.initializer(`${name}.weight`, [cout, cin, k, k], uniform(rng, cout * cin * k * k, 0.5))
    const b = g.initializer(`${name}.bias`, [cout], uniform(rng, cout, 0.1))
    return g.node('Conv', [x, w, b], [`${name}_out`], { pads: k === 3 ? [1, 1, 1, 1] : [0, 0, 0, 0] })[0]!
  }
  const bn = (x: string, c: number, name: string) => {
    const scale = g.initializer(`${name}.scale`, [c], Float32Array.from({ length: c }, () => 0.5 + rng()))
    const bias = g.initializer(`${name}.bias`, [c], uniform(rng, c, 0.1))
    const mean = g.initializer(`${name}.mean`, [c], uniform(rng, c, 0.1))
    const variance = g.initializer(`${name}.var`, [c], Float32Array.from({ length: c }, () => 0.5 + rng()))
    return g.node('BatchNormalization', [x, scale, bias, mean, variance], [`${name}_out`])[0]!
  }
  const stem = g.node('Relu', [conv('x', 4, 8, 3, 'stem')], ['stem_relu'])[0]!
  // Basic block: Conv-BN-Relu-Conv-BN, + the stem output.
  const a = g.node('Relu', [bn(conv(stem, 8, 8, 3, 'b1c1'), 8, 'b1bn1')], ['b1_relu'])[0]!
  const sum1 = g.node('Add', [bn(conv(a, 8, 8, 3, 'b1c2'), 8, 'b1bn2'), stem], ['b1_add'])[0]!
  const out1 = g.node('Relu', [sum1], ['b1_out'])[0]!
  // Downsample block: the shortcut is a 1x1 Conv, listed first so that the block is input 1.
  const shortcut = bn(conv(out1, 8, 16, 1, 'b2sc'), 16, 'b2bnsc')
  const main = bn(conv(g.node('Relu', [bn(conv(out1, 8, 16, 3, 'b2c1'), 16, 'b2bn1')], ['b2_relu'])[0]!, 16, 16, 3, 'b2c2'), 16, 'b2bn2')
  g.node('Add', [shortcut, main], ['b2_add'])
  g.node('Relu', ['b2_add'], ['y'])
  g.output('y', DataType.FLOAT, [1, 16, 8, 8])
  return g.toModel({ opset: 17 })
}

/** A transformer sublayer: y = LayerNorm(x + (x W + b)). */
function transformerBlock(): ModelProto {
  const rng = prng(3)
  const g = new GraphBuilder('transformer')
  g.input('x', DataType.FLOAT, ['batch', 16])
  const h = g.op('Relu', ['x'])
  const w = g.initializer('dense.weight', [16, 16], uniform(rng, 256, 0.3))
  const b = g.initializer('dense.bias', [16], uniform(rng, 16, 0.1))
  const dense = g.op('Add', [g.op('MatMul', [h, w]), b])
  const sum = g.node('Add', [dense, h], ['residual'])[0]!
  const gamma = g.initializer('ln.weight', [16], new Float32Array(16).fill(1))
  const beta = g.initializer('ln.bias', [16], new Float32Array(16))
  g.node('LayerNormalization', [sum, gamma, beta], ['y'], { axis: -1 })
  g.output('y', DataType.FLOAT, ['batch', 16])
  return g.toModel({ opset: 17 })
}

describe('residual Adds', () => {
  it('quantizes the residual input of an Add TensorRT fuses into a Conv, and the shortcut of a downsample block', async () => {
    const model = resnetBlock()
    const plan = planQdq(model)
    expect(plan.counts.quantized).toEqual({ Conv: 6, Add: 2 })
    expect(plan.skipped).toEqual([])
    const adds = plan.activationInputs.filter((s) => s.node.startsWith('Add'))
    // b1_add: its input 0 comes out of b1c2 (fused), input 1 is the stem output (the residual).
    // b2_add: input 0 is the short 1x1 shortcut, input 1 the longer block path (fused).
    expect(adds).toEqual([
      { node: nodesOf(model).find((n) => n.output![0] === 'b1_add')!.name, input: 1, tensor: 'stem_relu' },
      { node: nodesOf(model).find((n) => n.output![0] === 'b2_add')!.name, input: 0, tensor: 'b2bnsc_out' },
    ])
    for (const w of plan.weights) expect(w.axis).toBe(0)
    expect(plan.weights.map((w) => w.channels)).toEqual([8, 8, 8, 16, 16, 16])

    const gen = { samples: 1, floatRange: [-1, 1] as [number, number] }
    const q = applyQdq(model, plan, await maxRanges(model, 'resnet.onnx', plan, gen))
    checkQdqStructure(q, plan)
    // stem_relu feeds b1c1 and b1_add: two pairs, one per consumer.
    expect(nodesOf(q).filter((n) => n.opType === 'QuantizeLinear' && n.input![0] === 'stem_relu')).toHaveLength(2)
    const { cosine } = await accuracy(model, q, 'resnet.onnx', ['y'], gen)
    expect(cosine.y).toBeGreaterThanOrEqual(0.99)
  })

  it('leaves the residual Add of a transformer sublayer alone: it follows a MatMul, which TensorRT cannot fuse it into', async () => {
    const model = transformerBlock()
    const plan = planQdq(model)
    expect(plan.counts).toEqual({ quantized: { MatMul: 1 }, skipped: { 'residual-not-fusible': 1, 'float-op': 1 } })
    expect(plan.activationInputs.map((s) => s.tensor)).toEqual([nodesOf(model)[0]!.output![0]])
    const q = applyQdq(model, plan, { [plan.activations[0]!]: { amax: 1 } })
    const add = nodesOf(q).find((n) => n.output![0] === 'residual')!
    for (const v of add.input!) expect(nodesOf(q).find((n) => n.output?.[0] === v)?.opType).not.toBe('DequantizeLinear')
  })

  it('skips an Add after a Conv left in float, or one reading a graph input', () => {
    const g = new GraphBuilder('skips')
    g.input('x', DataType.FLOAT, [1, 2, 4, 4])
    const w64 = g.initializer('w64', [2, 2, 1, 1], new Float64Array(4).fill(0.5))
    const w = g.initializer('w', [2, 2, 1, 1], new Float32Array(4).fill(0.5))
    const x64 = g.op('Cast', ['x'], { to: DataType.DOUBLE })
    const c64 = g.op('Conv', [x64, w64])
    const r64 = g.op('Relu', [x64])
    g.node('Add', [c64, r64], ['sum64'])
    const c = g.op('Conv', ['x', w])
    g.node('Add', [c, 'x'], ['sum'])
    g.output('sum64', DataType.DOUBLE)
    g.output('sum', DataType.FLOAT)
    const plan = planQdq(g.toModel())
    expect(plan.skipped.map((s) => [s.opType, s.reason])).toEqual([['Conv', 'not-float'], ['Add', 'residual-not-fusible'], ['Add', 'residual-not-fusible']])
    expect(plan.counts.quantized).toEqual({ Conv: 1 })
  })
})

describe('weights', () => {
  it('reads weights through Identity, Transpose and Constant, quantizes the transposed values, and drops what nothing reads', async () => {
    const rng = prng(11)
    const g = new GraphBuilder('paths')
    g.input('x', DataType.FLOAT, ['batch', 6])
    const wData = uniform(rng, 6 * 5, 1)
    const w = g.initializer('W', [6, 5], wData)
    const shared = g.initializer('S', [5, 6], uniform(rng, 30, 1))
    // Shared weights come through Identity, as torch's exporter writes them.
    const viaIdentity = g.op('Identity', [w])
    const h1 = g.op('MatMul', ['x', viaIdentity])
    // S^T through a Transpose, also read by an Add (so the Transpose stays for it).
    const st = g.op('Transpose', [shared], { perm: [1, 0] })
    const h2 = g.op('MatMul', ['x', st])
    const kept = g.op('Add', [h1, h2])
    const constant = g.node('Constant', [], ['C'], { value: tensor('c', [5, 3], uniform(rng, 15, 1)) })[0]!
    g.node('Gemm', [kept, constant], ['y'])
    g.node('Add', [st, st], ['st2'])
    g.output('y', DataType.FLOAT, ['batch', 3])
    g.output('st2', DataType.FLOAT, [6, 5])
    const model = g.toModel()
    const plan = planQdq(model)
    expect(plan.weights.map((x) => [x.initializer, x.axis, x.channels])).toEqual([['W', 1, 5], ['S', 1, 5], ['C', 1, 3]])
    const q = applyQdq(model, plan, Object.fromEntries(plan.activations.map((t) => [t, { amax: 8 }])))
    checkQdqStructure(q, plan)
    const ops = nodesOf(q).map((n) => n.opType)
    expect(ops).not.toContain('Identity')
    expect(ops).not.toContain('Constant')
    expect(ops).toContain('Transpose')
    expect(initOf(q, 'W')).toBeUndefined()
    expect(initOf(q, 'S')).toBeDefined()
    // S_quantized holds S^T ([6, 5]), as the MatMul reads it.
    const sq = initOf(q, 'S_quantized')!
    expect(sq.dims!.map(num)).toEqual([6, 5])
    const scales = floats(initOf(q, 'S_scale')!)
    const sValues = floats(initOf(model, 'S')!)
    const qValues = int8s(sq)
    for (let k = 0; k < 6; k++) for (let n = 0; n < 5; n++) expect(Math.abs(qValues[k * 5 + n]! * scales[n]! - sValues[n * 6 + k]!)).toBeLessThanOrEqual(scales[n]! / 2 + 1e-7)

    const gen = { samples: 3, floatRange: [-1, 1] as [number, number] }
    const { cosine } = await accuracy(model, q, 'paths.onnx', ['y', 'st2'], gen)
    expect(cosine.y).toBeGreaterThanOrEqual(0.99)
    expect(cosine.st2).toBe(1)
  })

  it('skips MatMuls and Gemms it cannot quantize, with the reason', () => {
    const g = new GraphBuilder('reasons')
    g.input('x', DataType.FLOAT, ['batch', 4])
    g.input('other', DataType.FLOAT, [4, 4])
    const w = g.initializer('w', [4, 4], new Float32Array(16).fill(0.25))
    const v = g.initializer('v', [4], new Float32Array(4).fill(0.25))
    g.node('MatMul', ['x', w], ['dense'])
    g.node('Gemm', ['x', 'other'], ['noWeight'])
    g.node('MatMul', [w, w], ['folded'])
    g.node('MatMul', ['x', v], ['dot'])
    for (const o of ['dense', 'noWeight', 'folded', 'dot']) g.output(o, DataType.FLOAT)
    const plan = planQdq(g.toModel())
    expect(plan.skipped.map((s) => s.reason)).toEqual(['no-weight', 'no-activation', 'weight-rank'])
    expect(plan.counts.skipped).toEqual({ 'no-weight': 1, 'no-activation': 1, 'weight-rank': 1 })
    expect(plan.quantized).toEqual([{ node: 'MatMul_0', opType: 'MatMul' }])
  })

  it('names unnamed and same-named nodes by op type and index, and keeps every new name unique', () => {
    const g = new GraphBuilder('names')
    g.input('x', DataType.FLOAT, ['batch', 4])
    const w = g.initializer('w', [4, 4], new Float32Array(16).fill(0.25))
    g.node('MatMul', ['x', w], ['a'])
    g.node('MatMul', ['a', w], ['b'])
    g.output('b', DataType.FLOAT)
    const model = g.toModel()
    model.graph!.node![0]!.name = ''
    model.graph!.node![1]!.name = ''
    // A value already called like the names applyQdq would pick.
    model.graph!.initializer!.push(tensor('x_scale', [1], new Float32Array(1)))
    const plan = planQdq(model)
    expect(plan.quantized.map((q) => q.node)).toEqual(['MatMul#0', 'MatMul#1'])
    const q = applyQdq(model, plan, { x: { amax: 1 }, a: { amax: 2 } })
    const scales = nodesOf(q).filter((n) => n.opType === 'QuantizeLinear').map((n) => n.input![1])
    expect(scales).toEqual(['x_scale_1', 'a_scale'])
    // w is shared: one int8 initializer, one DequantizeLinear per consumer.
    expect((q.graph!.initializer ?? []).filter((t) => t.name === 'w_quantized')).toHaveLength(1)
    expect(nodesOf(q).filter((n) => n.opType === 'DequantizeLinear' && n.input![0] === 'w_quantized').map((n) => n.output![0])).toEqual([
      'w_DequantizeLinear_Output', 'w_DequantizeLinear_Output_1',
    ])
  })
})

describe('quantizeWeightPerChannel', () => {
  it('round-trips every element within half a step of its channel, on any axis', () => {
    const dims = [3, 4, 5]
    const w = uniform(prng(5), 60, 2)
    for (const axis of [0, 1, 2, -1]) {
      const { q, scales } = quantizeWeightPerChannel(w, dims, axis)
      const ax = (axis + 3) % 3
      expect(scales).toHaveLength(dims[ax]!)
      for (let i = 0; i < 60; i++) {
        const c = [Math.floor(i / 20), Math.floor(i / 5) % 4, i % 5][ax]!
        expect(Math.abs(q[i]! * scales[c]! - w[i]!)).toBeLessThanOrEqual(scales[c]! / 2 * (1 + 1e-6))
      }
      // The largest magnitude of each channel lands on +-127 (narrow range).
      expect(Math.max(...Array.from(q, Math.abs))).toBe(127)
    }
  })

  it('gives an all-zero channel a tiny positive scale and zeros, and rounds halves to even as QuantizeLinear does', () => {
    const w = Float32Array.of(0, 0, 0, 0, 0, 127, -127, 0.5, 1.5, -2.5)
    const { q, scales } = quantizeWeightPerChannel(w, [2, 5], 0)
    expect(scales[0]).toBe(MIN_SCALE)
    expect(Array.from(q.slice(0, 5))).toEqual([0, 0, 0, 0, 0])
    expect(scales[1]).toBe(1)
    expect(Array.from(q.slice(5))).toEqual([127, -127, 0, 2, -2])
  })

  it('refuses data that does not fill the dims, an axis outside the weight, and NaN or Infinity', () => {
    expect(() => quantizeWeightPerChannel(new Float32Array(5), [2, 3], 0)).toThrow(/hold 6 elements but the data has 5/)
    expect(() => quantizeWeightPerChannel(new Float32Array(6), [2, 3], 2)).toThrow(/axis 2 is outside a weight of rank 2/)
    const err = expectCode(() => quantizeWeightPerChannel(Float32Array.of(1, NaN), [2], 0, 'fc.weight'), 'QDQ_WEIGHT_NON_FINITE', 4)
    expect(err.message).toMatch(/fc\.weight holds NaN at element 1/)
  })
})

/** One MatMul with a weight, for the error paths. */
function dense(opset = 17): ModelProto {
  const g = new GraphBuilder('dense')
  g.input('x', DataType.FLOAT, ['batch', 4])
  g.node('MatMul', ['x', g.initializer('w', [4, 2], uniform(prng(1), 8, 1))], ['y'])
  g.output('y', DataType.FLOAT, ['batch', 2])
  return g.toModel({ opset })
}

describe('errors', () => {
  const plan = (m: ModelProto, o?: QdqOptions) => () => planQdq(m, o)

  it('NOTHING_TO_QUANTIZE: no MatMul/Gemm/Conv with a float32 weight (only activations, or only the attention core)', () => {
    const g = new GraphBuilder('none')
    g.input('q', DataType.FLOAT, ['batch', 4, 4])
    g.input('k', DataType.FLOAT, ['batch', 4, 4])
    g.node('MatMul', ['q', 'k'], ['scores'])
    g.node('Softmax', ['scores'], ['y'], { axis: -1 })
    g.output('y', DataType.FLOAT)
    const err = expectCode(plan(g.toModel(), { label: 'attn.onnx' }), 'NOTHING_TO_QUANTIZE', 2)
    expect(err.message).toBe('attn.onnx has no MatMul, Gemm or Conv with a float32 weight to quantize (1 skipped as attention-core, 1 skipped as float-op)')
    expect(err.hint).toMatch(/fp16 or fp32/)
    // quantizeAttention alone does not make an int8 model: there is still no weight.
    expectCode(plan(g.toModel(), { quantizeAttention: true }), 'NOTHING_TO_QUANTIZE', 2)
    const relu = new GraphBuilder('relu')
    relu.input('x', DataType.FLOAT, [2])
    relu.node('Relu', ['x'], ['y'])
    relu.output('y', DataType.FLOAT, [2])
    expect(expectCode(plan(relu.toModel()), 'NOTHING_TO_QUANTIZE', 2).message).toBe('the model has no MatMul, Gemm or Conv with a float32 weight to quantize')
  })

  it('ALREADY_QUANTIZED: a Q/DQ model, a QLinear* or MatMulInteger model, and quantized ops inside a subgraph', async () => {
    const m = dense()
    const q = applyQdq(m, planQdq(m), { x: { amax: 1 } })
    const err = expectCode(plan(q, { label: 'model.int8.onnx' }), 'ALREADY_QUANTIZED', 2)
    expect(err.message).toMatch(/^model\.int8\.onnx is quantized already \(1 QuantizeLinear, 2 DequantizeLinear\)/)
    expect(err.hint).toBe('Give the fp32 model it came from.')
    for (const op of ['QLinearMatMul', 'MatMulInteger']) {
      const x = dense()
      x.graph!.node!.push({ opType: op, input: ['a'], output: ['b'] })
      expect(isQdqModel(x)).toBe(true)
      expectCode(plan(x), 'ALREADY_QUANTIZED', 2)
    }
    const withIf = dense()
    const branch = { name: 'then', node: [{ opType: 'DequantizeLinear', input: ['a', 's'], output: ['b'] }], output: [{ name: 'b' }] }
    withIf.graph!.node!.push({ opType: 'If', input: ['cond'], output: ['z'], attribute: [{ name: 'then_branch', type: 5, g: branch }, { name: 'else_branch', type: 5, g: branch }] })
    expect(isQdqModel(withIf)).toBe(true)
    expect(isQdqModel(await readModel(fixture('tiny-bert')))).toBe(false)
  })

  it('QDQ_OPSET_TOO_LOW: a model below opset 13 is refused, not silently raised', () => {
    const err = expectCode(plan(dense(12)), 'QDQ_OPSET_TOO_LOW', 2)
    expect(err.message).toBe('the model has opset 12 for the default domain; per-channel DequantizeLinear (axis) needs opset 13 or later')
    const none = dense()
    none.opsetImport = []
    expect(expectCode(plan(none), 'QDQ_OPSET_TOO_LOW', 2).message).toMatch(/has opset none/)
    expect(planQdq(dense(13)).weights).toHaveLength(1)
  })

  it('QDQ_RANGE_MISSING is a bug of the caller; QDQ_RANGE_INVALID a non-finite or negative range; a zero range gives the tiny scale', () => {
    const m = dense()
    const p = planQdq(m)
    expectCode(() => applyQdq(m, p, {}), 'QDQ_RANGE_MISSING', 1)
    // Only own properties count: a range inherited from a prototype is no range.
    expectCode(() => applyQdq(m, p, Object.create({ x: { amax: 1 } }) as Record<string, ActivationRange>), 'QDQ_RANGE_MISSING', 1)
    for (const amax of [NaN, Infinity, -1]) {
      const err = expectCode(() => applyQdq(m, p, { x: { amax } }), 'QDQ_RANGE_INVALID', 4)
      expect(err.message).toBe(`The calibrated range of x is ${amax}: a Q/DQ scale needs a finite bound >= 0`)
    }
    const q = applyQdq(m, p, { x: { amax: 0 } })
    expect(floats(initOf(q, 'x_scale')!)[0]).toBe(MIN_SCALE)
  })

  it('QDQ_PLAN_MISMATCH: a plan applied to another model', () => {
    const m = dense()
    const p = planQdq(m)
    expectCode(() => applyQdq(transformerBlock(), p, { x: { amax: 1 } }), 'QDQ_PLAN_MISMATCH', 1)
    const renamed = dense()
    renamed.graph!.node![0]!.input![0] = 'x2'
    expect(expectCode(() => applyQdq(renamed, p, { x: { amax: 1 } }), 'QDQ_PLAN_MISMATCH', 1).message).toMatch(/input 0 of MatMul_0 is x2, not x/)
    expect(expectCode(() => applyQdq(m, { ...p, activations: [] }, {}), 'QDQ_PLAN_MISMATCH', 1).message).toMatch(/x is quantized at MatMul_0 but is not among plan.activations/)
    const other = { ...p, weights: [{ ...p.weights[0]!, initializer: 'v' }] }
    expect(expectCode(() => applyQdq(m, other, { x: { amax: 1 } }), 'QDQ_PLAN_MISMATCH', 1).message).toMatch(/does not read the constant v/)
    const wrongAxis = { ...p, weights: [{ ...p.weights[0]!, channels: 4 }] }
    expectCode(() => applyQdq(m, wrongAxis, { x: { amax: 1 } }), 'QDQ_PLAN_MISMATCH', 1)
    expectCode(() => applyQdq(m, { ...p, weights: [{ ...p.weights[0]!, input: 5 }] }, { x: { amax: 1 } }), 'QDQ_PLAN_MISMATCH', 1)
  })

  it('QDQ_WEIGHT_EXTERNAL: weights in external data must be inlined first; ONNX_INVALID: raw data that does not fill the dims', () => {
    const m = dense()
    const p = planQdq(m)
    const external = dense()
    const w = external.graph!.initializer![0]!
    w.rawData = undefined
    w.dataLocation = 1
    w.externalData = [{ key: 'location', value: 'model.onnx.data' }]
    expectCode(() => applyQdq(external, p, { x: { amax: 1 } }), 'QDQ_WEIGHT_EXTERNAL', 1)
    const short = dense()
    short.graph!.initializer![0]!.rawData = new Uint8Array(12)
    expect(expectCode(() => applyQdq(short, p, { x: { amax: 1 } }), 'ONNX_INVALID', 4).message).toBe('Weight w holds 3 values for dims [4, 2] (8 expected)')
  })
})
