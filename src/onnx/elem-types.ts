/**
 * The element type of every value of a graph, as far as the graph itself tells: graph inputs and outputs,
 * value_info, initializers, Constant values, and a forward pass over the nodes with the type rules of the
 * standard ops (most ops give their first input's type; the table below lists the others). This is a small
 * part of what onnx's shape inference does; the fp16 transform needs only "is this value float32", and
 * onnxruntime's own inference (validate/intermediates valueTypes) is preferred when the caller has it.
 */
import { DataType, num, type AttributeProto, type GraphProto, type NodeProto } from './proto.js'

/** A value that is a sequence, map or optional rather than a tensor. */
export const NON_TENSOR = -1

const attr = (node: NodeProto, name: string): AttributeProto | undefined => (node.attribute ?? []).find((a) => a.name === name)
const intAttr = (node: NodeProto, name: string): number | undefined => {
  const a = attr(node, name)
  return a?.i === undefined || a.i === null ? undefined : num(a.i)
}

/** onnxruntime's dtype names ('float32', 'int64', 'non-tensor', ...) -> ONNX element types. */
export function elemTypeFromOrt(dtype: string): number | undefined {
  if (dtype === 'non-tensor') return NON_TENSOR
  const aliases: Record<string, number> = { float32: DataType.FLOAT, float64: DataType.DOUBLE, float16: DataType.FLOAT16 }
  if (dtype in aliases) return aliases[dtype]
  const key = dtype.toUpperCase() as keyof typeof DataType
  return key in DataType ? DataType[key] : undefined
}

/** The type of a Constant node's output, from whichever value attribute it carries. */
export function constantType(node: NodeProto): number | undefined {
  for (const a of node.attribute ?? []) {
    if (a.name === 'value' && a.t) return a.t.dataType
    if (a.name === 'sparse_value') return undefined
    if (a.name === 'value_float' || a.name === 'value_floats') return DataType.FLOAT
    if (a.name === 'value_int' || a.name === 'value_ints') return DataType.INT64
    if (a.name === 'value_string' || a.name === 'value_strings') return DataType.STRING
  }
  return undefined
}

const BOOL_OPS = new Set(['Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual', 'And', 'Or', 'Xor', 'Not', 'IsNaN', 'IsInf'])
const INT64_OPS = new Set(['Shape', 'Size', 'NonZero', 'ArgMax', 'ArgMin', 'NonMaxSuppression'])

/** Output types of one node of the default domain, from its input types; undefined where unknown. */
function outputTypes(node: NodeProto, inputType: (i: number) => number | undefined): (number | undefined)[] {
  const n = node.output?.length ?? 0
  const first = (): number | undefined => {
    for (let i = 0; i < (node.input?.length ?? 0); i++) if (node.input![i]) return inputType(i)
    return undefined
  }
  const all = (t: number | undefined): (number | undefined)[] => Array.from({ length: n }, () => t)
  const op = node.opType
  if (op === 'Constant') return [constantType(node)]
  if (op === 'Cast') return [intAttr(node, 'to')]
  if (op === 'CastLike') return [inputType(1)]
  if (BOOL_OPS.has(op)) return all(DataType.BOOL)
  if (INT64_OPS.has(op)) return all(DataType.INT64)
  if (op === 'ConstantOfShape') return [attr(node, 'value')?.t?.dataType ?? DataType.FLOAT]
  if (op === 'RandomNormal' || op === 'RandomUniform') return [intAttr(node, 'dtype') ?? DataType.FLOAT]
  if (op === 'EyeLike' || op === 'RandomNormalLike' || op === 'RandomUniformLike' || op === 'Bernoulli') return [intAttr(node, 'dtype') ?? first()]
  if (op === 'Multinomial') return [intAttr(node, 'dtype') ?? DataType.INT32]
  if (op === 'Where') return [inputType(1)]
  if (op === 'OneHot') return [inputType(2)]
  if (op === 'TopK') return [first(), DataType.INT64]
  if (op === 'MaxPool') return [first(), DataType.INT64]
  if (op === 'Unique') return [first(), DataType.INT64, DataType.INT64, DataType.INT64]
  if (op === 'LayerNormalization') return [first(), DataType.FLOAT, DataType.FLOAT]
  if (op === 'QuantizeLinear') return [intAttr(node, 'output_dtype') || inputType(2) || DataType.UINT8]
  if (op === 'DequantizeLinear') return [inputType(1)]
  if (op === 'DynamicQuantizeLinear') return [DataType.UINT8, DataType.FLOAT, DataType.UINT8]
  if (op === 'MatMulInteger' || op === 'ConvInteger') return [DataType.INT32]
  if (op === 'QLinearMatMul' || op === 'QLinearConv') return [inputType(7)]
  if (op === 'If' || op === 'Loop' || op === 'Scan') {
    const body = attr(node, op === 'If' ? 'then_branch' : 'body')?.g
    const declared = (body?.output ?? []).map((o) => o.type?.tensorType?.elemType)
    // Loop's and Scan's bodies declare the condition (Loop) or nothing extra first; outputs line up at the end.
    const skip = op === 'Loop' ? 1 : 0
    return Array.from({ length: n }, (_, i) => declared[i + skip])
  }
  if (op.startsWith('Sequence') || op === 'SplitToSequence' || op.startsWith('Optional')) {
    if (op === 'SequenceAt' || op === 'OptionalGetElement') return [undefined]
    if (op === 'SequenceLength') return [DataType.INT64]
    if (op === 'OptionalHasElement') return [DataType.BOOL]
    return all(NON_TENSOR)
  }
  if (op === 'ConcatFromSequence') return [undefined]
  return all(first())
}

/**
 * Element types by value name. `given` (onnxruntime's inference) wins over the graph's declarations, which
 * win over the rules; values no source can type are absent.
 */
export function elementTypes(graph: GraphProto, given?: ReadonlyMap<string, number>): Map<string, number> {
  const types = new Map<string, number>()
  const declare = (name: string, t: number | undefined): void => {
    if (!name || t === undefined || t === 0 || types.has(name)) return
    types.set(name, t)
  }
  for (const [name, t] of given ?? []) declare(name, t)
  for (const v of [...(graph.input ?? []), ...(graph.output ?? []), ...(graph.valueInfo ?? [])]) {
    declare(v.name, v.type?.tensorType ? v.type.tensorType.elemType : v.type ? NON_TENSOR : undefined)
  }
  for (const t of graph.initializer ?? []) declare(t.name ?? '', t.dataType)
  for (const node of graph.node ?? []) {
    const isDefault = !node.domain || node.domain === 'ai.onnx'
    if (!isDefault) continue
    const outs = outputTypes(node, (i) => types.get(node.input?.[i] ?? ''))
    ;(node.output ?? []).forEach((o, i) => declare(o, outs[i]))
  }
  return types
}
