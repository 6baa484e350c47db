/**
 * Explicit INT8 quantization the way TensorRT wants it: where the QuantizeLinear/DequantizeLinear pairs go
 * (planQdq) and the rewrite that puts them there with calibrated scales (applyQdq). Pure graph work: the
 * activation ranges come from the caller (calibration runs onnxruntime; this module never does).
 *
 * The placement follows NVIDIA's TensorRT Model Optimizer (modelopt/onnx/quantization):
 * - int8.py `_find_nodes_to_quantize`: the weighted ops (MatMul, Gemm, Conv) get Q/DQ on their inputs, not on
 *   their outputs, and the bias stays float;
 * - partitioning.py `find_mha_partitions` / `find_hardcoded_patterns` (GELU: Div-Erf-Add-Mul-Mul) /
 *   `find_layer_norm_partitions`: the attention core, GELU and LayerNorm stay in float;
 * - graph_utils.py `build_non_residual_input_map` / `get_fusible_backbone` / utils.py
 *   `find_lowest_common_ancestor`: a residual Add gets Q/DQ on its residual input only when the other input
 *   comes from a Conv that TensorRT can fuse the Add into.
 * Weights are quantized per output channel as onnxruntime's QDQ quantizer does (onnxruntime/python/tools/
 * quantization: qdq_quantizer.py `quantize_weight_tensor_per_channel`, operators/matmul.py axis 1 for
 * MatMul, operators/gemm.py axis 0 with transB and 1 without, Conv axis 0), symmetric and narrow range
 * ([-127, 127], as TensorRT requires), zero point 0, stored as INT8 initializers behind DequantizeLinear.
 * Value and node names follow onnxruntime's (`<x>_QuantizeLinear_Output`, `<w>_quantized`, `<x>_scale`).
 *
 * Hand-written: those tools are Python on onnx-graphsurgeon and onnxruntime's quantizer, and modelforge runs
 * no Python; the part needed here is a few hundred lines of graph walking.
 *
 * Rules for users: docs/quantize.md, section "int8 placement".
 */
import { InternalError, IntegrityError, UsageError } from '../lib/errors.js'
import { attribute, tensor } from './graph-builder.js'
import { DataType, num, type GraphProto, type ModelProto, type NodeProto, type TensorProto } from './proto.js'

export interface QdqOptions {
  /**
   * Also quantize the attention core: the MatMuls of two activations (QK^T, attention weights x V) get
   * per-tensor Q/DQ on both inputs. LayerNormalization, Softmax and GELU stay float either way: TensorRT
   * runs them in float (its int8 attention kernels take int8 at the MatMul inputs, which this gives).
   */
  quantizeAttention?: boolean
  /** onnxruntime's dtype per value ('float32', ...; src/validate/intermediates.ts valueTypes). */
  valueTypes?: ReadonlyMap<string, string>
  /** What to call the model in messages (its path). Default "the model". */
  label?: string
}

export type SkipReason =
  /** A MatMul of two activations (QK^T, attention weights x V), without quantizeAttention. */
  | 'attention-core'
  /** A MatMul/Gemm/Conv whose second input (B, W) is not a constant. */
  | 'no-weight'
  /** Its first input is a constant too: a subgraph constant folding removes, nothing to calibrate. */
  | 'no-activation'
  /** A weight of a rank the op's per-channel axis does not fit (a MatMul with a 1-D B). */
  | 'weight-rank'
  /** LayerNormalization, Softmax, GELU: kept in float. */
  | 'float-op'
  /** A weight or activation that is not float32 (QuantizeLinear here quantizes float32 only). */
  | 'not-float'
  /** An Add after a weighted op that TensorRT cannot fuse the Add into (any MatMul/Gemm; a Conv in some shapes). */
  | 'residual-not-fusible'

export interface QdqWeight {
  /** The consumer node (its name, or `<opType>#<index>` when unnamed or not unique). */
  node: string
  /** Which input of it the weight is. */
  input: number
  /** The float initializer (or Constant output) the weight is read from, through Identity/Transpose. */
  initializer: string
  /** The per-channel axis of the weight as the consumer sees it. */
  axis: number
  /** Channels along that axis: the length of the scale. */
  channels: number
}

/** One Q/DQ pair: TensorRT cannot share a pair between consumers, so each consumer input has its own. */
export interface QdqActivationInput {
  node: string
  input: number
  tensor: string
}

export interface QdqPlan {
  /** Tensors needing a calibrated range, each once, in graph order. */
  activations: string[]
  /** Where activation Q/DQ pairs go, in graph order. */
  activationInputs: QdqActivationInput[]
  weights: QdqWeight[]
  quantized: { node: string; opType: string }[]
  skipped: { node: string; opType: string; reason: SkipReason }[]
  /** quantized by op type, skipped by reason. */
  counts: { quantized: Record<string, number>; skipped: Record<string, number> }
}

/** The symmetric bound |x| <= amax that calibration chose for one tensor. */
export interface ActivationRange { amax: number }

/** int8 narrow range: TensorRT takes symmetric [-127, 127] only. */
const QMAX = 127

