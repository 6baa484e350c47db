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

/**
 * Tensors of the same dtype and trailing dims joined along axis 0 (batches of one run's outputs into one
 * tensor, so that metrics such as cosine and argmax agreement cover every row at once).
 */
export function concatRows(parts: readonly HostTensor[]): HostTensor {
  const first = parts[0]
  if (!first) throw new RangeError('concatRows needs at least one tensor')
  const tail = first.dims.slice(1)
  let rows = 0
  for (const p of parts) {
    if (p.dtype !== first.dtype || p.dims.length !== first.dims.length || p.dims.slice(1).some((d, i) => d !== tail[i])) {
      throw new RangeError(`concatRows: [${p.dims.join(', ')}] ${p.dtype} does not stack on [${first.dims.join(', ')}] ${first.dtype}`)
    }
    rows += p.dims[0] ?? 1
  }
  if (parts.length === 1) return first
  const dims = [rows, ...tail]
  if (first.dtype === 'string') return { dtype: 'string', dims, data: parts.flatMap((p) => p.data as string[]) }
  const data = allocate(first.dtype, elementCount(dims)) as Float32Array
  let at = 0
  for (const p of parts) {
    data.set(p.data as Float32Array, at)
    at += p.data.length
  }
  return { dtype: first.dtype, dims, data }
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

const INTEGER_RANGE: Partial<Record<Dtype, readonly [bigint, bigint]>> = {
  int8: [-128n, 127n], uint8: [0n, 255n], int16: [-32768n, 32767n], uint16: [0n, 65535n],
  int32: [-(2n ** 31n), 2n ** 31n - 1n], uint32: [0n, 2n ** 32n - 1n],
  int64: [-(2n ** 63n), 2n ** 63n - 1n], uint64: [0n, 2n ** 64n - 1n],
}
const FLOAT_MAX: Partial<Record<Dtype, number>> = { float16: 65504, float32: 3.4028234663852886e38, float64: Number.MAX_VALUE }
/** JSON cannot carry NaN/Infinity; reference writers use these strings. */
const NON_FINITE: Record<string, number> = { NaN: NaN, Infinity: Infinity, '-Infinity': -Infinity }

const VALUE_HINT = 'Each value must fit its dtype: a number for floats (or "NaN", "Infinity", "-Infinity"), an integer in range for integer types '
  + '(as a string past 2^53, where JSON numbers lose digits), true/false or 0/1 for bool.'

const show = (v: unknown): string => (typeof v === 'number' || typeof v === 'bigint' ? String(v) : JSON.stringify(v) ?? String(v))

/** Why `v` cannot be an element of `dtype`, or its value (a bigint for integer types, a number otherwise). */
function element(dtype: Dtype, v: unknown): { value: number | bigint } | { problem: string } {
  if (dtype === 'bool') {
    if (v === true || v === 1) return { value: 1 }
    if (v === false || v === 0) return { value: 0 }
    return { problem: `${show(v)} is not a boolean (true, false, 0 or 1)` }
  }
  if (typeof v === 'boolean') return { problem: `${v} is a boolean, not a number (${dtype})` }
  const range = INTEGER_RANGE[dtype]
  if (range) {
    let n: bigint
    if (typeof v === 'bigint') n = v
    else if (typeof v === 'number' && Number.isInteger(v)) n = BigInt(v)
    else if (typeof v === 'string' && /^[+-]?\d+$/.test(v)) n = BigInt(v)
    else if (typeof v === 'number' || typeof v === 'string') return { problem: `${show(v)} is not an integer, which ${dtype} needs` }
    else return { problem: `${show(v)} is not a number` }
    if (n < range[0] || n > range[1]) return { problem: `${n} is outside the range of ${dtype} (${range[0]} to ${range[1]})` }
    // Past 2^53 a JSON number has already lost digits when it is parsed: only a string says which integer it was.
    if (typeof v === 'number' && !Number.isSafeInteger(v)) {
      return { problem: `${show(v)} is beyond 2^53, where a JSON number no longer holds every integer: write it as a string ("${n}")` }
    }
    return { value: n }
  }
  let x: number
  if (typeof v === 'number') x = v
  else if (typeof v === 'string' && v in NON_FINITE) x = NON_FINITE[v]!
  else if (typeof v === 'string') return { problem: `${show(v)} is not a number (only "NaN", "Infinity" and "-Infinity" are read from strings)` }
  else return { problem: `${show(v)} is not a number` }
  const max = FLOAT_MAX[dtype]!
  // Rounded to the dtype, a finite value past its largest would silently become an infinity.
  if (Number.isFinite(x) && !Number.isFinite(dtype === 'float16' ? halfToFloat(floatToHalf(x)) : dtype === 'float32' ? Math.fround(x) : x)) {
    return { problem: `${show(v)} is outside the range of ${dtype} (±${max})` }
  }
  return { value: x }
}

/**
 * Builds a host tensor from plain JSON values (numbers; integer strings for integer types; booleans or 0/1
 * for bool; "NaN"/"Infinity"/"-Infinity" for floats; strings for string). A value its dtype cannot hold
 * exactly is refused (REFERENCE_INVALID) with its place: `where[index]`, index into the flattened data.
 */
export function fromValues(dtype: Dtype, dims: number[], values: readonly unknown[], where = 'tensor'): HostTensor {
  const n = elementCount(dims)
  if (values.length !== n) {
    throw new UsageError(`${where}: ${values.length} values for dims [${dims.join(', ')}] (expected ${n})`, {
      code: 'TENSOR_SHAPE_MISMATCH',
      hint: 'The data array must hold exactly the product of dims elements, in row-major order.',
    })
  }
  const data = allocate(dtype, n)
  if (dtype === 'string') {
    for (let i = 0; i < n; i++) (data as string[])[i] = String(values[i])
    return { dtype, dims, data }
  }
  for (let i = 0; i < n; i++) {
    const e = element(dtype, values[i])
    if ('problem' in e) {
      throw new UsageError(`${where}[${i}]: ${e.problem}`, { code: 'REFERENCE_INVALID', hint: VALUE_HINT, details: { tensor: where, index: i, dtype } })
    }
    if (data instanceof BigInt64Array || data instanceof BigUint64Array) data[i] = e.value as bigint
    else if (dtype === 'float16') (data as Uint16Array)[i] = floatToHalf(e.value as number)
    else (data as Float32Array)[i] = Number(e.value)
  }
  return { dtype, dims, data }
}
