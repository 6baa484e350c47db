/**
 * The fp16 model: one reference run of the fp32 model on sample inputs with every float value exposed
 * (intermediates.ts, batch by batch) picks the nodes fp16 cannot carry, then src/onnx/to-fp16.ts converts
 * the rest.
 *
 * A node stays fp32 by measured magnitude, beyond the fixed op lists of other converters, as NVIDIA's
 * AutoCast does (Model Optimizer, modelopt/onnx/autocast: nodes whose inputs or outputs exceed data_max,
 * default 512, stay in high precision): fp16 tops out at 65504 and loses integer precision past 2048, so a
 * value of magnitude 512 leaves it a factor of 128 of headroom for what a later input may bring.
 * It also stays fp32 when fp16 would flush what it makes: when most of its nonzero output values (more than
 * half) lie below fp16's smallest subnormal, 2^-24, so that in fp16 they would read as zeros.
 */
import { InternalError, UsageError } from '../lib/errors.js'
import type { ModelProto } from '../onnx/proto.js'
import { DataType, encodeModel } from '../onnx/proto.js'
import { convertToFp16, floatsOf, isFp16Model, nodeKey, type Fp16Report, type KeepReason } from '../onnx/to-fp16.js'
import { closeModel, loadModel } from './runtime.js'
import { exposeValues, type ExposedModel } from './intermediates.js'
import type { TensorMap } from './tensors.js'

export const DEFAULT_FP16_MAX_ABS = 512
const FP16_MIN_SUBNORMAL = 2 ** -24

export interface Fp16ModelOptions {
  model: ModelProto
  /** The model's path (its directory holds any external data). */
  path: string
  /** Sample inputs for the magnitude run. */
  samples: readonly TensorMap[]
  /** onnxruntime's dtype of every value (valueTypes() of intermediates.ts). */
  valueTypes: ReadonlyMap<string, string>
  keepFp32Ops?: readonly string[]
  maxAbs?: number
  /** A session of the model exposing every float value already (quantize's), reused for the magnitude run. */
  session?: ExposedModel
  /** The magnitude run's verdict, when the caller made it already (then samples are not run again). */
  measured?: ReadonlyMap<string, KeepReason>
}

interface ValueStats { maxAbs: number; nonZero: number; tiny: number }

/** Nodes to keep in fp32 by what the fp32 model's values do on the samples. */
export async function measureMagnitudes(
  model: ModelProto, path: string, samples: readonly TensorMap[], types: ReadonlyMap<string, string>, maxAbs = DEFAULT_FP16_MAX_ABS,
  session?: ExposedModel,
): Promise<Map<string, 'magnitude' | 'underflow'>> {
  const nodes = model.graph?.node ?? []
  const floats = [...new Set(nodes.flatMap((n) => n.output ?? []).filter((v) => v && types.get(v) === 'float32'))]
  const graphInputs = (model.graph?.input ?? []).filter((v) => v.type?.tensorType?.elemType === DataType.FLOAT).map((v) => v.name)
  const stats = new Map<string, ValueStats>()
  const exposed = session ?? await exposeValues(model, path, floats)
  try {
    for (const feeds of samples) {
      const out = await exposed.run(feeds, floats)
      for (const name of floats) fold(stats, name, out[name]!.data as Float32Array)
      for (const name of graphInputs) if (feeds[name]) fold(stats, name, feeds[name]!.data as Float32Array)
    }
  } finally {
    if (!session) await exposed.close()
  }
  // Initializers count as inputs too: a weight beyond fp16's range would be clamped.
  for (const t of model.graph?.initializer ?? []) {
    if (t.dataType !== DataType.FLOAT || !t.name) continue
    fold(stats, t.name, floatsOf(t))
  }
  const keep = new Map<string, 'magnitude' | 'underflow'>()
  nodes.forEach((n, i) => {
    const ins = (n.input ?? []).map((v) => stats.get(v)).filter((s): s is ValueStats => s !== undefined)
    const outs = (n.output ?? []).map((v) => stats.get(v)).filter((s): s is ValueStats => s !== undefined)
    if ([...ins, ...outs].some((s) => s.maxAbs > maxAbs)) keep.set(nodeKey(n, i), 'magnitude')
    else if (outs.some((s) => s.nonZero > 0 && s.tiny * 2 > s.nonZero)) keep.set(nodeKey(n, i), 'underflow')
  })
  return keep
}