/**
 * The smallest scale written. A channel or tensor that is zero everywhere (or nearly) would get scale 0,
 * which DequantizeLinear and TensorRT reject; any positive scale reproduces exact zeros, and 2^-40 is a
 * normal float32 with a finite float32 reciprocal, far below the step of any real weight.
 */
export const MIN_SCALE = 2 ** -40

/** Ops that mean a model is quantized already (Q/DQ, onnxruntime's QOperator and integer ops). */
const QUANTIZED_OPS = new Set([
  'QuantizeLinear', 'DequantizeLinear', 'DynamicQuantizeLinear', 'MatMulInteger', 'ConvInteger',
  'QGemm', 'QAttention', 'DynamicQuantizeMatMul', 'MatMulIntegerToFloat', 'DynamicQuantizeLSTM', 'QEmbedLayerNormalization',
])

const isDefaultDomain = (node: NodeProto): boolean => !node.domain || node.domain === 'ai.onnx'

function* allNodes(graph: GraphProto | undefined): Generator<NodeProto> {
  for (const node of graph?.node ?? []) {
    yield node
    for (const a of node.attribute ?? []) {
      if (a.g) yield* allNodes(a.g)
      for (const g of a.graphs ?? []) yield* allNodes(g)
    }
  }
}

function quantizedOps(model: ModelProto): Map<string, number> {
  const found = new Map<string, number>()
  for (const node of allNodes(model.graph)) {
    if (QUANTIZED_OPS.has(node.opType) || node.opType.startsWith('QLinear')) found.set(node.opType, (found.get(node.opType) ?? 0) + 1)
  }
  return found
}

/** Whether the model (subgraphs included) already holds Q/DQ or quantized operators. */
export function isQdqModel(model: ModelProto): boolean {
  return quantizedOps(model).size > 0
}

/** DequantizeLinear's `axis` (per-channel scales) is opset 13. */
const MIN_OPSET = 13

function defaultOpset(model: ModelProto): number {
  const entry = (model.opsetImport ?? []).find((o) => !o.domain || o.domain === 'ai.onnx')
  return entry ? num(entry.version) : 0
}

// ------------------------------------------------------------------------------------------ graph index

interface Use { node: number; input: number }

interface GraphIndex {
  graph: GraphProto
  nodes: NodeProto[]
  /** A unique key per node: its name, or `<opType>#<index>` when it has none or shares it. */
  keys: string[]
  byKey: Map<string, number>
  producer: Map<string, number>
  consumers: Map<string, Use[]>
  initializers: Map<string, TensorProto>
  graphInputs: Set<string>
  graphOutputs: Set<string>
  /** Declared element types (graph inputs, outputs, value_info). */
  declared: Map<string, number>
}

function indexGraph(graph: GraphProto): GraphIndex {
  const nodes = graph.node ?? []
  const nameCount = new Map<string, number>()
  for (const n of nodes) if (n.name) nameCount.set(n.name, (nameCount.get(n.name) ?? 0) + 1)
  const keys = nodes.map((n, i) => (n.name && nameCount.get(n.name) === 1 ? n.name : `${n.opType}#${i}`))
  const producer = new Map<string, number>()
  const consumers = new Map<string, Use[]>()
  nodes.forEach((n, i) => {
    for (const o of n.output ?? []) if (o) producer.set(o, i)
    ;(n.input ?? []).forEach((v, input) => {
      if (!v) return
      const list = consumers.get(v) ?? []
      list.push({ node: i, input })
      consumers.set(v, list)
    })
  })
  const declared = new Map<string, number>()
  for (const v of [...(graph.input ?? []), ...(graph.output ?? []), ...(graph.valueInfo ?? [])]) {
    const t = v.type?.tensorType?.elemType
    if (t) declared.set(v.name, t)
  }
  return {
    graph,
    nodes,
    keys,
    byKey: new Map(keys.map((k, i) => [k, i])),
    producer,
    consumers,
    initializers: new Map((graph.initializer ?? []).map((t) => [t.name ?? '', t])),
    graphInputs: new Set((graph.input ?? []).map((v) => v.name)),
    graphOutputs: new Set((graph.output ?? []).map((v) => v.name)),
    declared,
  }
}

/** A constant a node input reads, found through Identity, Transpose and Constant as exporters write them. */
interface ConstantSource {
  /** The initializer, or the output of the Constant node. */
  name: string
  tensor: TensorProto
  /** Transposes between the source and the consumer, in the order they apply (source first). */
  perms: (number[] | undefined)[]
  /** The Identity/Transpose/Constant nodes on the way. */
  via: number[]
}

function intsAttr(node: NodeProto, name: string): number[] | undefined {
  const a = (node.attribute ?? []).find((x) => x.name === name)
  return a?.ints ? a.ints.map(num) : undefined
}

function intAttr(node: NodeProto, name: string, fallback: number): number {
  const a = (node.attribute ?? []).find((x) => x.name === name)
  return a?.i === undefined || a.i === null ? fallback : num(a.i)
}

