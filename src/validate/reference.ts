/**
 * Reading inputs and expected outputs: ONNX test data directories (test_data_set_N/input_N.pb and
 * output_N.pb, serialized TensorProto) and reference JSON files ({"inputs": {name: {dtype, dims, data}},
 * "outputs": {...}}).
 */
import { readdir, readFile, stat } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { errnoCode, IntegrityError, NotFoundError, UsageError } from '../lib/errors.js'
import { readJsonFile } from '../lib/json.js'
import { DataTypeName, decodeTensor, num, type TensorProto } from '../onnx/proto.js'
import { locationInModelDir } from '../onnx/external-data.js'
import { allocate, dtypeFromOnnx, elementCount, fromValues, parseDtype, type Dtype, type HostTensor, type TensorData, type TensorMap } from './tensors.js'

/** A tensor from a file: its stored name may be empty (then it binds by position). */
export interface FileTensor {
  name?: string
  tensor: HostTensor
}

/** One set of inputs with the outputs expected for them. */
export interface DataSet {
  /** e.g. "test_data_set_0" or the JSON file name. */
  label: string
  inputs: FileTensor[]
  outputs: FileTensor[]
}

/** Decodes a TensorProto into a host tensor; external data is read relative to baseDir. */
export async function tensorFromProto(proto: TensorProto, where: string, baseDir?: string): Promise<HostTensor> {
  const onnxType = proto.dataType ?? 0
  const dtype = dtypeFromOnnx[onnxType]
  if (!dtype) {
    throw new UsageError(`${where}: tensor type ${DataTypeName[onnxType] ?? onnxType} cannot be passed to onnxruntime-node`, {
      code: 'DTYPE_UNSUPPORTED',
      hint: 'onnxruntime-node takes float32/64, float16, (u)int8-64, bool and string tensors from JavaScript.',
    })
  }
  const dims = (proto.dims ?? []).map(num)
  const n = elementCount(dims)
  let raw = proto.rawData && proto.rawData.length > 0 ? proto.rawData : undefined
  if (proto.dataLocation === 1) raw = await readExternal(proto, where, baseDir)
  let data: TensorData
  if (dtype === 'string') {
    data = (proto.stringData ?? []).map((b) => Buffer.from(b).toString('utf8'))
  } else if (raw) {
    data = fromRaw(dtype, raw, n, where)
  } else {
    data = fromTypedFields(dtype, proto, n)
  }
  if (data.length !== n) {
    throw new UsageError(`${where}: ${data.length} elements stored for dims [${dims.join(', ')}] (expected ${n})`, {
      code: 'TENSOR_SHAPE_MISMATCH',
      hint: 'The TensorProto is inconsistent; regenerate it.',
    })
  }
  return { dtype, dims, data }
}

async function readExternal(proto: TensorProto, where: string, baseDir: string | undefined): Promise<Uint8Array> {
  const entries = Object.fromEntries((proto.externalData ?? []).map((e) => [e.key, e.value]))
  const location = entries.location
  if (!location || !baseDir) {
    throw new IntegrityError(`${where}: external data without a location`, { code: 'EXTERNAL_DATA_INVALID', hint: 'The tensor says its data is external but not where.' })
  }
  if (locationInModelDir(location) === undefined) {
    throw new IntegrityError(`${where}: external data location "${location}" leaves the tensor's directory`, {
      code: 'EXTERNAL_DATA_INVALID',
      hint: 'External data must be a relative path next to (or below) the file that references it.',
    })
  }
  const offset = Number(entries.offset ?? 0)
  const bytes = await readFile(join(baseDir, location)).catch((err: unknown) => {
    throw new NotFoundError(`${where}: external data file ${location} cannot be read (${errnoCode(err) ?? String(err)})`, {
      code: 'EXTERNAL_DATA_MISSING',
      hint: `Keep ${location} next to the file that references it.`,
    })
  })
  const length = entries.length !== undefined ? Number(entries.length) : bytes.length - offset
  if (offset + length > bytes.length) {
    throw new IntegrityError(`${where}: external data range ${offset}+${length} exceeds ${location} (${bytes.length} bytes)`, {
      code: 'EXTERNAL_DATA_INVALID',
      hint: 'The data file is truncated or does not belong to this model.',
    })
  }
  return bytes.subarray(offset, offset + length)
}

