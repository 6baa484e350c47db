/**
 * What TensorRT's ONNX parser sees in a model: the network inputs and outputs (initializers are not
 * inputs), the nodes in order, the operators no importer handles, whether Q/DQ nodes make it an explicitly
 * quantized network, and how many bytes of weights it carries (which sizes the engine).
 */
import { readFileSync, statSync } from 'node:fs'
import { createHash } from 'node:crypto'
import { DataType, DataTypeSize, decodeModel, num, type GraphProto, type ModelProto, type NodeProto, type TensorProto, type ValueInfoProto } from '../../../src/onnx/proto.js'

export interface Tensor {
  name: string
  /** ONNX TensorProto.DataType */
  elemType: number
  /** -1 for a dynamic (symbolic or unknown) dimension. */
  dims: number[]
}

export interface OnnxModel {
  path: string
  sha256: string
  proto: ModelProto
  inputs: Tensor[]
  outputs: Tensor[]
  nodes: NodeProto[]
  weightBytes: number
  /** The part of weightBytes held in float32 (what a half-precision build halves). */
  floatWeightBytes: number
  /** Initializers of type INT64 (which 8.x narrows to INT32, with a warning). */
  int64Weights: boolean
  /** ONNX QuantizeLinear/DequantizeLinear nodes: TensorRT builds it as an explicitly quantized network. */
  qdq: boolean
  /** Any float16 input, output or initializer: the model's own types ask for half precision. */
  fp16Typed: boolean
}

/**
 * Operators of the default domain that TensorRT's ONNX parser has no importer for (onnx-tensorrt's operator
 * support matrix marks them N). Nodes of any other domain are looked up as plugins, as TensorRT does with every
 * op type it has no importer for, and no plugin of that name is registered here.
 */
export const UNSUPPORTED_OPS = new Set([
  'Compress', 'ConcatFromSequence', 'ConvInteger', 'Det', 'DynamicQuantizeLinear', 'MatMulInteger', 'MaxRoiPool',
  'Multinomial', 'NegativeLogLikelihoodLoss', 'QLinearConv', 'QLinearMatMul', 'SequenceAt', 'SequenceConstruct',
  'SequenceEmpty', 'SequenceErase', 'SequenceInsert', 'SequenceLength', 'SoftmaxCrossEntropyLoss', 'SplitToSequence',
  'StringNormalizer', 'TfIdfVectorizer', 'Unique',
])

function tensorOf(v: ValueInfoProto): Tensor {
  const t = v.type?.tensorType
  const dims = (t?.shape?.dim ?? []).map((d) => (d.dimValue !== undefined && d.dimValue !== null && !d.dimParam ? num(d.dimValue) : -1))
  return { name: v.name, elemType: t?.elemType ?? DataType.FLOAT, dims }
}

function tensorBytes(t: TensorProto): number {
  if (t.rawData?.length) return t.rawData.length
  if (t.dataLocation === 1) {
    const len = (t.externalData ?? []).find((e) => e.key === 'length')
    if (len) return Number(len.value)
  }
  const n = (t.dims ?? []).reduce<number>((a, d) => a * num(d), 1)
  return Math.ceil(n * (DataTypeSize[t.dataType ?? 0] ?? 0))
}

export function isDefaultDomain(domain: string | undefined): boolean {
  return !domain || domain === 'ai.onnx'
}

/** The first node the parser cannot import (nested graphs included), with the index of its top-level node. */
export function firstUnsupported(model: OnnxModel): { index: number; node: NodeProto } | undefined {
  const bad = (n: NodeProto) => !isDefaultDomain(n.domain) || UNSUPPORTED_OPS.has(n.opType)
  const inside = (g: GraphProto | undefined): NodeProto | undefined => {
    for (const n of g?.node ?? []) {
      if (bad(n)) return n
      for (const a of n.attribute ?? []) {
        const found = inside(a.g) ?? (a.graphs ?? []).map(inside).find(Boolean)
        if (found) return found
      }
    }
    return undefined
  }
  for (const [index, n] of model.nodes.entries()) {
    if (bad(n)) return { index, node: n }
    for (const a of n.attribute ?? []) {
      const found = inside(a.g) ?? (a.graphs ?? []).map(inside).find(Boolean)
      if (found) return { index, node: found }
    }
  }
  return undefined
}

