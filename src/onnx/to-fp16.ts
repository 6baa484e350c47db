/**
 * fp32 -> fp16 ONNX: float32 weights and computation in fp16, the graph's inputs and outputs in their own
 * types with Casts at the edges, chosen nodes kept in fp32 with Casts around them. Pure graph work; the
 * measurement that picks nodes by magnitude is src/validate/fp16-model.ts.
 *
 * Every float32 value lives in one of two domains: fp16 (made by a converted node, or a converted
 * initializer) or fp32 (a graph input, made by a kept node, or an initializer only kept nodes read). A node
 * reading a value of the other domain reads it through one Cast per value and target type, shared by every
 * such reader. A graph output made in fp16 is renamed inside the graph and re-created under its own name
 * by a Cast to float32, so callers see the model's interface unchanged.
 *
 * Where the converters of the field go wrong, this one does not:
 * - Cast(to=FLOAT) inside the converted region is retargeted to FLOAT16 (onnxconverter-common's
 *   convert_float_to_float16 leaves it, and the next fp16 op then gets a float32 input: a type error).
 * - Constant and ConstantOfShape values, the float tensors nobody lists as initializers, are converted too.
 * - An initializer read by both converted and kept nodes is kept as it is for the kept ones and copied in
 *   fp16 for the others, instead of casting at run time.
 * - Initializer values beyond fp16 are clamped to +-65504 and tiny nonzero ones raised to the smallest
 *   fp16 subnormal (2^-24) instead of flushing to zero (onnxconverter-common clamps to 1e-7 the same way).
 */
import { f32ToF16 } from './float16.js'
import { DataType, type AttributeProto, type GraphProto, type ModelProto, type NodeProto, type TensorProto } from './proto.js'

/**
 * Ops kept in fp32 by default, each for a reason:
 * - Resize, Upsample, RoiAlign, NonMaxSuppression: coordinates and scales lose pixels in fp16, and their
 *   float control inputs (scales, roi, boxes) must stay float32 by their type constraints;
 * - Range, CumSum: long sums and index-like ramps exceed fp16's 11-bit mantissa (2049 is not an fp16);
 * - TopK, ArgMax, ArgMin: ties that fp16 creates change which index wins;
 * - RandomNormal(Like), RandomUniform(Like), Multinomial, Bernoulli, EyeLike: their dtype attribute
 *   says the output type, and sampling wants the full mantissa;
 * - ReduceSumSquare, ReduceLogSumExp, ReduceL2, ReduceProd: sums of squares and products overflow fp16;
 * - Einsum: onnxruntime has no fp16 CPU kernel for it.
 */
export const DEFAULT_KEEP_FP32_OPS: readonly string[] = [
  'Resize', 'Upsample', 'RoiAlign', 'NonMaxSuppression',
  'Range', 'CumSum',
  'TopK', 'ArgMax', 'ArgMin',
  'RandomNormal', 'RandomNormalLike', 'RandomUniform', 'RandomUniformLike', 'Multinomial', 'Bernoulli', 'EyeLike',
  'ReduceSumSquare', 'ReduceLogSumExp', 'ReduceL2', 'ReduceProd',
  'Einsum',
]

export type KeepReason = 'block-list' | 'magnitude' | 'underflow' | 'subgraph' | 'no-fp16-kernel'

export interface Fp16Options {
  /** Ops kept in fp32 (default DEFAULT_KEEP_FP32_OPS; `--keep-fp32` replaces the list). */
  keepFp32Ops?: readonly string[]
  /** Nodes kept by measurement or because onnxruntime has no fp16 kernel for them, by nodeKey(). */
  keepFp32Nodes?: ReadonlyMap<string, KeepReason>
  /** onnxruntime's dtype of every value ('float32', 'int64', ...), from src/validate/intermediates valueTypes. */
  valueTypes?: ReadonlyMap<string, string>
}

export interface Fp16Report {
  /** Float nodes now computing in fp16. */
  convertedNodes: number
  kept: { node: string; opType: string; reason: KeepReason }[]
  initializersConverted: number
  /** Initializer values clamped into fp16's range (too large, or tiny but nonzero). */
  clampedValues: number
  castsInserted: number
  castsRetargeted: number
}