function fromRaw(dtype: Dtype, raw: Uint8Array, n: number, where: string): TensorData {
  const out = allocate(dtype, n) as Exclude<TensorData, string[]>
  if (raw.byteLength !== out.byteLength) {
    throw new UsageError(`${where}: raw_data holds ${raw.byteLength} bytes, ${dtype} x ${n} needs ${out.byteLength}`, {
      code: 'TENSOR_SHAPE_MISMATCH',
      hint: 'The TensorProto is truncated or its dims are wrong.',
    })
  }
  // raw_data is little-endian, as is every platform onnxruntime-node ships for; copying also aligns it.
  new Uint8Array(out.buffer, out.byteOffset, out.byteLength).set(raw)
  return out
}

function fromTypedFields(dtype: Dtype, proto: TensorProto, n: number): TensorData {
  const out = allocate(dtype, n)
  let src: ArrayLike<unknown>
  switch (dtype) {
    case 'float32': src = proto.floatData ?? []; break
    case 'float64': src = proto.doubleData ?? []; break
    case 'int64': src = proto.int64Data ?? []; break
    case 'uint32': case 'uint64': src = proto.uint64Data ?? []; break
    // int32_data carries int32, int16, int8, uint16, uint8, bool and float16 bit patterns (onnx.proto).
    default: src = proto.int32Data ?? []
  }
  if (src.length !== n) return Array.from(src) as string[]
  for (let i = 0; i < n; i++) {
    const v = src[i] as number | { toString(): string }
    if (out instanceof BigInt64Array || out instanceof BigUint64Array) out[i] = BigInt(typeof v === 'number' ? v : v.toString())
    else (out as Float32Array)[i] = typeof v === 'number' ? v : Number(v.toString())
  }
  return out
}

async function readPb(path: string, baseDir: string): Promise<FileTensor> {
  const bytes = await readFile(path)
  const proto = decodeTensor(bytes, path)
  return { name: proto.name || undefined, tensor: await tensorFromProto(proto, path, baseDir) }
}

function indexOf(file: string, prefix: string): number {
  const m = new RegExp(`^${prefix}_(\\d+)\\.pb$`).exec(file)
  return m ? Number(m[1]) : -1
}

/** One test_data_set_N directory. */
export async function readDataSetDir(dir: string): Promise<DataSet> {
  const files = await readdir(dir)
  const pick = (prefix: string) => files.filter((f) => indexOf(f, prefix) >= 0).sort((a, b) => indexOf(a, prefix) - indexOf(b, prefix))
  const inputs = await Promise.all(pick('input').map((f) => readPb(join(dir, f), dir)))
  const outputs = await Promise.all(pick('output').map((f) => readPb(join(dir, f), dir)))
  if (inputs.length === 0 && outputs.length === 0) {
    throw new UsageError(`${dir} holds no input_N.pb or output_N.pb files`, {
      code: 'REFERENCE_EMPTY',
      hint: 'Point at an ONNX test directory (with test_data_set_N/) or a test_data_set_N directory.',
    })
  }
  return { label: basename(dir), inputs, outputs }
}

/** A test directory (with test_data_set_N subdirectories) or one data set directory. */
export async function readTestDataDir(dir: string): Promise<DataSet[]> {
  const entries = await readdir(dir, { withFileTypes: true })
  const sets = entries.filter((e) => e.isDirectory() && /^test_data_set_\d+$/.test(e.name))
    .map((e) => e.name)
    .sort((a, b) => Number(a.split('_').pop()) - Number(b.split('_').pop()))
  if (sets.length === 0) return [await readDataSetDir(dir)]
  return Promise.all(sets.map((s) => readDataSetDir(join(dir, s))))
}

interface JsonTensor { dtype?: unknown; dims?: unknown; shape?: unknown; data?: unknown }

function tensorFromJson(value: unknown, where: string): HostTensor {
  const v = value as JsonTensor
  if (!v || typeof v !== 'object' || !Array.isArray(v.data)) {
    throw new UsageError(`${where}: expected {"dtype", "dims", "data"}`, {
      code: 'REFERENCE_INVALID',
      hint: 'Each tensor is an object with dtype (e.g. "float32"), dims (array of ints) and data (flat row-major array).',
    })
  }
  const dimsRaw = v.dims ?? v.shape
  const dims: unknown[] = Array.isArray(dimsRaw) ? dimsRaw : [v.data.length]
  if (!dims.every((d): d is number => typeof d === 'number' && Number.isInteger(d) && d >= 0)) {
    throw new UsageError(`${where}: dims must be non-negative integers`, { code: 'REFERENCE_INVALID', hint: 'e.g. "dims": [1, 8].' })
  }
  const dtype = parseDtype(typeof v.dtype === 'string' ? v.dtype : 'float32', where)
  const data = (v.data as unknown[]).flat(Infinity)
  return fromValues(dtype, dims as number[], data, where)
}

