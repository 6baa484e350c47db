/**
 * float32 -> float16, as a pure rewrite of the graph (no onnxruntime here; the measured part is
 * validate/fp16-model.ts). The rules, in the order they are applied:
 *
 * 1. Every node is classified. A node with no float32 input or output is left alone. A float32 node stays
 *    float32 when it must (fp16-rules unsupportedReason: other domains, subgraphs, ops without an fp16 type
 *    in ONNX), when its op is in the block list (DEFAULT_KEEP_FP32_OPS, or the caller's list, which replaces
 *    it), or when measurement named it (keepFp32Nodes). Every other float32 node computes in fp16.
 * 2. A Cast to float32 is decided by its consumers: retargeted to float16 when all of them compute in fp16
 *    (a Cast-to-float left in the middle of an fp16 region is the type mismatch onnxconverter-common makes),
 *    left as it is when any consumer needs float32 (a graph output, a kept node), so nothing is rounded to
 *    fp16 and back on the way to a float32 consumer.
 * 3. Each float32 value is then given the precision each consumer needs: initializers and Constant values
 *    are stored in fp16 when no consumer needs float32, kept when none needs fp16, and stored both ways
 *    otherwise (the float32 copy stays exact for the node kept because of it). Computed values get one Cast
 *    per value and direction, right after their producer, shared by every consumer that needs it.
 * 4. Graph inputs and outputs keep their names and types: inputs are cast down after entering, outputs
 *    produced in fp16 are computed under a new name and cast up into the declared one. Values read by a
 *    subgraph keep their name and type too.
 *
 * Stored values are rounded to nearest even; finite values beyond fp16's range are clamped to +-65504 (as
 * onnxconverter-common and NVIDIA AutoCast do) and nonzero values below its smallest subnormal, 2^-24, are
 * raised to +-2^-24 instead of flushing to zero, so that a guard such as `x / (n + 1e-12)` stays nonzero and
 * keeps its sign (AutoCast raises them to +2^-24 whatever their sign). Infinities and NaN stay what they are:
 * fp16 has them.
 */
import { UsageError, IntegrityError } from '../lib/errors.js'
import { f32ToF16 } from './float16.js'
import { allTensors } from './external-data.js'
import { constantType, elementTypes, elemTypeFromOrt } from './elem-types.js'
import {
  DEFAULT_KEEP_FP32_OPS, DTYPE_ATTRIBUTE_OPS, FP32_ONLY_INPUTS, FP32_OUTPUTS, FREE_INPUTS, unsupportedReason,
} from './fp16-rules.js'
import { AttributeType, DataType, num, type AttributeProto, type GraphProto, type ModelProto, type NodeProto, type TensorProto } from './proto.js'

export { DEFAULT_KEEP_FP32_OPS } from './fp16-rules.js'

export type KeepReason = 'block-list' | 'magnitude' | 'underflow' | 'unsupported'

export interface Fp16Options {
  /** Ops kept in float32; default DEFAULT_KEEP_FP32_OPS. `--keep-fp32 op,op` replaces the list. */
  keepFp32Ops?: readonly string[]
  /** Node names kept in float32 by measurement (validate/fp16-model.ts measureMagnitudes). */
  keepFp32Nodes?: ReadonlyMap<string, 'magnitude' | 'underflow'>
  /**
   * onnxruntime's dtype of each value (validate/intermediates valueTypes). Without it the types come from
   * the graph (elem-types.ts), which cannot type the outputs of ops of other domains.
   */
  valueTypes?: ReadonlyMap<string, string>
  /**
   * Initializers whose values are not in memory (the native exporter streams them from the checkpoint):
   * given as headers (name, dims, FLOAT) and returned as fp16 headers without data; `deferred` in the
   * result names the float32 source of each, for the writer to convert while it streams (toFp16Bits).
   */
  deferred?: ReadonlySet<string>
}

export interface Fp16Report {
  /** Nodes that compute in fp16 (retargeted Casts included). */
  convertedNodes: number
  /** Float32 nodes left in float32, with why (detail: what makes an 'unsupported' node so). */
  kept: { node: string; opType: string; reason: KeepReason; detail?: string }[]
  initializersConverted: number
  /** Constant nodes whose value is now stored in fp16. */
  constantsConverted: number
  /** Stored values moved into fp16's range: above 65504 in magnitude, or nonzero below 2^-24. */
  clampedValues: number
  castsInserted: number
  castsRetargeted: number
}

