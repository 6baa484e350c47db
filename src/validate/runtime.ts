/**
 * onnxruntime-node sessions: load a model (path or bytes) with errors that say what is wrong, read its input
 * and output metadata, run it on host tensors and hand back plain typed arrays.
 */
import { stat } from 'node:fs/promises'
import ort from 'onnxruntime-node'
import { errnoCode, IntegrityError, NotFoundError, UsageError } from '../lib/errors.js'
import { elementCount, isDtype, type Dtype, type HostTensor, type TensorMap } from './tensors.js'

export interface ValueInfo {
  name: string
  /** onnxruntime's type name ('float32', 'int64', ...), or 'non-tensor' for sequences, maps, optionals. */
  dtype: string
  /** Numbers for fixed dims, strings for symbolic ones; empty when the model declares no shape. */
  shape: (number | string)[]
  isTensor: boolean
}

export interface LoadedModel {
  /** The path, or a label for models given as bytes. */
  source: string
  session: ort.InferenceSession
  inputs: ValueInfo[]
  outputs: ValueInfo[]
}

export interface LoadOptions {
  /** Label used in messages for a model given as bytes. */
  label?: string
  /** Session options passed through (graph optimisation level, threads). */
  sessionOptions?: ort.InferenceSession.SessionOptions
}

// onnxruntime's load failures arrive as plain Errors whose text is all we have; these patterns map them to
// our exit codes. Anything unmatched is still reported as an invalid model, with onnxruntime's own words.
const UNSUPPORTED = /NOT_IMPLEMENTED|No Op registered for|Unsupported data type|Failed to find kernel|Could not find an implementation|is not a registered function\/op|opset .* is under development|Unsupported model IR version|is not supported|ONNX Runtime only \*guarantees\* support/i

export async function loadModel(model: string | Uint8Array, options: LoadOptions = {}): Promise<LoadedModel> {
  const source = typeof model === 'string' ? model : (options.label ?? 'model bytes')
  if (typeof model === 'string') {
    try {
      const s = await stat(model)
      if (!s.isFile()) {
        throw new UsageError(`${model} is not a file`, { code: 'ONNX_NOT_FILE', hint: 'Give the path of a .onnx file.' })
      }
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') {
        throw new NotFoundError(`ONNX model ${model} does not exist`, { code: 'ONNX_NOT_FOUND', hint: 'Check the path.' })
      }
      throw err
    }
  }
  let session: ort.InferenceSession
  // onnxruntime logs its own errors to stderr; ours carry the same text, so keep its log to fatal only.
  const sessionOptions: ort.InferenceSession.SessionOptions = { logSeverityLevel: 4, ...options.sessionOptions }
  try {
    session = typeof model === 'string'
      ? await ort.InferenceSession.create(model, sessionOptions)
      : await ort.InferenceSession.create(model, sessionOptions)
  } catch (err) {
    throw loadError(source, err)
  }
  return {
    source,
    session,
    inputs: session.inputMetadata.map(toValueInfo),
    outputs: session.outputMetadata.map(toValueInfo),
  }
}

function loadError(source: string, err: unknown): IntegrityError {
  const raw = err instanceof Error ? err.message : String(err)
  // onnxruntime repeats the path; keep the message short and the original in details.
  const message = raw.replace(/^Load model from .*? failed:\s*/, '').trim()
  if (UNSUPPORTED.test(message)) {
    return new IntegrityError(`onnxruntime cannot run ${source}: ${message}`, {
      code: 'ONNX_UNSUPPORTED',
      hint: 'The model uses an operator, type or opset this onnxruntime-node build does not support; '
        + `re-export it with a lower opset (export --opset 17); the runtime is onnxruntime-node ${ort.env.versions.node}.`,
      details: { onnxruntime: raw },
    })
  }
  return new IntegrityError(`${source} is not a loadable ONNX model: ${message}`, {
    code: 'ONNX_INVALID',
    hint: 'The file is truncated, not ONNX, or its graph is inconsistent (run `modelforge inspect` on it); '
      + 'if it uses external data, keep the data files next to it under the names recorded in the model.',
    details: { onnxruntime: raw },
  })
}

function toValueInfo(m: ort.InferenceSession.ValueMetadata): ValueInfo {
  if (!m.isTensor) return { name: m.name, dtype: 'non-tensor', shape: [], isTensor: false }
  return { name: m.name, dtype: m.type, shape: [...m.shape], isTensor: true }
}

export async function closeModel(model: LoadedModel): Promise<void> {
  await model.session.release()
}

/** Loads, calls fn, and releases the session whatever happens. */
export async function withModel<T>(model: string | Uint8Array, fn: (m: LoadedModel) => Promise<T>, options?: LoadOptions): Promise<T> {
  const loaded = await loadModel(model, options)
  try {
    return await fn(loaded)
  } finally {
    await closeModel(loaded)
  }
}

/**
 * Runs the model. Inputs are checked against the metadata first (missing names, wrong dtypes, wrong ranks
 * or fixed dims) so the message names the input instead of quoting onnxruntime. Returns every output (or
 * those named) as host tensors.
 */