function constantSource(ix: GraphIndex, value: string): ConstantSource | undefined {
  const perms: (number[] | undefined)[] = []
  const via: number[] = []
  let v = value
  // Each step moves to an earlier node, so the walk ends within the node count.
  for (let step = 0; step <= ix.nodes.length; step++) {
    // An initializer that is also a graph input is a default the caller may override: not a constant.
    const init = ix.initializers.get(v)
    if (init && !ix.graphInputs.has(v)) return { name: v, tensor: init, perms: perms.reverse(), via }
    const p = ix.producer.get(v)
    if (p === undefined) return undefined
    const node = ix.nodes[p]!
    if (!isDefaultDomain(node)) return undefined
    if (node.opType === 'Constant') {
      const t = (node.attribute ?? []).find((a) => a.name === 'value')?.t
      if (!t) return undefined
      via.push(p)
      return { name: v, tensor: t, perms: perms.reverse(), via }
    }
    if (node.opType !== 'Identity' && node.opType !== 'Transpose') return undefined
    if (node.opType === 'Transpose') perms.push(intsAttr(node, 'perm'))
    via.push(p)
    v = node.input?.[0] ?? ''
  }
  return undefined
}

const isConstant = (ix: GraphIndex, value: string): boolean => constantSource(ix, value) !== undefined

/** The dims of the constant as its consumer sees them (after the transposes on the way). */
function effectiveDims(src: ConstantSource): number[] {
  let dims = (src.tensor.dims ?? []).map(num)
  for (const perm of src.perms) {
    const p = perm ?? dims.map((_, i) => dims.length - 1 - i)
    dims = p.map((i) => dims[i]!)
  }
  return dims
}

/** 'float32', 'other', or undefined when nothing says. */
function floatness(ix: GraphIndex, options: QdqOptions, value: string): 'float32' | 'other' | undefined {
  const ort = options.valueTypes?.get(value)
  if (ort !== undefined) return ort === 'float32' ? 'float32' : 'other'
  const declared = ix.declared.get(value) ?? ix.initializers.get(value)?.dataType
  if (declared !== undefined) return declared === DataType.FLOAT ? 'float32' : 'other'
  return undefined
}

// ------------------------------------------------------------------------------------------ planning

type Decision =
  | { kind: 'quantized'; sites: number[]; weight?: Omit<QdqWeight, 'node'> }
  | { kind: 'skipped'; reason: SkipReason }

function checkQuantizable(model: ModelProto, label: string): void {
  const found = quantizedOps(model)
  if (found.size > 0) {
    const list = [...found].map(([op, n]) => `${n} ${op}`).join(', ')
    throw new UsageError(`${label} is quantized already (${list}): quantizing it again would stack a second set of scales on the first`, {
      code: 'ALREADY_QUANTIZED',
      hint: 'Give the fp32 model it came from.',
      details: { ops: Object.fromEntries(found) },
    })
  }
  const opset = defaultOpset(model)
  if (opset < MIN_OPSET) {
    // Raising the opset in place would change what older nodes mean (Softmax's axis, Squeeze/Unsqueeze/
    // Split/Reduce* axes moving from attributes to inputs at 13), so the model is refused instead.
    throw new UsageError(`${label} has opset ${opset || 'none'} for the default domain; per-channel DequantizeLinear (axis) needs opset ${MIN_OPSET} or later`, {
      code: 'QDQ_OPSET_TOO_LOW',
      hint: 'Re-export the model with opset 13 or later (modelforge export --opset 17).',
      details: { opset },
    })
  }
}

/** Where a weighted op's weight is and which per-channel axis it has, or why it is skipped. */
function planWeighted(ix: GraphIndex, i: number, options: QdqOptions): Decision {
  const node = ix.nodes[i]!
  const inputs = node.input ?? []
  const a = inputs[0] ?? ''
  const b = inputs[1] ?? ''
  const weight = b ? constantSource(ix, b) : undefined
  const activationConst = a ? isConstant(ix, a) : true
  if (node.opType === 'MatMul' && !weight && !activationConst) {
    if (!options.quantizeAttention) return { kind: 'skipped', reason: 'attention-core' }
    if (floatness(ix, options, a) === 'other' || floatness(ix, options, b) === 'other') return { kind: 'skipped', reason: 'not-float' }
    return { kind: 'quantized', sites: [0, 1] }
  }
  if (!weight) return { kind: 'skipped', reason: 'no-weight' }
  if (activationConst) return { kind: 'skipped', reason: 'no-activation' }
  if (weight.tensor.dataType !== DataType.FLOAT || floatness(ix, options, a) === 'other') return { kind: 'skipped', reason: 'not-float' }
  const dims = effectiveDims(weight)
  let axis: number
  if (node.opType === 'MatMul') {
    // B is [..., K, N]: the output channels are N, the last axis (1 for the 2-D weights of dense layers).
    if (dims.length < 2) return { kind: 'skipped', reason: 'weight-rank' }
    axis = dims.length - 1
  } else if (node.opType === 'Gemm') {
    if (dims.length !== 2) return { kind: 'skipped', reason: 'weight-rank' }
    axis = intAttr(node, 'transB', 0) ? 0 : 1
  } else {
    // Conv W is [M, C/group, k...]: output channels first.
    if (dims.length < 3) return { kind: 'skipped', reason: 'weight-rank' }
    axis = 0
  }
  return { kind: 'quantized', sites: [0], weight: { input: 1, initializer: weight.name, axis, channels: dims[axis]! } }
}

