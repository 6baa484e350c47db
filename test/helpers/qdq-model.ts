/**
 * A Q/DQ model made for the int8 build tests, by the recipe onnxruntime's static quantization uses for
 * TensorRT (optimum's AutoQuantizationConfig.tensorrt: QDQ format, symmetric int8 activations and weights,
 * a QuantizeLinear/DequantizeLinear pair on each fp32 weight, per-tensor scales from min/max calibration):
 *
 *   x [batch, 16] -> Q/DQ -> MatMul(W1 Q/DQ) + b1 -> Relu -> Q/DQ -> MatMul(W2 Q/DQ) + b2 -> y [batch, 8]
 *
 * The activation scales are calibrated by running the fp32 model in onnxruntime on seeded inputs.
 */
import { join } from 'node:path'
import { DataType, writeModel } from '../../src/onnx/proto.js'
import { GraphBuilder } from '../../src/onnx/graph-builder.js'
import { prng, uniform } from '../../src/lib/random.js'
import { closeModel, loadModel, runModel } from '../../src/validate/runtime.js'

const IN = 16
const HIDDEN = 32
const OUT = 8

function weights(): { w1: Float32Array; b1: Float32Array; w2: Float32Array; b2: Float32Array } {
  const rng = prng(7)
  return { w1: uniform(rng, IN * HIDDEN, 0.5), b1: uniform(rng, HIDDEN, 0.1), w2: uniform(rng, HIDDEN * OUT, 0.5), b2: uniform(rng, OUT, 0.1) }
}

/** The fp32 model, with the hidden activation as a second output when calibrating. */
function fp32Model(withHidden: boolean) {
  const { w1, b1, w2, b2 } = weights()
  const g = new GraphBuilder('mlp')
  g.input('x', DataType.FLOAT, ['batch', IN])
  const h = g.node('Relu', [g.op('Add', [g.op('MatMul', ['x', g.initializer('W1', [IN, HIDDEN], w1)]), g.initializer('b1', [HIDDEN], b1)])], [withHidden ? 'hidden' : 'h'])[0]!
  g.node('Add', [g.op('MatMul', [h, g.initializer('W2', [HIDDEN, OUT], w2)]), g.initializer('b2', [OUT], b2)], ['y'])
  g.output('y', DataType.FLOAT, ['batch', OUT])
  if (withHidden) g.output('hidden', DataType.FLOAT, ['batch', HIDDEN])
  return g.toModel({ opset: 17 })
}

const absMax = (a: ArrayLike<number>): number => {
  let m = 0
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!))
  return m
}

/** Min/max calibration of x and of the hidden activation over seeded inputs, as symmetric int8 scales. */
async function calibrate(dir: string): Promise<{ x: number; hidden: number }> {
  const path = join(dir, 'mlp-calibration.onnx')
  await writeModel(path, fp32Model(true))
  const model = await loadModel(path)
  try {
    const rng = prng(11)
    const x = uniform(rng, 64 * IN, 1)
    const out = await runModel(model, { x: { dtype: 'float32', dims: [64, IN], data: x } })
    return { x: absMax(x) / 127, hidden: absMax(out.hidden!.data as Float32Array) / 127 }
  } finally {
    await closeModel(model)
  }
}

function qdqModel(scales: { x: number; hidden: number }) {
  const { w1, b1, w2, b2 } = weights()
  const g = new GraphBuilder('mlp_qdq')
  const zero = g.initializer('zero_point', [], new Int8Array([0]), DataType.INT8)
  const qdq = (value: string, scale: number): string => {
    const s = g.constant('scale', [], new Float32Array([scale]))
    return g.op('DequantizeLinear', [g.op('QuantizeLinear', [value, s, zero]), s, zero])
  }
  g.input('x', DataType.FLOAT, ['batch', IN])
  const W1 = qdq(g.initializer('W1', [IN, HIDDEN], w1), absMax(w1) / 127)
  const h = g.op('Relu', [g.op('Add', [g.op('MatMul', [qdq('x', scales.x), W1]), g.initializer('b1', [HIDDEN], b1)])])
  const W2 = qdq(g.initializer('W2', [HIDDEN, OUT], w2), absMax(w2) / 127)
  g.node('Add', [g.op('MatMul', [qdq(h, scales.hidden), W2]), g.initializer('b2', [OUT], b2)], ['y'])
  g.output('y', DataType.FLOAT, ['batch', OUT])
  return g.toModel({ opset: 17 })
}

/** Writes mlp.onnx (fp32) and mlp-qdq.onnx (its Q/DQ model) into dir. */
export async function writeMlpModels(dir: string): Promise<{ fp32: string; qdq: string }> {
  const fp32 = join(dir, 'mlp.onnx')
  const qdq = join(dir, 'mlp-qdq.onnx')
  await writeModel(fp32, fp32Model(false))
  await writeModel(qdq, qdqModel(await calibrate(dir)))
  return { fp32, qdq }
}