export function tensorsFromJson(obj: unknown, where: string): FileTensor[] {
  if (obj === undefined) return []
  if (!obj || typeof obj !== 'object' || Array.isArray(obj)) {
    throw new UsageError(`${where}: expected an object of named tensors`, { code: 'REFERENCE_INVALID', hint: 'Shape: {"name": {"dtype", "dims", "data"}}.' })
  }
  return Object.entries(obj).map(([name, t]) => ({ name, tensor: tensorFromJson(t, `${where}.${name}`) }))
}

/** A reference JSON: {"inputs": {...}, "outputs": {...}}; either may be absent, not both. */
export async function readReferenceJson(path: string): Promise<DataSet> {
  const doc = await readJsonFile(path, {
    onError: (f) => f.kind === 'missing'
      ? new NotFoundError(f.message, { code: 'REFERENCE_NOT_FOUND', hint: 'Check the path.' })
      : new UsageError(f.message, { code: 'REFERENCE_INVALID', hint: 'Expected {"inputs": {...}, "outputs": {...}}.' }),
  })
  const d = doc as { inputs?: unknown; outputs?: unknown }
  if (!d || typeof d !== 'object' || (d.inputs === undefined && d.outputs === undefined)) {
    throw new UsageError(`${path} has neither "inputs" nor "outputs"`, {
      code: 'REFERENCE_INVALID',
      hint: 'Expected {"inputs": {name: {dtype, dims, data}}, "outputs": {name: {dtype, dims, data}}}.',
    })
  }
  return { label: basename(path), inputs: tensorsFromJson(d.inputs, 'inputs'), outputs: tensorsFromJson(d.outputs, 'outputs') }
}

export type ReferenceKind = 'onnx' | 'test-data' | 'json'

/** What a --reference or --inputs path is, by what is there. */
export async function classifyPath(path: string, what: string): Promise<ReferenceKind> {
  let s
  try {
    s = await stat(path)
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') {
      throw new NotFoundError(`${what} ${path} does not exist`, { code: 'REFERENCE_NOT_FOUND', hint: 'Check the path.' })
    }
    throw err
  }
  if (s.isDirectory()) return 'test-data'
  if (/\.json$/i.test(path)) return 'json'
  if (/\.onnx$/i.test(path)) return 'onnx'
  // Neither extension: sniff. JSON starts with '{' (after whitespace); anything else is taken as ONNX.
  const head = (await readFile(path)).subarray(0, 64).toString('utf8').trimStart()
  return head.startsWith('{') ? 'json' : 'onnx'
}

/** Reads --inputs or a data-carrying --reference into data sets. */
export async function readDataSets(path: string, what: string): Promise<DataSet[]> {
  const kind = await classifyPath(path, what)
  if (kind === 'json') return [await readReferenceJson(path)]
  if (kind === 'test-data') return readTestDataDir(path)
  throw new UsageError(`${what} ${path} is an ONNX model, not data`, {
    code: 'REFERENCE_INVALID',
    hint: 'Give a JSON file ({"inputs": ...}) or a directory of input_N.pb files.',
  })
}

/**
 * Binds file tensors to model value names: a stored name must be one of the model's; an empty name binds by
 * position (the ONNX test data convention: input_N.pb is the N-th graph input).
 */
export function bindByName(tensors: readonly FileTensor[], names: readonly string[], what: string): TensorMap {
  const out: TensorMap = {}
  tensors.forEach((t, i) => {
    const name = t.name ?? names[i]
    if (name === undefined || !names.includes(name)) {
      throw new UsageError(`${what} ${t.name ? `"${t.name}"` : `#${i}`} is not one of the model's (${names.join(', ') || 'none'})`, {
        code: 'REFERENCE_MISMATCH',
        hint: 'The reference was made for a different model, or names a tensor the model does not have.',
      })
    }
    if (out[name]) {
      throw new UsageError(`${what} "${name}" is given twice`, { code: 'REFERENCE_MISMATCH', hint: 'Each tensor may appear once.' })
    }
    out[name] = t.tensor
  })
  return out
}