/** GELU written out as torch exports it: Div (or Mul) -> Erf -> Add(1) -> Mul -> Mul. */
function isGeluErf(ix: GraphIndex, i: number): boolean {
  const erf = ix.nodes[i]!
  const p = ix.producer.get(erf.input?.[0] ?? '')
  const before = p === undefined ? undefined : ix.nodes[p]
  if (!before || (before.opType !== 'Div' && before.opType !== 'Mul') || !(before.input ?? []).some((v) => isConstant(ix, v))) return false
  const uses = ix.consumers.get(erf.output?.[0] ?? '') ?? []
  if (uses.length !== 1) return false
  const add = ix.nodes[uses[0]!.node]!
  if (add.opType !== 'Add' || !(add.input ?? []).some((v) => isConstant(ix, v))) return false
  return (ix.consumers.get(add.output?.[0] ?? '') ?? []).some((u) => ix.nodes[u.node]!.opType === 'Mul')
}

const FLOAT_OPS = new Set(['LayerNormalization', 'Softmax', 'Gelu', 'FastGelu', 'BiasGelu'])

/** The only non-constant input of a node, if it has exactly one. */
function soleActivation(ix: GraphIndex, node: NodeProto): string | undefined {
  const live = (node.input ?? []).filter((v) => v && !isConstant(ix, v))
  return live.length === 1 ? live[0] : undefined
}

const singleUse = (ix: GraphIndex, value: string): boolean => (ix.consumers.get(value)?.length ?? 0) === 1 && !ix.graphOutputs.has(value)

/**
 * The weighted op (Conv, MatMul, Gemm) whose output reaches `value` through the layers TensorRT fuses into
 * it: optional MaxPool, Relu or SiLU (x * Sigmoid(x)), BatchNormalization, bias Add, constant Mul, in that
 * order backwards, as get_fusible_backbone's path types list them. Every value on the way, `value` included,
 * must have this one use: a Conv whose output is read elsewhere cannot take the Add into its kernel.
 */
function fusibleBackbone(ix: GraphIndex, value: string): number | undefined {
  if (!singleUse(ix, value)) return undefined
  const stages = ['MaxPool', 'Act', 'BatchNormalization', 'BiasAdd', 'ConstMul']
  let v = value
  let stage = 0
  for (let step = 0; step <= ix.nodes.length; step++) {
    const p = ix.producer.get(v)
    if (p === undefined) return undefined
    const node = ix.nodes[p]!
    if (!isDefaultDomain(node)) return undefined
    if (node.opType === 'Conv' || node.opType === 'MatMul' || node.opType === 'Gemm') return p
    const link = fusibleStep(ix, node)
    if (!link) return undefined
    const at = stages.indexOf(link.kind, stage)
    if (at < 0) return undefined
    stage = at + 1
    v = link.next
  }
  return undefined
}

/** The layer kind of one node of a fusible chain and the value it reads, if it is one. */
function fusibleStep(ix: GraphIndex, node: NodeProto): { kind: string; next: string } | undefined {
  const only = (kind: string, next: string | undefined) => (next !== undefined && singleUse(ix, next) ? { kind, next } : undefined)
  switch (node.opType) {
    case 'MaxPool':
    case 'BatchNormalization':
      return only(node.opType, node.input?.[0])
    case 'Relu':
      return only('Act', node.input?.[0])
    case 'Add':
      return only('BiasAdd', soleActivation(ix, node))
    case 'Mul': {
      const scaled = soleActivation(ix, node)
      if (scaled !== undefined) return only('ConstMul', scaled)
      // SiLU: Mul(t, Sigmoid(t)), where t is read by exactly these two.
      const [x, y] = node.input ?? []
      for (const [t, s] of [[x, y], [y, x]]) {
        const sp = ix.producer.get(s ?? '')
        const sigmoid = sp === undefined ? undefined : ix.nodes[sp]
        if (t && s && sigmoid?.opType === 'Sigmoid' && sigmoid.input?.[0] === t && singleUse(ix, s)
          && ix.consumers.get(t)?.length === 2 && !ix.graphOutputs.has(t)) return { kind: 'Act', next: t }
      }
      return undefined
    }
    default:
      return undefined
  }
}

/** Shortest distance from node `from` to each of its ancestors (and itself, at 0). */
function ancestors(ix: GraphIndex, from: number): Map<number, number> {
  const dist = new Map<number, number>([[from, 0]])
  const queue = [from]
  for (let head = 0; head < queue.length; head++) {
    const n = queue[head]!
    for (const v of ix.nodes[n]!.input ?? []) {
      const p = ix.producer.get(v)
      if (p === undefined || dist.has(p)) continue
      dist.set(p, dist.get(n)! + 1)
      queue.push(p)
    }
  }
  return dist
}