export const FP16_MAX = 65504
export const FP16_MIN_SUBNORMAL = 2 ** -24

/** True when the model already stores its float weights in fp16 (more fp16 than float32 elements). */
export function isFp16Model(model: ModelProto): boolean {
  let half = 0
  let single = 0
  for (const t of allTensors(model)) {
    const n = (t.dims ?? []).reduce<number>((a, d) => a * num(d), 1)
    if (t.dataType === DataType.FLOAT16) half += n
    else if (t.dataType === DataType.FLOAT) single += n
  }
  return half > 0 && half >= single
}

export function alreadyFp16Error(source: string): UsageError {
  return new UsageError(`${source} is already an fp16 model: its weights are stored in float16`, {
    code: 'ALREADY_FP16',
    hint: 'Give the float32 model (the one it was converted from); converting twice only adds Casts.',
  })
}

/** A copy of the model in which every unnamed node has a name (keepFp32Nodes and reports go by name). */
export function nameNodes(model: ModelProto): ModelProto {
  const nodes = model.graph?.node ?? []
  if (nodes.every((n) => n.name)) return model
  const taken = new Set(nodes.map((n) => n.name).filter(Boolean))
  const named = nodes.map((n, i) => {
    if (n.name) return n
    let name = `${n.opType}_${i}`
    for (let k = 1; taken.has(name); k++) name = `${n.opType}_${i}_${k}`
    taken.add(name)
    return { ...n, name }
  })
  return { ...model, graph: { ...model.graph, node: named } }
}

function defaultOpset(model: ModelProto): number | undefined {
  const entry = (model.opsetImport ?? []).find((o) => !o.domain || o.domain === 'ai.onnx')
  return entry ? num(entry.version) : undefined
}

/** Names every subgraph of `graph` reads from the scopes around it. */
function outerScopeReads(graph: GraphProto): Set<string> {
  const reads = new Set<string>()
  for (const node of graph.node ?? []) {
    for (const a of node.attribute ?? []) {
      for (const g of [...(a.g ? [a.g] : []), ...(a.graphs ?? [])]) for (const name of freeNames(g)) reads.add(name)
    }
  }
  return reads
}

/** Names a graph reads without defining them (inputs, initializers and node outputs define). */
function freeNames(graph: GraphProto): Set<string> {
  const defined = new Set<string>([
    ...(graph.input ?? []).map((v) => v.name),
    ...(graph.initializer ?? []).map((t) => t.name ?? ''),
    ...(graph.node ?? []).flatMap((n) => n.output ?? []),
  ])
  const free = new Set<string>()
  for (const name of [...(graph.node ?? []).flatMap((n) => n.input ?? []), ...outerScopeReads(graph), ...(graph.output ?? []).map((o) => o.name)]) {
    if (name && !defined.has(name)) free.add(name)
  }
  return free
}

/** Every name in the graph and its subgraphs, so that new names collide with none. */
function allNames(graph: GraphProto, into = new Set<string>()): Set<string> {
  for (const v of [...(graph.input ?? []), ...(graph.output ?? []), ...(graph.valueInfo ?? [])]) into.add(v.name)
  for (const t of graph.initializer ?? []) into.add(t.name ?? '')
  for (const n of graph.node ?? []) {
    for (const x of [...(n.input ?? []), ...(n.output ?? []), n.name ?? '']) into.add(x)
    for (const a of n.attribute ?? []) for (const g of [...(a.g ? [a.g] : []), ...(a.graphs ?? [])]) allNames(g, into)
  }
  return into
}

function float32Values(t: TensorProto, where: string): Float32Array {
  if (t.dataLocation === 1) {
    throw new UsageError(`${where} keeps its data in an external file, which the fp16 transform does not read`, {
      code: 'FP16_EXTERNAL_DATA',
      hint: 'Load the external data into the model first (inlineExternalData), as makeFp16Model does.',
    })
  }
  if (t.rawData && t.rawData.length > 0) {
    // A copy (new Uint8Array copies; Buffer.slice would not): raw_data is a view into the decoded file at
    // any alignment. Little-endian, as graph-builder writes it.
    return new Float32Array(new Uint8Array(t.rawData).buffer)
  }
  return Float32Array.from(t.floatData ?? [])
}