/** Reads the model; a missing or unreadable file throws the errno error for the caller's failure chain. */
export function readOnnx(path: string): OnnxModel {
  const st = statSync(path)
  if (!st.isFile()) throw Object.assign(new Error('not a regular file'), { code: 'ENOTFILE' })
  const bytes = readFileSync(path)
  const proto = decodeModel(bytes, path)
  const graph = proto.graph!
  const inits = new Set((graph.initializer ?? []).map((t) => t.name))
  const inputs = (graph.input ?? []).filter((v) => !inits.has(v.name)).map(tensorOf)
  const outputs = (graph.output ?? []).map(tensorOf)
  const nodes = graph.node ?? []
  const weights = [...(graph.initializer ?? []), ...nodes.filter((n) => n.opType === 'Constant').flatMap((n) => (n.attribute ?? []).flatMap((a) => (a.t ? [a.t] : [])))]
  const weightBytes = weights.reduce((a, t) => a + tensorBytes(t), 0)
  const floatWeightBytes = weights.filter((t) => t.dataType === DataType.FLOAT).reduce((a, t) => a + tensorBytes(t), 0)
  const int64Weights = weights.some((t) => t.dataType === DataType.INT64)
  const qdq = nodes.some((n) => isDefaultDomain(n.domain) && (n.opType === 'QuantizeLinear' || n.opType === 'DequantizeLinear'))
  const fp16Typed = [...inputs, ...outputs].some((t) => t.elemType === DataType.FLOAT16)
    || (graph.initializer ?? []).some((t) => t.dataType === DataType.FLOAT16)
  return {
    path, sha256: createHash('sha256').update(bytes).digest('hex'), proto, inputs, outputs, nodes, weightBytes, floatWeightBytes, int64Weights, qdq, fp16Typed,
  }
}

/** A node as protobuf text format, which is how the parser quotes a node it failed on. */
export function nodeText(n: NodeProto): string {
  const q = (s: string) => JSON.stringify(s)
  const lines: string[] = []
  for (const i of n.input ?? []) lines.push(`input: ${q(i)}`)
  for (const o of n.output ?? []) lines.push(`output: ${q(o)}`)
  if (n.name) lines.push(`name: ${q(n.name)}`)
  lines.push(`op_type: ${q(n.opType)}`)
  for (const a of n.attribute ?? []) {
    lines.push('attribute {', `  name: ${q(a.name)}`)
    if (a.f !== undefined && a.f !== null && a.type === 1) lines.push(`  f: ${a.f}`)
    if (a.i !== undefined && a.i !== null && a.type === 2) lines.push(`  i: ${num(a.i)}`)
    if (a.s?.length) lines.push(`  s: ${q(Buffer.from(a.s).toString('utf8'))}`)
    for (const x of a.ints ?? []) lines.push(`  ints: ${num(x)}`)
    for (const x of a.floats ?? []) lines.push(`  floats: ${x}`)
    const types = ['UNDEFINED', 'FLOAT', 'INT', 'STRING', 'TENSOR', 'GRAPH', 'FLOATS', 'INTS', 'STRINGS', 'TENSORS', 'GRAPHS']
    lines.push(`  type: ${types[a.type ?? 0] ?? 'UNDEFINED'}`, '}')
  }
  if (n.domain) lines.push(`domain: ${q(n.domain)}`)
  return lines.join('\n')
}

/** TensorRT's name for the type of a binding (what `and type fp32 is created` prints). */
export function bindingTypeName(elemType: number): string {
  switch (elemType) {
    case DataType.FLOAT: return 'fp32'
    case DataType.FLOAT16: return 'fp16'
    case DataType.BFLOAT16: return 'bf16'
    case DataType.INT8: return 'int8'
    case DataType.UINT8: return 'uint8'
    case DataType.INT32: return 'int32'
    case DataType.INT64: return 'int64'
    case DataType.BOOL: return 'bool'
    case DataType.DOUBLE: return 'fp32'
    default: return 'fp32'
  }
}

/**
 * The type TensorRT gives an I/O tensor of this ONNX type: 8.x has no INT64 and narrows it to INT32, and no
 * version has doubles.
 */
export function engineType(elemType: number, major: number): number {
  if (elemType === DataType.DOUBLE) return DataType.FLOAT
  if (elemType === DataType.INT64 && major < 10) return DataType.INT32
  if (elemType === DataType.INT16 || elemType === DataType.UINT16 || elemType === DataType.UINT32) return DataType.INT32
  if (elemType === DataType.UINT64) return major < 10 ? DataType.INT32 : DataType.INT64
  return elemType
}

export function elementSize(elemType: number): number {
  return DataTypeSize[elemType] ?? 4
}