/** The common ancestor closest to a (ties: closest to b, then the earliest node), as find_lowest_common_ancestor. */
function lowestCommonAncestor(ix: GraphIndex, a: number, b: number): { node: number; da: number; db: number } | undefined {
  const fa = ancestors(ix, a)
  const fb = ancestors(ix, b)
  let best: { node: number; da: number; db: number } | undefined
  for (const [n, da] of fa) {
    const db = fb.get(n)
    if (db === undefined) continue
    if (!best || da < best.da || (da === best.da && (db < best.db || (db === best.db && n < best.node)))) best = { node: n, da, db }
  }
  return best
}

/**
 * An Add of two activations, one of them coming out of a weighted op: the residual input it should
 * quantize (0 or 1), or a skip when TensorRT cannot fuse it; undefined when it is no residual Add at all
 * (embeddings, the attention mask). build_non_residual_input_map's rules: an Add reading a graph input is
 * left alone; when both inputs come out of Convs, the one on the longer path to their lowest common
 * ancestor is the block (fused, non-residual) and the other the shortcut. Its ConvNeXt rule (the other
 * input descends from the same Conv) cannot arise here: the chain from the Conv has one use per value.
 */
function planResidualAdd(ix: GraphIndex, i: number, quantizedConvs: Set<number>, weighted: Set<number>): Decision | undefined {
  const inputs = ix.nodes[i]!.input ?? []
  if (inputs.length !== 2) return undefined
  const [x0, x1] = inputs as [string, string]
  if (isConstant(ix, x0) || isConstant(ix, x1)) return undefined
  const backbone = (x: string) => {
    const b = fusibleBackbone(ix, x)
    return b !== undefined && weighted.has(b) ? b : undefined
  }
  const w0 = backbone(x0)
  const w1 = backbone(x1)
  if (w0 === undefined && w1 === undefined) return undefined
  const skip: Decision = { kind: 'skipped', reason: 'residual-not-fusible' }
  const p0 = ix.producer.get(x0)
  const p1 = ix.producer.get(x1)
  const c0 = w0 !== undefined && quantizedConvs.has(w0)
  const c1 = w1 !== undefined && quantizedConvs.has(w1)
  if ((!c0 && !c1) || p0 === undefined || p1 === undefined) return skip
  if (c0 && c1) {
    const lca = lowestCommonAncestor(ix, p0, p1)
    return { kind: 'quantized', sites: [lca && lca.da > lca.db ? 1 : 0] }
  }
  return { kind: 'quantized', sites: [c0 ? 1 : 0] }
}

/**
 * Where the Q/DQ pairs of an INT8 model go (docs/quantize.md, "int8 placement"). Throws ALREADY_QUANTIZED,
 * QDQ_OPSET_TOO_LOW, and NOTHING_TO_QUANTIZE when no MatMul/Gemm/Conv with a float32 weight is there.
 */
export function planQdq(model: ModelProto, options: QdqOptions = {}): QdqPlan {
  const label = options.label ?? 'the model'
  checkQuantizable(model, label)
  const ix = indexGraph(model.graph ?? {})
  const decisions = new Map<number, Decision>()
  // Ops that carry a weight, quantized or not: an Add fed by one is a residual Add (listed either way).
  const weighted = new Set<number>()
  const quantizedConvs = new Set<number>()
  ix.nodes.forEach((node, i) => {
    if (!isDefaultDomain(node) && !(node.domain === 'com.microsoft' && FLOAT_OPS.has(node.opType))) return
    if (node.opType === 'MatMul' || node.opType === 'Gemm' || node.opType === 'Conv') {
      const d = planWeighted(ix, i, options)
      decisions.set(i, d)
      if (d.kind === 'quantized' ? d.weight !== undefined : d.reason !== 'attention-core' && d.reason !== 'no-weight') weighted.add(i)
      if (d.kind === 'quantized' && d.weight && node.opType === 'Conv') quantizedConvs.add(i)
    } else if (FLOAT_OPS.has(node.opType) || (node.opType === 'Erf' && isGeluErf(ix, i))) {
      decisions.set(i, { kind: 'skipped', reason: 'float-op' })
    }
  })
  // Residual Adds need the Conv decisions above.
  ix.nodes.forEach((node, i) => {
    if (node.opType !== 'Add' || !isDefaultDomain(node)) return
    const d = planResidualAdd(ix, i, quantizedConvs, weighted)
    if (d) decisions.set(i, d)
  })

  const plan: QdqPlan = { activations: [], activationInputs: [], weights: [], quantized: [], skipped: [], counts: { quantized: {}, skipped: {} } }
  const seen = new Set<string>()
  for (const i of [...decisions.keys()].sort((a, b) => a - b)) {
    const d = decisions.get(i)!
    const node = ix.nodes[i]!
    const key = ix.keys[i]!
    if (d.kind === 'skipped') {
      plan.skipped.push({ node: key, opType: node.opType, reason: d.reason })
      plan.counts.skipped[d.reason] = (plan.counts.skipped[d.reason] ?? 0) + 1
      continue
    }
    plan.quantized.push({ node: key, opType: node.opType })
    plan.counts.quantized[node.opType] = (plan.counts.quantized[node.opType] ?? 0) + 1
    for (const input of d.sites) {
      const t = node.input![input]!
      plan.activationInputs.push({ node: key, input, tensor: t })
      if (!seen.has(t)) {
        seen.add(t)
        plan.activations.push(t)
      }
    }
    if (d.weight) plan.weights.push({ node: key, ...d.weight })
  }
  if (plan.weights.length === 0) {
    const found = Object.entries(plan.counts.skipped).map(([r, n]) => `${n} skipped as ${r}`).join(', ')
    throw new UsageError(`${label} has no MatMul, Gemm or Conv with a float32 weight to quantize${found ? ` (${found})` : ''}`, {
      code: 'NOTHING_TO_QUANTIZE',
      hint: 'int8 needs a model with dense or convolution layers (MatMul/Gemm/Conv with constant float32 weights); build this one in fp16 or fp32 instead.',
      details: { skipped: plan.counts.skipped },
    })
  }
  return plan
}