/**
 * The largest finite magnitude stored in a float32 tensor (0 for other types and external data): what the
 * measurement compares with fp16's range. Infinities are left out, since fp16 stores them as they are.
 */
export function storedMaxAbs(t: TensorProto): number {
  if (t.dataType !== DataType.FLOAT || t.dataLocation === 1) return 0
  let max = 0
  for (const x of float32Values(t, t.name ?? 'tensor')) {
    const m = Math.abs(x)
    if (m > max && m !== Infinity) max = m
  }
  return max
}

/**
 * float32 values as fp16 bits under the rules above (clamped into range, tiny values raised to 2^-24);
 * `values` is changed in place, so pass a copy or a buffer the caller is done with.
 */
export function toFp16Bits(values: Float32Array, counts: { clamped: number }): Uint16Array {
  for (let i = 0; i < values.length; i++) {
    const x = values[i]!
    const m = Math.abs(x)
    if (m > FP16_MAX && m !== Infinity) {
      values[i] = Math.sign(x) * FP16_MAX
      counts.clamped++
    } else if (m > 0 && m < FP16_MIN_SUBNORMAL) {
      values[i] = Math.sign(x) * FP16_MIN_SUBNORMAL
      counts.clamped++
    }
  }
  // Converted from the float32 bits in one pass (f32ToF16; a whole model's weights go through here).
  return f32ToF16(values)
}

/** The fp16 copy of a float32 tensor (same name unless given), counting the values moved into range. */
function halfTensor(t: TensorProto, where: string, counts: { clamped: number }, name = t.name): TensorProto {
  // float32Values returns a copy, so toFp16Bits may move values into range in place.
  const bits = toFp16Bits(float32Values(t, where), counts)
  const out: TensorProto = { name, dims: t.dims ?? [], dataType: DataType.FLOAT16, rawData: new Uint8Array(bits.buffer) }
  if (t.docString) out.docString = t.docString
  return out
}

const intAttribute = (name: string, value: number): AttributeProto => ({ name, type: AttributeType.INT, i: value })
const tensorAttribute = (name: string, t: TensorProto): AttributeProto => ({ name, type: AttributeType.TENSOR, t })

/** A Constant's value as an fp16 `value` tensor (value_float and value_floats become one). */
function halfConstant(node: NodeProto, counts: { clamped: number }, output: string): NodeProto {
  const where = `Constant ${node.name || output}`
  const attrs = (node.attribute ?? []).map((a) => {
    if (a.name === 'value' && a.t) return tensorAttribute('value', halfTensor(a.t, where, counts, a.t.name))
    if (a.name === 'value_float') return tensorAttribute('value', halfTensor({ dims: [], dataType: DataType.FLOAT, floatData: [a.f ?? 0] }, where, counts, undefined))
    if (a.name === 'value_floats') return tensorAttribute('value', halfTensor({ dims: [a.floats?.length ?? 0], dataType: DataType.FLOAT, floatData: a.floats ?? [] }, where, counts, undefined))
    return a
  })
  return { ...node, attribute: attrs, output: [output] }
}

/** The attribute changes of a node that now computes in fp16 (those whose output type is an attribute). */
function retypeAttributes(node: NodeProto, outputIsFloat: boolean, counts: { clamped: number; retargeted: number }): AttributeProto[] | undefined {
  const attrs = node.attribute ?? []
  const replace = (name: string, make: (old?: AttributeProto) => AttributeProto): AttributeProto[] => {
    const at = attrs.findIndex((a) => a.name === name)
    return at < 0 ? [...attrs, make()] : attrs.map((a, i) => (i === at ? make(a) : a))
  }
  if (node.opType === 'Cast') {
    if (!outputIsFloat) return undefined
    counts.retargeted++
    return replace('to', () => intAttribute('to', DataType.FLOAT16))
  }
  if (node.opType === 'ConstantOfShape' && outputIsFloat) {
    return replace('value', (old) => tensorAttribute('value', old?.t
      ? halfTensor(old.t, `ConstantOfShape ${node.name ?? ''} value`, counts)
      // No value means a float32 zero; say float16 zero instead.
      : { dims: [1], dataType: DataType.FLOAT16, rawData: new Uint8Array(2) }))
  }
  if (DTYPE_ATTRIBUTE_OPS.has(node.opType) && outputIsFloat) return replace('dtype', () => intAttribute('dtype', DataType.FLOAT16))
  return undefined
}