const FP16_MAX = 65504
const FP16_MIN_SUBNORMAL = 2 ** -24

/** How the fp16 transform and its measurement name a node: its name, else its op and position. */
export function nodeKey(node: NodeProto, index: number): string {
  return node.name ? node.name : `${node.opType}#${index}`
}

/** Whether the model already computes in fp16: more float16 weight bytes than float32 ones. */
export function isFp16Model(model: ModelProto): boolean {
  let f16 = 0
  let f32 = 0
  for (const t of model.graph?.initializer ?? []) {
    const n = (t.dims ?? []).reduce<number>((a, d) => a * Number(d), 1)
    if (t.dataType === DataType.FLOAT16) f16 += n
    if (t.dataType === DataType.FLOAT) f32 += n
  }
  const io = [...(model.graph?.input ?? []), ...(model.graph?.output ?? [])].some((v) => v.type?.tensorType?.elemType === DataType.FLOAT16)
  return f16 > f32 || (io && f32 === 0)
}

/** The float32 values of a float tensor (raw_data or float_data). */
export function floatsOf(t: TensorProto): Float32Array {
  if (t.rawData && t.rawData.byteLength) {
    const copy = new Uint8Array(t.rawData)
    return new Float32Array(copy.buffer, 0, copy.byteLength / 4)
  }
  return Float32Array.from(t.floatData ?? [])
}

function toHalfTensor(t: TensorProto, name: string | undefined, counter: { clamped: number }): TensorProto {
  const values = floatsOf(t)
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!
    const a = Math.abs(v)
    if (a > FP16_MAX && Number.isFinite(v)) {
      values[i] = Math.sign(v) * FP16_MAX
      counter.clamped++
    } else if (a > 0 && a < FP16_MIN_SUBNORMAL) {
      values[i] = Math.sign(v) * FP16_MIN_SUBNORMAL
      counter.clamped++
    }
  }
  const half = f32ToF16(values)
  const out: TensorProto = { ...t, dataType: DataType.FLOAT16, rawData: new Uint8Array(half.buffer), floatData: [] }
  if (name !== undefined) out.name = name
  return out
}

function hasSubgraph(n: NodeProto): boolean {
  return (n.attribute ?? []).some((a) => a.g !== undefined && a.g !== null || (a.graphs?.length ?? 0) > 0)
}

function attr(n: NodeProto, name: string): AttributeProto | undefined {
  return (n.attribute ?? []).find((a) => a.name === name)
}

class Names {
  private readonly used = new Set<string>()
  constructor(graph: GraphProto) {
    for (const v of [...(graph.input ?? []), ...(graph.output ?? []), ...(graph.valueInfo ?? [])]) this.used.add(v.name)
    for (const t of graph.initializer ?? []) this.used.add(t.name ?? '')
    for (const n of graph.node ?? []) {
      for (const o of [...(n.output ?? []), ...(n.input ?? [])]) this.used.add(o)
      if (n.name) this.used.add(n.name)
    }
  }

  fresh(base: string): string {
    let name = base
    for (let i = 1; this.used.has(name); i++) name = `${base}_${i}`
    this.used.add(name)
    return name
  }
}