// ------------------------------------------------------------------------------------------ weights

/** A FLOAT tensor's values (raw_data or float_data); external data must have been inlined. */
function floatValues(t: TensorProto, name: string): Float32Array {
  if (t.dataLocation === 1) {
    throw new InternalError(`Weight ${name} is stored in external data; applyQdq needs its bytes in the model`, {
      code: 'QDQ_WEIGHT_EXTERNAL',
      hint: 'The caller must inline external data first (inlineExternalData in src/onnx/external-data.ts). This is a bug in modelforge.',
    })
  }
  const count = (t.dims ?? []).map(num).reduce((x, y) => x * y, 1)
  let values: Float32Array
  if (t.rawData && t.rawData.length > 0) {
    // raw_data is a view at any byte offset of the decoded buffer (a Node Buffer, whose slice() does not
    // copy); copying into a fresh Uint8Array gives an aligned Float32Array of exactly these bytes.
    values = new Float32Array(new Uint8Array(t.rawData).buffer, 0, Math.floor(t.rawData.length / 4))
  } else {
    values = Float32Array.from(t.floatData ?? [])
  }
  if (values.length !== count) {
    throw new IntegrityError(`Weight ${name} holds ${values.length} values for dims [${(t.dims ?? []).map(num).join(', ')}] (${count} expected)`, {
      code: 'ONNX_INVALID',
      hint: 'Re-export the model; `modelforge inspect` lists what is wrong.',
    })
  }
  return values
}

/** Row-major transpose of an N-d array. */
function transpose(data: Float32Array, dims: number[], perm: number[]): { data: Float32Array; dims: number[] } {
  const outDims = perm.map((p) => dims[p]!)
  const strides = dims.map((_, i) => dims.slice(i + 1).reduce((x, y) => x * y, 1))
  const permStrides = perm.map((p) => strides[p]!)
  const out = new Float32Array(data.length)
  const idx = new Array<number>(outDims.length).fill(0)
  for (let o = 0; o < out.length; o++) {
    let src = 0
    for (let k = 0; k < idx.length; k++) src += idx[k]! * permStrides[k]!
    out[o] = data[src]!
    for (let k = idx.length - 1; k >= 0; k--) {
      if (++idx[k]! < outDims[k]!) break
      idx[k] = 0
    }
  }
  return { data: out, dims: outDims }
}

/**
 * Symmetric per-channel int8: scale[c] = max|w[..c..]| / 127 (at least MIN_SCALE), q = round-half-even(w /
 * scale[c]) clamped to [-127, 127], as QuantizeLinear rounds. `axis` may be negative (from the end).
 */
export function quantizeWeightPerChannel(w: Float32Array, dims: number[], axis: number, name = 'weight'): { q: Int8Array; scales: Float32Array } {
  const count = dims.reduce((x, y) => x * y, 1)
  if (count !== w.length) throw new RangeError(`${name}: dims [${dims.join(', ')}] hold ${count} elements but the data has ${w.length}`)
  const ax = axis < 0 ? axis + dims.length : axis
  if (!Number.isInteger(ax) || ax < 0 || ax >= dims.length) throw new RangeError(`${name}: axis ${axis} is outside a weight of rank ${dims.length}`)
  const channels = dims[ax]!
  const inner = dims.slice(ax + 1).reduce((x, y) => x * y, 1)
  // One flat pass each, the channel tracked by counters (no per-element division or call): a MiniLM's
  // 10M weights take some tens of milliseconds this way.
  const n = w.length
  const amax = new Float64Array(channels)
  for (let i = 0, c = 0, k = 0; i < n; i++) {
    const x = w[i]!
    const a = x < 0 ? -x : x
    if (!(a <= 3.4028234663852886e38)) {
      throw new IntegrityError(`Weight ${name} holds ${x} at element ${i}: a non-finite weight has no int8 scale`, {
        code: 'QDQ_WEIGHT_NON_FINITE',
        hint: 'Check the checkpoint the model was exported from; its weights hold NaN or Infinity.',
      })
    }
    if (a > amax[c]!) amax[c] = a
    if (++k === inner) {
      k = 0
      if (++c === channels) c = 0
    }
  }
  const scales = new Float32Array(channels)
  for (let c = 0; c < channels; c++) scales[c] = Math.max(Math.fround(amax[c]! / QMAX), MIN_SCALE)
  const q = new Int8Array(n)
  for (let i = 0, c = 0, k = 0; i < n; i++) {
    // round(x / scale) to nearest even (floor-based, which holds for negatives too), clamped to +-127.
    const r = w[i]! / scales[c]!
    let v = Math.floor(r)
    const d = r - v
    if (d > 0.5 || (d === 0.5 && (v & 1) !== 0)) v++
    q[i] = v > QMAX ? QMAX : v < -QMAX ? -QMAX : v
    if (++k === inner) {
      k = 0
      if (++c === channels) c = 0
    }
  }
  return { q, scales }
}