const isConstantSource = (node: NodeProto): boolean =>
  node.opType === 'Constant' && (!node.domain || node.domain === 'ai.onnx') && constantType(node) === DataType.FLOAT

type Demand = 'fp16' | 'fp32' | 'any'
type Status = 'neutral' | 'fp16' | 'fp32' | 'const' | 'cast'

export function convertToFp16(model: ModelProto, options: Fp16Options = {}): { model: ModelProto; report: Fp16Report; deferred: Map<string, string> } {
  const source = model.graph?.name ? `model ${model.graph.name}` : 'the model'
  if (isFp16Model(model)) throw alreadyFp16Error(source)
  const graph: GraphProto = model.graph ?? {}
  const nodes = graph.node ?? []
  const opset = defaultOpset(model) ?? 0

  let given: Map<string, number> | undefined
  if (options.valueTypes) {
    given = new Map()
    for (const [name, dtype] of options.valueTypes) {
      const t = elemTypeFromOrt(dtype)
      if (t !== undefined) given.set(name, t)
    }
  }
  const types = elementTypes(graph, given)
  const untyped = [...new Set(nodes.flatMap((n) => [...(n.input ?? []), ...(n.output ?? [])]))].filter((v) => v && !types.has(v))
  if (untyped.length > 0) {
    throw new UsageError(`the element type of ${untyped.length} value(s) of ${source} is not known (${untyped.slice(0, 5).join(', ')}${untyped.length > 5 ? ', ...' : ''}), so the fp16 transform cannot tell which are float32`, {
      code: 'FP16_TYPES_UNKNOWN',
      hint: "Pass valueTypes (validate/intermediates valueTypes: onnxruntime's inferred types), or declare those values in the graph's value_info.",
    })
  }
  const isFloat = (v: string | undefined): boolean => !!v && types.get(v) === DataType.FLOAT

  const graphInputs = new Set((graph.input ?? []).map((v) => v.name))
  const graphOutputs = new Set((graph.output ?? []).map((v) => v.name))
  const subgraphReads = outerScopeReads(graph)
  const initializers = new Map<string, TensorProto>()
  for (const t of graph.initializer ?? []) if (t.name && !graphInputs.has(t.name)) initializers.set(t.name, t)
  const keepOps = new Set(options.keepFp32Ops ?? DEFAULT_KEEP_FP32_OPS)

  // 1. classify
  const report: Fp16Report = { convertedNodes: 0, kept: [], initializersConverted: 0, constantsConverted: 0, clampedValues: 0, castsInserted: 0, castsRetargeted: 0 }
  const status: Status[] = nodes.map((node) => {
    const ins = node.input ?? []
    const outs = node.output ?? []
    if (isConstantSource(node)) return 'const'
    if (![...ins, ...outs].some(isFloat)) return 'neutral'
    const keep = (reason: KeepReason, detail?: string): Status => {
      report.kept.push({ node: node.name ?? '', opType: node.opType, reason, ...(detail ? { detail } : {}) })
      return 'fp32'
    }
    const unsupported = unsupportedReason(node, opset)
    if (unsupported) return keep('unsupported', unsupported)
    if (keepOps.has(node.opType)) return keep('block-list')
    const measured = node.name ? options.keepFp32Nodes?.get(node.name) : undefined
    if (measured) return keep(measured)
    return node.opType === 'Cast' && isFloat(outs[0]) ? 'cast' : 'fp16'
  })

  const producer = new Map<string, { node: number; slot: number }>()
  const consumers = new Map<string, { node: number; slot: number }[]>()
  nodes.forEach((node, i) => {
    ;(node.output ?? []).forEach((o, slot) => { if (o) producer.set(o, { node: i, slot }) })
    ;(node.input ?? []).forEach((v, slot) => {
      if (!v) return
      const list = consumers.get(v) ?? []
      list.push({ node: i, slot })
      consumers.set(v, list)
    })
  })
  const demandOf = (i: number, slot: number): Demand => {
    if (status[i] === 'fp32') return 'fp32'
    if (status[i] === 'cast') return 'any'
    const op = nodes[i]!.opType
    if (FP32_ONLY_INPUTS[op]?.includes(slot)) return 'fp32'
    if (FREE_INPUTS[op]?.includes(slot)) return 'any'
    return 'fp16'
  }
  const needsFp32ByName = (v: string): boolean => graphOutputs.has(v) || subgraphReads.has(v)

  // 2. Casts to float32, last first: a consumer Cast's demand ('any') does not depend on its own decision.
  const retargeted = new Set<number>()
  for (let i = nodes.length - 1; i >= 0; i--) {
    if (status[i] !== 'cast') continue
    const out = nodes[i]!.output![0]!
    const demands = (consumers.get(out) ?? []).map((c) => demandOf(c.node, c.slot))
    if (!needsFp32ByName(out) && demands.length > 0 && !demands.includes('fp32')) retargeted.add(i)
  }
  const computesInFp16 = (i: number): boolean => status[i] === 'fp16' || retargeted.has(i)
  report.convertedNodes = nodes.filter((_, i) => computesInFp16(i)).length
  if (report.convertedNodes === 0) throw nothingToConvert(source, report)
  if (opset < 6) {
    throw new IntegrityError(`${source} imports opset ${opset} of the default domain; Cast to float16 needs opset 6 or later`, {
      code: 'ONNX_UNSUPPORTED',
      hint: 'Re-export the model with a current opset (export --opset 17).',
    })
  }

  // 3. one precision per consumer
  const used = allNames(graph)
  const fresh = (base: string): string => {
    let name = base
    for (let k = 1; used.has(name); k++) name = `${base}_${k}`
    used.add(name)
    return name
  }
  const inputs = nodes.map((n) => [...(n.input ?? [])])
  const outputs = nodes.map((n) => [...(n.output ?? [])])
  /** Nodes to emit after node i (-1: before the first node). */
  const after = new Map<number, NodeProto[]>()
  const emitAfter = (i: number, node: NodeProto): void => {
    const list = after.get(i) ?? []
    list.push(node)
    after.set(i, list)
  }
  const addCast = (at: number, from: string, to: string, elemType: number): void => {
    emitAfter(at, { opType: 'Cast', name: fresh(`${to}_cast`), input: [from], output: [to], attribute: [intAttribute('to', elemType)] })
    report.castsInserted++
  }
  const halfValues = new Set<string>()
  const counts = { clamped: 0, retargeted: 0 }
  const convertedInitializers = new Map<string, TensorProto[]>()
  const deferred = new Map<string, string>()
  const halfInitializer = (v: string, where: string, name = v): TensorProto => {
    const t = initializers.get(v)!
    if (!options.deferred?.has(v)) return halfTensor(t, where, counts, name)
    deferred.set(name, v)
    return { name, dims: t.dims ?? [], dataType: DataType.FLOAT16 }
  }
  const constantOutput = new Map<number, 'half' | 'both'>()

  // Unconsumed values too: a dead output of a converted node is fp16 all the same, and its value_info must say so.
  const floatValues = new Set<string>([...consumers.keys(), ...graphOutputs, ...producer.keys(), ...initializers.keys()].filter(isFloat))
  for (const v of floatValues) {
    const uses = (consumers.get(v) ?? []).map((c) => ({ ...c, demand: demandOf(c.node, c.slot) }))
    const want16 = uses.some((u) => u.demand === 'fp16')
    const want32 = needsFp32ByName(v) || uses.some((u) => u.demand === 'fp32')
    const point = (demand: (d: Demand) => boolean, name: string): void => {
      for (const u of uses) if (demand(u.demand)) inputs[u.node]![u.slot] = name
    }
    const made = producer.get(v)
    const isConstant = made !== undefined && status[made.node] === 'const'
    if (initializers.has(v) || isConstant) {
      const where = isConstant ? `Constant ${nodes[made!.node]!.name || v}` : `initializer ${v}`
      if (want32 && !want16) continue
      if (!want32) {
        halfValues.add(v)
        if (isConstant) constantOutput.set(made!.node, 'half')
        else convertedInitializers.set(v, [halfInitializer(v, where)])
        continue
      }
      const h = fresh(`${v}_fp16`)
      halfValues.add(h)
      point((d) => d === 'fp16', h)
      if (isConstant) {
        constantOutput.set(made!.node, 'both')
        emitAfter(made!.node, halfConstant({ ...nodes[made!.node]!, name: fresh(`${nodes[made!.node]!.name || v}_fp16`) }, counts, h))
      } else {
        convertedInitializers.set(v, [initializers.get(v)!, halfInitializer(v, where, h)])
      }
      continue
    }
    const homeHalf = made !== undefined && computesInFp16(made.node) && !FP32_OUTPUTS[nodes[made.node]!.opType]?.includes(made.slot)
    const at = made?.node ?? -1
    if (!homeHalf) {
      if (!want16) continue
      const h = fresh(`${v}_fp16`)
      halfValues.add(h)
      addCast(at, v, h, DataType.FLOAT16)
      point((d) => d === 'fp16', h)
      continue
    }
    if (!want32) {
      halfValues.add(v)
      continue
    }
    if (needsFp32ByName(v)) {
      // The declared name must hold float32: the fp16 value moves to a new name and is cast up into it.
      const h = fresh(`${v}_fp16`)
      halfValues.add(h)
      outputs[made!.node]![made!.slot] = h
      point((d) => d !== 'fp32', h)
      addCast(at, h, v, DataType.FLOAT)
    } else {
      halfValues.add(v)
      const f = fresh(`${v}_fp32`)
      addCast(at, v, f, DataType.FLOAT)
      point((d) => d === 'fp32', f)
    }
  }

  // 4. emit
  const newNodes: NodeProto[] = [...(after.get(-1) ?? [])]
  nodes.forEach((node, i) => {
    let n: NodeProto = node
    if (status[i] === 'const' && constantOutput.get(i) === 'half') {
      n = halfConstant(node, counts, outputs[i]![0]!)
      report.constantsConverted++
    } else if (computesInFp16(i)) {
      const attrs = retypeAttributes(node, isFloat(node.output?.[0]), counts)
      if (attrs) n = { ...n, attribute: attrs }
    }
    if (status[i] === 'const' && constantOutput.get(i) === 'both') report.constantsConverted++
    const ins = inputs[i]!
    const outs = outputs[i]!
    if (ins.some((x, k) => x !== (node.input ?? [])[k]) || outs.some((x, k) => x !== (node.output ?? [])[k])) n = { ...n, input: ins, output: outs }
    newNodes.push(n, ...(after.get(i) ?? []))
  })
  const newInitializers = (graph.initializer ?? []).flatMap((t) => convertedInitializers.get(t.name ?? '') ?? [t])
  report.initializersConverted = [...convertedInitializers.values()].length
  report.clampedValues = counts.clamped
  report.castsRetargeted = counts.retargeted
  const valueInfo = (graph.valueInfo ?? []).map((vi) => (halfValues.has(vi.name) && vi.type?.tensorType?.elemType === DataType.FLOAT
    ? { ...vi, type: { ...vi.type, tensorType: { ...vi.type.tensorType, elemType: DataType.FLOAT16 } } }
    : vi))

  const out: ModelProto = { ...model, graph: { ...graph, node: newNodes, initializer: newInitializers, valueInfo } }
  return { model: out, report, deferred }
}

function nothingToConvert(source: string, report: Fp16Report): UsageError {
  if (report.kept.length === 0) {
    return new UsageError(`${source} has no float32 computation to convert to fp16`, {
      code: 'NO_FLOAT32_COMPUTE',
      hint: 'fp16 converts float32 nodes; this model computes in other types (integers, float64, float16). Give the float32 model.',
    })
  }
  const by = (r: KeepReason): number => report.kept.filter((k) => k.reason === r).length
  return new UsageError(`every float32 node of ${source} stays float32 (${by('block-list')} by the block list, ${by('magnitude') + by('underflow')} by measurement, ${by('unsupported')} unsupported), so nothing would be converted`, {
    code: 'NO_FLOAT32_COMPUTE',
    hint: 'Shorten --keep-fp32, or raise --fp16-max-abs if measurement kept them.',
  })
}