export function convertToFp16(model: ModelProto, options: Fp16Options = {}): { model: ModelProto; report: Fp16Report } {
  const graph = model.graph ?? {}
  const nodes = graph.node ?? []
  const blockList = new Set(options.keepFp32Ops ?? DEFAULT_KEEP_FP32_OPS)
  const types = options.valueTypes ?? new Map<string, string>()
  const inits = new Map((graph.initializer ?? []).map((t) => [t.name ?? '', t]))
  const graphInputs = new Set((graph.input ?? []).map((v) => v.name))
  const isFloat = (v: string): boolean => {
    if (!v) return false
    const t = inits.get(v)
    if (t) return t.dataType === DataType.FLOAT
    const declared = [...(graph.input ?? []), ...(graph.output ?? [])].find((x) => x.name === v)?.type?.tensorType?.elemType
    if (declared !== undefined) return declared === DataType.FLOAT
    return types.get(v) === 'float32'
  }

  // Which nodes compute in float, and which of them stay in fp32.
  const report: Fp16Report = { convertedNodes: 0, kept: [], initializersConverted: 0, clampedValues: 0, castsInserted: 0, castsRetargeted: 0 }
  const floatNode = nodes.map((n) => [...(n.input ?? []), ...(n.output ?? [])].some(isFloat)
    || (n.opType === 'Cast' && Number(attr(n, 'to')?.i ?? 0) === DataType.FLOAT)
    || (n.opType === 'Constant' && attr(n, 'value')?.t?.dataType === DataType.FLOAT)
    || (n.opType === 'ConstantOfShape' && attr(n, 'value')?.t?.dataType === DataType.FLOAT))
  const kept = nodes.map((n, i) => {
    if (!floatNode[i]) return false
    const reason: KeepReason | undefined = hasSubgraph(n) ? 'subgraph'
      : blockList.has(n.opType) ? 'block-list'
        : options.keepFp32Nodes?.get(nodeKey(n, i))
    if (reason) report.kept.push({ node: nodeKey(n, i), opType: n.opType, reason })
    return reason !== undefined
  })

  // Domains of float32 values: initializers by their readers, node outputs by their producer.
  const readers = new Map<string, number[]>()
  nodes.forEach((n, i) => (n.input ?? []).forEach((v) => { if (v) readers.set(v, [...(readers.get(v) ?? []), i]) }))
  const names = new Names(graph)
  const counter = { clamped: 0 }
  const newInits: TensorProto[] = []
  /** Float32 initializer -> the name its fp16 readers use. */
  const halfInit = new Map<string, string>()
  for (const t of graph.initializer ?? []) {
    const name = t.name ?? ''
    const rs = readers.get(name) ?? []
    if (t.dataType !== DataType.FLOAT || graphInputs.has(name)) {
      newInits.push(t)
      continue
    }
    const toHalf = rs.filter((i) => floatNode[i] && !kept[i])
    const toFull = rs.filter((i) => !floatNode[i] || kept[i])
    if (toHalf.length === 0) {
      newInits.push(t)
      continue
    }
    report.initializersConverted++
    if (toFull.length === 0) {
      newInits.push(toHalfTensor(t, undefined, counter))
      halfInit.set(name, name)
    } else {
      newInits.push(t)
      const copy = names.fresh(`${name}_fp16`)
      newInits.push(toHalfTensor(t, copy, counter))
      halfInit.set(name, copy)
    }
  }
  const halfValues = new Set<string>()
  nodes.forEach((n, i) => {
    if (!floatNode[i] || kept[i]) return
    for (const o of n.output ?? []) if (isFloat(o) || (n.opType === 'Cast' && Number(attr(n, 'to')?.i ?? 0) === DataType.FLOAT)) halfValues.add(o)
    if ((n.opType === 'Constant' || n.opType === 'ConstantOfShape') && attr(n, 'value')?.t?.dataType === DataType.FLOAT) for (const o of n.output ?? []) halfValues.add(o)
  })

  // Graph outputs made in fp16 get a new inner name; a Cast re-creates them under their own.
  const outputs = new Set((graph.output ?? []).map((v) => v.name))
  const renamed = new Map<string, string>()
  for (const o of outputs) if (halfValues.has(o)) renamed.set(o, names.fresh(`${o}_fp16`))
  const inner = (v: string) => renamed.get(v) ?? v

  const casts = new Map<string, string>()
  const castNodes: NodeProto[] = []
  const castOf = (value: string, to: number): string => {
    const key = `${value}\0${to}`
    let out = casts.get(key)
    if (!out) {
      out = names.fresh(`${value}_${to === DataType.FLOAT16 ? 'fp16' : 'fp32'}`)
      casts.set(key, out)
      castNodes.push({ opType: 'Cast', name: names.fresh(`Cast_${out}`), input: [value], output: [out], attribute: [{ name: 'to', type: 2, i: to }] })
      report.castsInserted++
    }
    return out
  }

  const rewritten: NodeProto[] = nodes.map((n, i) => {
    if (!floatNode[i]) return { ...n, input: (n.input ?? []).map(inner) }
    const half = !kept[i]
    const input = (n.input ?? []).map((v) => {
      if (!v) return v
      if (half) {
        if (halfInit.has(v)) return halfInit.get(v)!
        if (halfValues.has(v)) return inner(v)
        return isFloat(v) ? castOf(v, DataType.FLOAT16) : inner(v)
      }
      // A kept node reads fp16 values through a Cast back to float32.
      return halfValues.has(v) ? castOf(inner(v), DataType.FLOAT) : v
    })
    const output = (n.output ?? []).map(inner)
    let attribute = n.attribute
    if (half) {
      report.convertedNodes++
      attribute = (n.attribute ?? []).map((a) => {
        if (n.opType === 'Cast' && a.name === 'to' && Number(a.i) === DataType.FLOAT) {
          report.castsRetargeted++
          return { ...a, i: DataType.FLOAT16 }
        }
        if ((n.opType === 'Constant' || n.opType === 'ConstantOfShape') && a.name === 'value' && a.t?.dataType === DataType.FLOAT) {
          return { ...a, t: toHalfTensor(a.t, undefined, counter) }
        }
        if (n.opType === 'Constant' && a.name === 'value_float') {
          return { name: 'value', type: 4, t: toHalfTensor({ dims: [], dataType: DataType.FLOAT, floatData: [a.f ?? 0] }, undefined, counter) }
        }
        if (n.opType === 'Constant' && a.name === 'value_floats') {
          return { name: 'value', type: 4, t: toHalfTensor({ dims: [(a.floats ?? []).length], dataType: DataType.FLOAT, floatData: a.floats ?? [] }, undefined, counter) }
        }
        return a
      })
    }
    return { ...n, input, output, attribute }
  })
  for (const [o, internal] of renamed) {
    castNodes.push({ opType: 'Cast', name: names.fresh(`Cast_${o}`), input: [internal], output: [o], attribute: [{ name: 'to', type: 2, i: DataType.FLOAT }] })
    report.castsInserted++
  }
  report.clampedValues = counter.clamped

  // Casts on graph inputs and initializers go first, the output casts last; the rest keeps its order,
  // which stays topological because every other Cast reads a value made before its first reader.
  const early = castNodes.filter((c) => !renamed.has(c.output![0]!) && (graphInputs.has(c.input![0]!) || inits.has(c.input![0]!)))
  const late = castNodes.filter((c) => !early.includes(c))
  const ordered = topological([...early, ...rewritten, ...late])
  return {
    model: { ...model, graph: { ...graph, node: ordered, initializer: newInits, valueInfo: [] } },
    report,
  }
}

