/**
 * ONNX ModelProto / TensorProto encode and decode (protobufjs over the descriptor in schema.ts).
 *
 * int64 fields decode as Long (from protobufjs's `long` dependency) so that values such as INT64_MAX in
 * Slice attributes survive a decode/encode round trip; encoders accept plain numbers too. Use `num()` to
 * read an int64 field as a number.
 */
import protobuf from 'protobufjs'
import type Long from 'long'
import { readFile, writeFile } from 'node:fs/promises'
import { onnxSchema } from './schema.js'
import { errnoCode, IntegrityError, NotFoundError, osFailure } from '../lib/errors.js'

const root = protobuf.Root.fromJSON(onnxSchema)
const ModelType = root.lookupType('onnx.ModelProto')
const TensorType = root.lookupType('onnx.TensorProto')
const GraphType = root.lookupType('onnx.GraphProto')

export type Int64 = number | Long

export const DataType = {
  UNDEFINED: 0, FLOAT: 1, UINT8: 2, INT8: 3, UINT16: 4, INT16: 5, INT32: 6, INT64: 7, STRING: 8, BOOL: 9,
  FLOAT16: 10, DOUBLE: 11, UINT32: 12, UINT64: 13, COMPLEX64: 14, COMPLEX128: 15, BFLOAT16: 16,
  FLOAT8E4M3FN: 17, FLOAT8E4M3FNUZ: 18, FLOAT8E5M2: 19, FLOAT8E5M2FNUZ: 20, UINT4: 21, INT4: 22,
  FLOAT4E2M1: 23, FLOAT8E8M0: 24, UINT2: 25, INT2: 26,
} as const
export type DataTypeValue = (typeof DataType)[keyof typeof DataType]

export const DataTypeName: Record<number, string> = Object.fromEntries(
  Object.entries(DataType).map(([k, v]) => [v, k.toLowerCase()]),
)

/** Bytes per element for fixed-size types; 0 for strings; fractional for sub-byte types. */
export const DataTypeSize: Record<number, number> = {
  1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 8: 0, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 14: 8, 15: 16, 16: 2,
  17: 1, 18: 1, 19: 1, 20: 1, 21: 0.5, 22: 0.5, 23: 0.5, 24: 1, 25: 0.25, 26: 0.25,
}

export const AttributeType = {
  UNDEFINED: 0, FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, GRAPH: 5, FLOATS: 6, INTS: 7, STRINGS: 8, TENSORS: 9,
  GRAPHS: 10, SPARSE_TENSOR: 11, SPARSE_TENSORS: 12, TYPE_PROTO: 13, TYPE_PROTOS: 14,
} as const

export interface StringStringEntryProto { key: string; value: string }
export interface OperatorSetIdProto { domain?: string; version: Int64 }

export interface TensorProto {
  name?: string
  dims?: Int64[]
  dataType?: number
  rawData?: Uint8Array
  floatData?: number[]
  int32Data?: number[]
  int64Data?: Int64[]
  doubleData?: number[]
  uint64Data?: Int64[]
  stringData?: Uint8Array[]
  externalData?: StringStringEntryProto[]
  /** 1 = EXTERNAL */
  dataLocation?: number
  docString?: string
}

export interface AttributeProto {
  name: string
  type?: number
  f?: number
  i?: Int64
  s?: Uint8Array
  t?: TensorProto
  g?: GraphProto
  floats?: number[]
  ints?: Int64[]
  strings?: Uint8Array[]
  tensors?: TensorProto[]
  graphs?: GraphProto[]
  refAttrName?: string
  docString?: string
}

export interface NodeProto {
  input?: string[]
  output?: string[]
  name?: string
  opType: string
  domain?: string
  attribute?: AttributeProto[]
  docString?: string
}

export interface DimensionProto { dimValue?: Int64; dimParam?: string; denotation?: string }
export interface TensorShapeProto { dim?: DimensionProto[] }
export interface TypeProto {
  tensorType?: { elemType?: number; shape?: TensorShapeProto }
  sequenceType?: { elemType?: TypeProto }
  mapType?: { keyType?: number; valueType?: TypeProto }
  optionalType?: { elemType?: TypeProto }
  sparseTensorType?: { elemType?: number; shape?: TensorShapeProto }
  denotation?: string
}
export interface ValueInfoProto { name: string; type?: TypeProto; docString?: string }

export interface GraphProto {
  name?: string
  node?: NodeProto[]
  initializer?: TensorProto[]
  input?: ValueInfoProto[]
  output?: ValueInfoProto[]
  valueInfo?: ValueInfoProto[]
  docString?: string
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  sparseInitializer?: any[]
}

export interface ModelProto {
  irVersion?: Int64
  opsetImport?: OperatorSetIdProto[]
  producerName?: string
  producerVersion?: string
  domain?: string
  modelVersion?: Int64
  docString?: string
  graph?: GraphProto
  metadataProps?: StringStringEntryProto[]
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  functions?: any[]
}

/** An int64 field as a JS number (exact up to 2^53). */
export function num(x: Int64 | undefined | null): number {
  if (x === undefined || x === null) return 0
  return typeof x === 'number' ? x : x.toNumber()
}

export function encodeModel(model: ModelProto): Uint8Array {
  return ModelType.encode(model as unknown as protobuf.Message).finish()
}

export function decodeModel(bytes: Uint8Array, source = 'model'): ModelProto {
  let decoded: ModelProto
  try {
    decoded = ModelType.decode(bytes) as unknown as ModelProto
  } catch (err) {
    throw new IntegrityError(`${source} is not a valid ONNX model: ${(err as Error).message}`, {
      code: 'ONNX_INVALID',
      hint: 'Check that the file is a complete ONNX ModelProto (not truncated, not a different format).',
    })
  }
  if (!decoded.graph) {
    throw new IntegrityError(`${source} is not a valid ONNX model: it has no graph`, {
      code: 'ONNX_INVALID',
      hint: 'Check that the file is an ONNX model and not another protobuf or a truncated download.',
    })
  }
  return decoded
}

/** A GraphProto alone (the streaming model writer appends initializers to it field by field). */
export function encodeGraph(graph: GraphProto): Uint8Array {
  return GraphType.encode(graph as unknown as protobuf.Message).finish()
}

export function encodeTensor(tensor: TensorProto): Uint8Array {
  return TensorType.encode(tensor as unknown as protobuf.Message).finish()
}

export function decodeTensor(bytes: Uint8Array, source = 'tensor'): TensorProto {
  try {
    return TensorType.decode(bytes) as unknown as TensorProto
  } catch (err) {
    throw new IntegrityError(`${source} is not a valid ONNX TensorProto: ${(err as Error).message}`, {
      code: 'TENSOR_INVALID',
      hint: 'Expected a serialized onnx.TensorProto (input_N.pb / output_N.pb).',
    })
  }
}

/** Reads and decodes an ONNX file (external data is left referenced, not loaded). */
export async function readModel(path: string): Promise<ModelProto> {
  let bytes: Buffer
  try {
    bytes = await readFile(path)
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') {
      throw new NotFoundError(`ONNX model ${path} does not exist`, { code: 'ONNX_NOT_FOUND', hint: 'Check the path.' })
    }
    throw osFailure(err, 'reading the ONNX model')
  }
  return decodeModel(bytes, path)
}

export async function writeModel(path: string, model: ModelProto): Promise<number> {
  const bytes = encodeModel(model)
  await writeFile(path, bytes)
  return bytes.byteLength
}
