/**
 * Host tensors: a dtype name (onnxruntime's names), dims and a typed array, plus the conversions between
 * ONNX TensorProto data types, JSON arrays and onnxruntime tensors.
 */
import { DataType } from '../onnx/proto.js'
import { floatToHalf, halfToFloat } from '../onnx/float16.js'
import { UsageError } from '../lib/errors.js'

/** onnxruntime-node's tensor type names (the ones this module can hold on the host). */
export type Dtype =
  | 'float32' | 'float64' | 'float16'
  | 'int8' | 'uint8' | 'int16' | 'uint16' | 'int32' | 'uint32' | 'int64' | 'uint64'
  | 'bool' | 'string'

export type TensorData =
  | Float32Array | Float64Array | Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array
  | BigInt64Array | BigUint64Array | string[]

/**
 * A tensor on the host. float16 data is a Uint16Array of IEEE half bits (Node 20 has no Float16Array);
 * bool data is a Uint8Array of 0/1.
 */
export interface HostTensor {
  dtype: Dtype
  dims: number[]
  data: TensorData
}

export type TensorMap = Record<string, HostTensor>

export const DTYPES: readonly Dtype[] = [
  'float32', 'float64', 'float16', 'int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64',
  'bool', 'string',
]

/** ONNX TensorProto.DataType -> host dtype (undefined where onnxruntime-node cannot take it from JS). */
export const dtypeFromOnnx: Record<number, Dtype | undefined> = {
  [DataType.FLOAT]: 'float32',
  [DataType.DOUBLE]: 'float64',
  [DataType.FLOAT16]: 'float16',
  [DataType.INT8]: 'int8',
  [DataType.UINT8]: 'uint8',
  [DataType.INT16]: 'int16',
  [DataType.UINT16]: 'uint16',
  [DataType.INT32]: 'int32',
  [DataType.UINT32]: 'uint32',
  [DataType.INT64]: 'int64',
  [DataType.UINT64]: 'uint64',
  [DataType.BOOL]: 'bool',
  [DataType.STRING]: 'string',
}

export function isDtype(x: string): x is Dtype {
  return (DTYPES as readonly string[]).includes(x)
}

/** Accepts onnxruntime names and the common aliases (numpy/torch spellings) used in reference files. */
export function parseDtype(name: string, where = 'dtype'): Dtype {
  const aliases: Record<string, Dtype> = {
    float: 'float32', double: 'float64', half: 'float16', long: 'int64', int: 'int32', boolean: 'bool',
    str: 'string', 'torch.float32': 'float32', 'torch.int64': 'int64', 'torch.float16': 'float16',
  }
  const d = aliases[name] ?? name
  if (!isDtype(d)) {
    throw new UsageError(`${where}: unsupported dtype "${name}"`, {
      code: 'DTYPE_UNSUPPORTED',
      hint: `Use one of: ${DTYPES.join(', ')}.`,
    })
  }
  return d
}

export function elementCount(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1)
}

/** A zero-filled array of the dtype's storage type. */
export function allocate(dtype: Dtype, n: number): TensorData {
  switch (dtype) {
    case 'float32': return new Float32Array(n)
    case 'float64': return new Float64Array(n)
    case 'float16': return new Uint16Array(n)
    case 'int8': return new Int8Array(n)
    case 'uint8': case 'bool': return new Uint8Array(n)
    case 'int16': return new Int16Array(n)
    case 'uint16': return new Uint16Array(n)
    case 'int32': return new Int32Array(n)
    case 'uint32': return new Uint32Array(n)
    case 'int64': return new BigInt64Array(n)
    case 'uint64': return new BigUint64Array(n)
    case 'string': return new Array<string>(n).fill('')
  }
}

/** Element i as a JS number (int64 beyond 2^53 loses precision, which metrics tolerate). */
export function valueAt(t: HostTensor, i: number): number {
  const v = t.data[i]
  if (t.dtype === 'float16') return halfToFloat(v as number)
  if (typeof v === 'bigint') return Number(v)
  if (typeof v === 'string') return NaN
  return v as number
}

/** The whole tensor as float64, for metrics. Strings are not numeric: callers compare them separately. */
export function toFloat64(t: HostTensor): Float64Array {
  if (t.data instanceof Float64Array) return t.data
  const n = t.data.length
  const out = new Float64Array(n)
  for (let i = 0; i < n; i++) out[i] = valueAt(t, i)
  return out
}

/** Builds a host tensor from plain JSON values (numbers, numeric strings for int64, booleans, strings). */
export function fromValues(dtype: Dtype, dims: number[], values: readonly unknown[], where = 'tensor'): HostTensor {
  const n = elementCount(dims)
  if (values.length !== n) {
    throw new UsageError(`${where}: ${values.length} values for dims [${dims.join(', ')}] (expected ${n})`, {
      code: 'TENSOR_SHAPE_MISMATCH',
      hint: 'The data array must hold exactly the product of dims elements, in row-major order.',
    })
  }
  const data = allocate(dtype, n)
  for (let i = 0; i < n; i++) {
    const v = values[i]
    if (dtype === 'string') (data as string[])[i] = String(v)
    else if (dtype === 'int64' || dtype === 'uint64') {
      (data as BigInt64Array)[i] = typeof v === 'bigint' ? v : BigInt(typeof v === 'boolean' ? Number(v) : (v as number | string))
    } else if (dtype === 'float16') (data as Uint16Array)[i] = floatToHalf(jsonNumber(v))
    else if (dtype === 'bool') (data as Uint8Array)[i] = v ? 1 : 0
    else (data as Float32Array)[i] = jsonNumber(v)
  }
  return { dtype, dims, data }
}

/** JSON cannot carry NaN/Infinity; reference writers use the strings "NaN", "Infinity", "-Infinity". */
function jsonNumber(v: unknown): number {
  if (typeof v === 'number') return v
  if (typeof v === 'boolean') return Number(v)
  if (typeof v === 'string') return Number(v)
  return NaN
}