function fold(stats: Map<string, ValueStats>, name: string, data: Float32Array): void {
  const s = stats.get(name) ?? { maxAbs: 0, nonZero: 0, tiny: 0 }
  let { maxAbs, nonZero, tiny } = s
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!
    const a = v < 0 ? -v : v
    if (a === 0 || a !== a) continue
    nonZero++
    if (a > maxAbs) maxAbs = a
    if (a < FP16_MIN_SUBNORMAL) tiny++
  }
  stats.set(name, { maxAbs, nonZero, tiny })
}

/** Refuses a model that is fp16 already or computes nothing in float32 (before any work is done). */
export function assertConvertible(model: ModelProto, path: string, types: ReadonlyMap<string, string>): void {
  if (isFp16Model(model)) {
    throw new UsageError(`${path} is an fp16 model already`, {
      code: 'ALREADY_FP16',
      hint: 'Give the fp32 model it was made from; converting twice only loses precision.',
    })
  }
  const hasFloat = [...types.values()].includes('float32') || (model.graph?.initializer ?? []).some((t) => t.dataType === DataType.FLOAT)
  if (!hasFloat) {
    throw new UsageError(`${path} computes nothing in float32: there is nothing to convert to fp16`, {
      code: 'NOTHING_TO_CONVERT',
      hint: 'fp16 applies to models with float32 weights or activations; build this one as it is.',
    })
  }
}

/** Measures, then converts; refuses a model that is fp16 already or computes nothing in float32. */
export async function makeFp16Model(o: Fp16ModelOptions): Promise<{ model: ModelProto; report: Fp16Report }> {
  assertConvertible(o.model, o.path, o.valueTypes)
  const keepFp32Nodes: Map<string, KeepReason> = new Map(o.measured ?? await measureMagnitudes(o.model, o.path, o.samples, o.valueTypes, o.maxAbs, o.session))
  const keys = new Set((o.model.graph?.node ?? []).map((n, i) => nodeKey(n, i)))
  // onnxruntime's CPU build lacks fp16 kernels for some ops (and ONNX gives some no float16 type at all,
  // Range): load the result, and keep in fp32 each node it refuses, by the name it gives, until it loads.
  for (let attempt = 0; ; attempt++) {
    const made = convertToFp16(o.model, {
      ...(o.keepFp32Ops ? { keepFp32Ops: o.keepFp32Ops } : {}),
      keepFp32Nodes,
      valueTypes: o.valueTypes,
    })
    const refused = await refusedNode(made.model)
    if (refused === undefined) return made
    if (!keys.has(refused) || keepFp32Nodes.has(refused) || attempt >= 64) {
      throw new InternalError(`the fp16 model of ${o.path} does not load in onnxruntime, and keeping node ${refused} in fp32 did not help`, {
        code: 'INTERNAL',
        details: { node: refused },
      })
    }
    keepFp32Nodes.set(refused, 'no-fp16-kernel')
  }
}

const REFUSED = [
  /of operator \(\w+\) in node \(([^)]+)\) is invalid/,
  /Could not find an implementation for \w+\(\d+\) node with name '([^']+)'/,
]

/** The node onnxruntime refuses to load in this model, or undefined when it loads. */
async function refusedNode(model: ModelProto): Promise<string | undefined> {
  let loaded
  try {
    loaded = await loadModel(encodeModel(model), { label: 'the fp16 model' })
  } catch (err) {
    const raw = String((err as { details?: { onnxruntime?: unknown } }).details?.onnxruntime ?? '')
    for (const re of REFUSED) {
      const m = re.exec(raw)
      if (m) return m[1]
    }
    throw err
  }
  await closeModel(loaded)
  return undefined
}