/** Nodes in an order where each value is made before it is read (Kahn's algorithm, stable). */
function topological(nodes: NodeProto[]): NodeProto[] {
  const producer = new Map<string, number>()
  nodes.forEach((n, i) => (n.output ?? []).forEach((o) => producer.set(o, i)))
  const pending = nodes.map((n) => new Set((n.input ?? []).filter((v) => v && producer.has(v)).map((v) => producer.get(v)!)))
  const readersOf = new Map<number, number[]>()
  pending.forEach((deps, i) => deps.forEach((d) => readersOf.set(d, [...(readersOf.get(d) ?? []), i])))
  const ready: number[] = []
  pending.forEach((d, i) => { if (d.size === 0) ready.push(i) })
  const out: NodeProto[] = []
  const done = new Set<number>()
  while (ready.length) {
    ready.sort((a, b) => a - b)
    const i = ready.shift()!
    done.add(i)
    out.push(nodes[i]!)
    for (const r of readersOf.get(i) ?? []) {
      pending[r]!.delete(i)
      if (pending[r]!.size === 0 && !done.has(r)) ready.push(r)
    }
  }
  // A cycle cannot come from a valid graph; keep whatever is left in its order rather than drop nodes.
  if (out.length < nodes.length) for (const [i, n] of nodes.entries()) if (!done.has(i)) out.push(n)
  return out
}
