/**
 * The fp16 model: one reference run to find the nodes fp16 would break, then the rewrite of onnx/to-fp16.
 *
 * The measurement follows NVIDIA Model Optimizer's AutoCast (modelopt/onnx/autocast/nodeclassifier.py,
 * IORangeRule and InitializerRangeRule): a node is kept in float32 when any of its computed inputs or
 * outputs reaches beyond `maxAbs` in magnitude (default 512, AutoCast's DEFAULT_DATA_MAX: fp16's ulp is 0.5
 * there and grows to 32 at 65504), or when a stored value it reads (an initializer or a Constant) is beyond
 * fp16's largest finite value, 65504 (AutoCast's init_max). Constant nodes themselves are not judged: they
 * compute nothing, and their values are stored exactly for every float32 consumer.
 *
 * AutoCast has no check for values too small for fp16. Here a node is kept for underflow when, over all
 * samples, at least UNDERFLOW_SHARE of the nonzero values of one of its computed inputs or outputs lie below
 * fp16's smallest subnormal, 2^-24, where fp16 stores them as 0: a tensor whose values are mostly that small
 * (a scale applied before a normalization, a tiny-variance activation) loses them all. A few tiny values
 * among ordinary ones, such as the tail of a softmax, flush to zero without consequence and do not count.
 */
import { dirname } from 'node:path'
import { UsageError } from '../lib/errors.js'
import { externalDataRefs, inlineExternalData } from '../onnx/external-data.js'
import { alreadyFp16Error, convertToFp16, FP16_MAX, FP16_MIN_SUBNORMAL, isFp16Model, nameNodes, storedMaxAbs, type Fp16Report } from '../onnx/to-fp16.js'
import type { ModelProto, NodeProto } from '../onnx/proto.js'
import { typesOf, withExposedValues, type ExposedModel } from './intermediates.js'
import type { TensorMap } from './tensors.js'

/** NVIDIA AutoCast's default data_max. */
export const DEFAULT_FP16_MAX_ABS = 512
/** Share of a value's nonzero elements below 2^-24 from which its nodes are kept for underflow. */
export const UNDERFLOW_SHARE = 0.1

export interface Fp16ModelOptions {
  model: ModelProto
  /** Where the model was read from (its directory holds any external data; messages name it). */
  path: string
  /** Batches of sample inputs for the reference run (at least one). */
  samples: readonly TensorMap[]
  keepFp32Ops?: readonly string[]
  maxAbs?: number
  /** A session of the model exposing every node output (quantize's), used for the reference run. */
  session?: ExposedModel
  /** The reference run's verdict and the value types, when the caller measured already (nodes by name). */
  measured?: ReadonlyMap<string, 'magnitude' | 'underflow'>
  valueTypes?: ReadonlyMap<string, string>
}

interface Stats { maxAbs: number; nonzero: number; tiny: number }

function accumulate(stats: Map<string, Stats>, name: string, data: Float32Array): void {
  const s = stats.get(name) ?? { maxAbs: 0, nonzero: 0, tiny: 0 }
  for (let i = 0; i < data.length; i++) {
    const m = Math.abs(data[i]!)
    // NaN compares false everywhere and is left out; an infinity counts as beyond any maxAbs.
    if (m > s.maxAbs) s.maxAbs = m
    if (m > 0) {
      s.nonzero++
      if (m < FP16_MIN_SUBNORMAL) s.tiny++
    }
  }
  stats.set(name, s)
}

const isConstantNode = (n: NodeProto): boolean => n.opType === 'Constant' && (!n.domain || n.domain === 'ai.onnx')