export async function runModel(model: LoadedModel, inputs: TensorMap, outputNames?: string[]): Promise<TensorMap> {
  const feeds: Record<string, ort.Tensor> = {}
  for (const info of model.inputs) {
    const t = inputs[info.name]
    if (!t) {
      throw new UsageError(`${model.source} needs input "${info.name}" (${describeValue(info)}), which was not given`, {
        code: 'INPUT_MISSING',
        hint: `Inputs given: ${Object.keys(inputs).join(', ') || 'none'}. Provide every model input (--inputs) or let validate generate them.`,
      })
    }
    checkInput(model.source, info, t)
    feeds[info.name] = toOrt(t)
  }
  // Each name once: onnxruntime hands a repeated fetch back as one tensor, which would be read after release.
  const fetches = [...new Set(outputNames ?? model.outputs.map((o) => o.name))]
  for (const name of fetches) {
    if (!model.outputs.some((o) => o.name === name)) {
      throw new UsageError(`${model.source} has no output "${name}"`, {
        code: 'OUTPUT_UNKNOWN',
        hint: `Its outputs are: ${model.outputs.map((o) => o.name).join(', ')}.`,
      })
    }
  }
  for (const name of fetches) {
    const info = model.outputs.find((o) => o.name === name)!
    // onnxruntime-node 1.30 aborts the whole process (out of memory in OrtValueToNapiValue) when it hands
    // back an int4/uint4 tensor, so anything the host side cannot hold is refused before running.
    if (info.isTensor && !isDtype(info.dtype)) {
      for (const f of Object.values(feeds)) f.dispose()
      throw new IntegrityError(`onnxruntime-node cannot return output "${name}" of ${model.source}: its type ${info.dtype} has no JavaScript representation`, {
        code: 'ONNX_UNSUPPORTED',
        hint: 'Compare other outputs (--output), or cast this one to a supported type (float32, int8, uint8, ...) in the model.',
      })
    }
  }
  let results: ort.InferenceSession.OnnxValueMapType
  try {
    results = await model.session.run(feeds, fetches)
  } catch (err) {
    const raw = err instanceof Error ? err.message : String(err)
    throw new IntegrityError(`onnxruntime failed to run ${model.source}: ${raw}`, {
      code: 'ONNX_RUN_FAILED',
      hint: 'The inputs match the declared metadata, so the graph itself failed (a shape mismatch inside, an index out of range such as a token id beyond the vocabulary). Check the input values (--vocab-size, --inputs).',
      details: { onnxruntime: raw },
    })
  } finally {
    for (const f of Object.values(feeds)) f.dispose()
  }
  const out: TensorMap = {}
  for (const name of fetches) {
    const v = results[name] as ort.Tensor | undefined
    if (!v || !(v instanceof ort.Tensor)) {
      throw new UsageError(`${model.source} output "${name}" is not a tensor`, {
        code: 'OUTPUT_NOT_TENSOR',
        hint: 'Only tensor outputs can be compared; sequence and map outputs are not supported.',
      })
    }
    out[name] = fromOrt(v, `${model.source} output ${name}`)
  }
  return out
}

function describeValue(info: ValueInfo): string {
  return `${info.dtype} [${info.shape.join(', ')}]`
}

function checkInput(source: string, info: ValueInfo, t: HostTensor): void {
  if (!info.isTensor) return
  if (!isDtype(info.dtype)) {
    throw new IntegrityError(`input "${info.name}" of ${source} has type ${info.dtype}, which onnxruntime-node cannot take from JavaScript`, {
      code: 'ONNX_UNSUPPORTED',
      hint: 'onnxruntime-node accepts float32/64, float16, (u)int8-64, bool and string tensors.',
    })
  }
  if (info.dtype !== t.dtype) {
    throw new UsageError(`input "${info.name}" of ${source} is ${info.dtype}, but ${t.dtype} data was given`, {
      code: 'INPUT_DTYPE_MISMATCH',
      hint: 'Give the input in the dtype the model declares (see `modelforge inspect`).',
    })
  }
  if (info.shape.length === 0) return
  const fixedMismatch = info.shape.length !== t.dims.length
    || info.shape.some((d, i) => typeof d === 'number' && d >= 0 && d !== t.dims[i])
  if (fixedMismatch) {
    throw new UsageError(`input "${info.name}" of ${source} has shape [${info.shape.join(', ')}], but dims [${t.dims.join(', ')}] were given`, {
      code: 'INPUT_SHAPE_MISMATCH',
      hint: 'Fixed dimensions must match exactly; only symbolic ones (names) may vary.',
    })
  }
}

function toOrt(t: HostTensor): ort.Tensor {
  if (elementCount(t.dims) !== t.data.length) {
    throw new UsageError(`tensor data holds ${t.data.length} elements but dims [${t.dims.join(', ')}] need ${elementCount(t.dims)}`, {
      code: 'TENSOR_SHAPE_MISMATCH',
      hint: 'Check the dims of the given input.',
    })
  }
  if (t.dtype === 'bool') return new ort.Tensor('bool', t.data as Uint8Array, t.dims)
  // onnxruntime-node's Tensor constructor is overloaded per type; the union is checked above.
  return new ort.Tensor(t.dtype as 'float32', t.data as Float32Array, t.dims)
}

function fromOrt(v: ort.Tensor, where: string): HostTensor {
  const type = v.type as string
  if (!isDtype(type)) {
    throw new UsageError(`${where} has dtype ${type}, which modelforge cannot compare`, {
      code: 'DTYPE_UNSUPPORTED',
      hint: 'Supported dtypes: float32, float64, float16, (u)int8-64, bool, string.',
    })
  }
  const dtype: Dtype = type
  const dims = v.dims.map(Number)
  const data = v.data
  // Copies: the tensor's memory is released by dispose() below.
  let copy: HostTensor['data'] = Array.isArray(data) ? [...(data as string[])] : (data as Float32Array).slice()
  // float16 may come back as Float16Array on runtimes that have it; keep the bit pattern representation.
  if (dtype === 'float16' && !(copy instanceof Uint16Array)) {
    const src = copy as unknown as { buffer: ArrayBuffer; byteOffset: number; length: number }
    copy = new Uint16Array(src.buffer, src.byteOffset, src.length)
  }
  v.dispose()
  return { dtype, dims, data: copy }
}