// ------------------------------------------------------------------------------------------ rewriting

/** Fresh names that collide with nothing in the graph (values, nodes, initializers), deterministically. */
class Names {
  private readonly used = new Set<string>()
  constructor(graph: GraphProto) {
    for (const n of allNodes(graph)) {
      if (n.name) this.used.add(n.name)
      for (const v of [...(n.input ?? []), ...(n.output ?? [])]) this.used.add(v)
    }
    for (const v of [...(graph.input ?? []), ...(graph.output ?? []), ...(graph.valueInfo ?? [])]) this.used.add(v.name)
    for (const t of graph.initializer ?? []) this.used.add(t.name ?? '')
  }

  fresh(base: string): string {
    let name = base
    for (let k = 1; this.used.has(name); k++) name = `${base}_${k}`
    this.used.add(name)
    return name
  }
}

function mismatch(what: string): InternalError {
  return new InternalError(`The Q/DQ plan does not fit this model: ${what}`, {
    code: 'QDQ_PLAN_MISMATCH',
    hint: 'planQdq and applyQdq must be given the same model. This is a bug in modelforge.',
  })
}

function activationScale(tensorName: string, range: ActivationRange | undefined): number {
  if (range === undefined) {
    throw new InternalError(`No calibrated range for ${tensorName}, which the Q/DQ plan quantizes`, {
      code: 'QDQ_RANGE_MISSING',
      hint: 'The caller must calibrate every tensor of plan.activations. This is a bug in modelforge.',
    })
  }
  const amax = range.amax
  if (typeof amax !== 'number' || !Number.isFinite(amax) || amax < 0) {
    throw new IntegrityError(`The calibrated range of ${tensorName} is ${String(amax)}: a Q/DQ scale needs a finite bound >= 0`, {
      code: 'QDQ_RANGE_INVALID',
      hint: 'The model produced non-finite values on the calibration data, or the calibration cache is damaged: check the data, and calibrate again without --calib-cache.',
      details: { tensor: tensorName, amax: String(amax) },
    })
  }
  // A tensor that was zero on every batch still needs a positive scale: MIN_SCALE keeps it exactly zero.
  return Math.max(Math.fround(amax / QMAX), MIN_SCALE)
}

/**
 * The model with the plan's Q/DQ pairs: activations QuantizeLinear(x, amax/127, int8 0) -> DequantizeLinear
 * -> consumer, one pair per consumer input; weights as INT8 initializers with per-channel scales behind
 * DequantizeLinear(axis). Float weights nothing reads any more, and the Identity/Transpose/Constant nodes
 * that led to them, are dropped. The input model is not changed; the same inputs give the same bytes.
 */