/** The measurement, with onnxruntime's types of every value (convertToFp16 needs them too). */
async function measure(model: ModelProto, path: string, samples: readonly TensorMap[], maxAbs: number, session?: ExposedModel): Promise<{ keep: Map<string, 'magnitude' | 'underflow'>; types: Map<string, string> }> {
  if (samples.length === 0) {
    throw new UsageError(`the fp16 magnitude check of ${path} was given no sample inputs`, {
      code: 'FP16_NO_SAMPLES',
      hint: 'Give at least one batch of sample inputs (calibration data or generated inputs).',
    })
  }
  const nodes = model.graph?.node ?? []
  const stored = new Map<string, number>()
  for (const t of model.graph?.initializer ?? []) if (t.name) stored.set(t.name, storedMaxAbs(t))
  for (const n of nodes) {
    const value = isConstantNode(n) ? (n.attribute ?? []).find((a) => a.name === 'value')?.t : undefined
    if (value && n.output?.[0]) stored.set(n.output[0], storedMaxAbs(value))
  }
  const computed = nodes.filter((n) => !isConstantNode(n)).flatMap((n) => (n.output ?? []).filter(Boolean))
  const run = async (m: ExposedModel) => {
    const types = typesOf(m)
    const floats = [...new Set(computed.filter((n) => types.get(n) === 'float32'))]
    const floatInputs = m.loaded.inputs.filter((v) => v.dtype === 'float32').map((v) => v.name)
    const stats = new Map<string, Stats>()
    // onnxruntime refuses a run that fetches nothing; a model without float values has nothing to measure.
    for (const feeds of floats.length > 0 ? samples : []) {
      // Statistics only, batch by batch: no activation outlives its batch.
      const out = await m.run(feeds, floats)
      for (const [name, t] of Object.entries(out)) accumulate(stats, name, t.data as Float32Array)
      for (const name of floatInputs) if (feeds[name]) accumulate(stats, name, feeds[name].data as Float32Array)
    }
    const keep = new Map<string, 'magnitude' | 'underflow'>()
    for (const node of nodes) {
      if (isConstantNode(node) || !node.name) continue
      const values = [...(node.input ?? []), ...(node.output ?? [])].filter(Boolean)
      const measured = values.map((v) => stats.get(v)).filter((s): s is Stats => s !== undefined)
      if (measured.some((s) => s.maxAbs > maxAbs) || values.some((v) => (stored.get(v) ?? 0) > FP16_MAX)) keep.set(node.name, 'magnitude')
      else if (measured.some((s) => s.nonzero > 0 && s.tiny / s.nonzero >= UNDERFLOW_SHARE)) keep.set(node.name, 'underflow')
    }
    return { keep, types }
  }
  // quantize hands in its session of the model, which exposes every node output already.
  return session ? run(session) : withExposedValues(model, path, computed, run)
}

/**
 * Names of the nodes to keep in float32 by one reference run over `samples`, with why. Nodes are known by
 * name: give a model whose nodes all have one (to-fp16 nameNodes); unnamed nodes are not judged.
 */
export async function measureMagnitudes(
  model: ModelProto, path: string, samples: readonly TensorMap[], options: { maxAbs?: number; session?: ExposedModel } = {},
): Promise<Map<string, 'magnitude' | 'underflow'>> {
  return (await measure(model, path, samples, options.maxAbs ?? DEFAULT_FP16_MAX_ABS, options.session)).keep
}

/** The fp16 model of `o.model`: measured, then converted with the block list and the measured nodes kept. */
export async function makeFp16Model(o: Fp16ModelOptions): Promise<{ model: ModelProto; report: Fp16Report }> {
  if (isFp16Model(o.model)) throw alreadyFp16Error(o.path)
  let model = nameNodes(o.model)
  if (externalDataRefs(model).length > 0) {
    // In memory from here on (the rewrite reads every weight); copies, so the caller's tensors stay as read.
    model = { ...model, graph: { ...model.graph, initializer: (model.graph?.initializer ?? []).map((t) => ({ ...t })) } }
    await inlineExternalData(model, dirname(o.path))
  }
  if (o.measured && o.valueTypes) return convertToFp16(model, { keepFp32Ops: o.keepFp32Ops, keepFp32Nodes: o.measured, valueTypes: o.valueTypes })
  const { keep, types } = await measure(model, o.path, o.samples, o.maxAbs ?? DEFAULT_FP16_MAX_ABS, o.session)
  return convertToFp16(model, { keepFp32Ops: o.keepFp32Ops, keepFp32Nodes: keep, valueTypes: types })
}