export function applyQdq(model: ModelProto, plan: QdqPlan, ranges: Readonly<Record<string, ActivationRange>>): ModelProto {
  const graph = model.graph ?? {}
  const ix = indexGraph(graph)
  const names = new Names(graph)
  const newInits: TensorProto[] = []
  const before = new Map<number, NodeProto[]>()
  const rewired = new Map<number, NodeProto>()
  const zero = new Int8Array(1)

  const scaleOf = new Map<string, number>()
  for (const t of plan.activations) scaleOf.set(t, activationScale(t, Object.prototype.hasOwnProperty.call(ranges, t) ? ranges[t] : undefined))

  const locate = (key: string, input: number): { i: number; node: NodeProto; value: string } => {
    const i = ix.byKey.get(key)
    if (i === undefined) throw mismatch(`it names node ${key}, which the graph does not have`)
    const node = rewired.get(i) ?? { ...ix.nodes[i]!, input: [...(ix.nodes[i]!.input ?? [])] }
    rewired.set(i, node)
    const value = ix.nodes[i]!.input?.[input]
    if (!value) throw mismatch(`node ${key} has no input ${input}`)
    return { i, node, value }
  }
  const insert = (i: number, ...nodes: NodeProto[]) => before.set(i, [...(before.get(i) ?? []), ...nodes])

  const actParams = new Map<string, { scale: string; zeroPoint: string }>()
  for (const site of plan.activationInputs) {
    const { i, node, value } = locate(site.node, site.input)
    if (value !== site.tensor) throw mismatch(`input ${site.input} of ${site.node} is ${value}, not ${site.tensor}`)
    const scale = scaleOf.get(value)
    if (scale === undefined) throw mismatch(`${value} is quantized at ${site.node} but is not among plan.activations`)
    let params = actParams.get(value)
    if (!params) {
      params = { scale: names.fresh(`${value}_scale`), zeroPoint: names.fresh(`${value}_zero_point`) }
      newInits.push(tensor(params.scale, [], Float32Array.of(scale)), tensor(params.zeroPoint, [], zero))
      actParams.set(value, params)
    }
    const q = names.fresh(`${value}_QuantizeLinear_Output`)
    const dq = names.fresh(`${value}_DequantizeLinear_Output`)
    insert(i,
      { opType: 'QuantizeLinear', name: names.fresh(`${value}_QuantizeLinear`), input: [value, params.scale, params.zeroPoint], output: [q] },
      { opType: 'DequantizeLinear', name: names.fresh(`${value}_DequantizeLinear`), input: [q, params.scale, params.zeroPoint], output: [dq] },
    )
    node.input![site.input] = dq
  }

  const quantizedWeights = new Map<string, { q: string; scale: string; zeroPoint: string }>()
  const bypassed = new Set<number>()
  const sources = new Set<string>()
  for (const w of plan.weights) {
    const { i, node, value } = locate(w.node, w.input)
    const src = constantSource(ix, value)
    if (!src || src.name !== w.initializer) throw mismatch(`input ${w.input} of ${w.node} does not read the constant ${w.initializer}`)
    let dims = (src.tensor.dims ?? []).map(num)
    const eff = effectiveDims(src)
    if (w.axis < 0 || w.axis >= eff.length || eff[w.axis] !== w.channels) throw mismatch(`weight ${w.initializer} has dims [${eff.join(', ')}], not ${w.channels} channels on axis ${w.axis}`)
    const key = `${src.name}\u0000${JSON.stringify(src.perms)}\u0000${w.axis}`
    let qw = quantizedWeights.get(key)
    if (!qw) {
      let data = floatValues(src.tensor, src.name)
      for (const perm of src.perms) ({ data, dims } = transpose(data, dims, perm ?? dims.map((_, k) => dims.length - 1 - k)))
      const { q, scales } = quantizeWeightPerChannel(data, dims, w.axis, src.name)
      qw = { q: names.fresh(`${src.name}_quantized`), scale: names.fresh(`${src.name}_scale`), zeroPoint: names.fresh(`${src.name}_zero_point`) }
      newInits.push(tensor(qw.q, dims, q), tensor(qw.scale, [w.channels], scales), tensor(qw.zeroPoint, [w.channels], new Int8Array(w.channels)))
      quantizedWeights.set(key, qw)
    }
    const dq = names.fresh(`${src.name}_DequantizeLinear_Output`)
    insert(i, {
      opType: 'DequantizeLinear',
      name: names.fresh(`${src.name}_DequantizeLinear`),
      input: [qw.q, qw.scale, qw.zeroPoint],
      output: [dq],
      attribute: [attribute('axis', w.axis)],
    })
    node.input![w.input] = dq
    for (const v of src.via) bypassed.add(v)
    if (src.via.length === 0 || ix.nodes[src.via[src.via.length - 1]!]!.opType !== 'Constant') sources.add(src.name)
  }

  const nodes: NodeProto[] = []
  ix.nodes.forEach((n, i) => nodes.push(...(before.get(i) ?? []), rewired.get(i) ?? n))
  const kept = dropUnread(graph, nodes, bypassed, sources)
  return {
    ...model,
    graph: {
      ...graph,
      node: kept.nodes,
      initializer: [...(graph.initializer ?? []).filter((t) => !kept.droppedInits.has(t.name ?? '')), ...newInits],
    },
  }
}

/** Every name read by a node input (subgraphs included: they may read outer values) or a graph output. */
function readNames(graph: GraphProto, nodes: readonly NodeProto[]): Set<string> {
  const read = new Set((graph.output ?? []).map((o) => o.name))
  for (const n of nodes) {
    for (const v of n.input ?? []) read.add(v)
    for (const a of n.attribute ?? []) {
      for (const g of [...(a.g ? [a.g] : []), ...(a.graphs ?? [])]) for (const sub of allNodes(g)) for (const v of sub.input ?? []) read.add(v)
    }
  }
  return read
}

/**
 * Drops the bypassed Identity/Transpose/Constant nodes whose outputs nothing reads now (repeatedly: a
 * Transpose dropped can leave its Identity unread), and the float weights no node reads any more.
 */
function dropUnread(graph: GraphProto, nodes: NodeProto[], bypassed: Set<number>, sources: Set<string>): { nodes: NodeProto[]; droppedInits: Set<string> } {
  const original = graph.node ?? []
  const candidates = new Set([...bypassed].map((i) => original[i]!))
  let current = nodes
  for (;;) {
    const read = readNames(graph, current)
    const next = current.filter((n) => !candidates.has(n) || (n.output ?? []).some((o) => read.has(o)))
    if (next.length === current.length) {
      const droppedInits = new Set([...sources].filter((s) => !read.has(s)))
      return { nodes: current, droppedInits }
    }
    current = next
  }
}
