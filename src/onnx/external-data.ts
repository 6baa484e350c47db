/**
 * ONNX external data: tensors whose bytes live in a side file (protobuf caps a model at 2 GB).
 *
 * A tensor with data_location = EXTERNAL carries external_data entries `location` (a path relative to the
 * model's directory), `offset` and `length`. Readers must take the file name from `location` — exporters
 * name it differently (model.onnx.data, model.onnx_data, model_fp16.onnx_data, weights.pb) — and never
 * guess it; and must refuse locations that leave the model's directory.
 */
import { open } from 'node:fs/promises'
import { isAbsolute, join, normalize, sep } from 'node:path'
import { errnoCode, IntegrityError, NotFoundError } from '../lib/errors.js'
import { DataTypeSize, num, type GraphProto, type ModelProto, type StringStringEntryProto, type TensorProto } from './proto.js'

export const DATA_LOCATION_EXTERNAL = 1

export interface ExternalDataRef {
  tensor: string
  location: string
  offset: number
  /** Bytes; undefined when the entry omits it (then the tensor runs to the size its dims imply). */
  length?: number
}

/** The external_data entries for a tensor stored at `offset` in `location`. */
export function externalEntries(location: string, offset: number, length: number): StringStringEntryProto[] {
  return [
    { key: 'location', value: location },
    { key: 'offset', value: String(offset) },
    { key: 'length', value: String(length) },
  ]
}

function* tensorsOf(graph: GraphProto | undefined): Generator<TensorProto> {
  if (!graph) return
  for (const t of graph.initializer ?? []) yield t
  for (const s of graph.sparseInitializer ?? []) {
    if (s?.values) yield s.values as TensorProto
    if (s?.indices) yield s.indices as TensorProto
  }
  for (const node of graph.node ?? []) {
    for (const a of node.attribute ?? []) {
      if (a.t) yield a.t
      for (const t of a.tensors ?? []) yield t
      if (a.g) yield* tensorsOf(a.g)
      for (const g of a.graphs ?? []) yield* tensorsOf(g)
    }
  }
}

/** Every tensor of the model (initializers, Constant attributes, subgraphs). */
export function allTensors(model: ModelProto): TensorProto[] {
  return [...tensorsOf(model.graph)]
}

/**
 * The rule onnxruntime and onnx.checker apply to a location: a relative path that stays inside the
 * directory of the model naming it. Returns the location normalized, or undefined when it breaks the rule;
 * every reader of locations asks here, so that none can be more lenient than another.
 */
export function locationInModelDir(location: string): string | undefined {
  const norm = normalize(location)
  if (!location || isAbsolute(location) || norm === '..' || norm.startsWith(`..${sep}`) || location.includes('\0')) return undefined
  return norm
}

/** locationInModelDir, or a usage error naming the tensor. */
export function checkLocation(location: string, tensor: string): string {
  const norm = locationInModelDir(location)
  if (norm === undefined) {
    throw new IntegrityError(`Tensor ${tensor} points at external data ${JSON.stringify(location)} outside the model directory`, {
      code: 'EXTERNAL_DATA_INVALID',
      hint: 'External data locations must be file names relative to the model; re-export the model.',
    })
  }
  return norm
}

/** The external data references of a model, as stored in it. */
export function externalDataRefs(model: ModelProto): ExternalDataRef[] {
  const refs: ExternalDataRef[] = []
  for (const t of allTensors(model)) {
    if (t.dataLocation !== DATA_LOCATION_EXTERNAL) continue
    const name = t.name ?? '(unnamed)'
    const entries = new Map((t.externalData ?? []).map((e) => [e.key, e.value]))
    const location = entries.get('location')
    if (location === undefined) {
      throw new IntegrityError(`Tensor ${name} is marked EXTERNAL but has no location entry`, {
        code: 'EXTERNAL_DATA_INVALID',
        hint: 'The model is damaged; re-export it.',
      })
    }
    const offset = Number(entries.get('offset') ?? 0)
    const lengthText = entries.get('length')
    const length = lengthText === undefined ? undefined : Number(lengthText)
    if (!Number.isSafeInteger(offset) || offset < 0 || (length !== undefined && (!Number.isSafeInteger(length) || length < 0))) {
      throw new IntegrityError(`Tensor ${name} has an invalid external data offset/length (${entries.get('offset')}, ${lengthText})`, {
        code: 'EXTERNAL_DATA_INVALID',
        hint: 'The model is damaged; re-export it.',
      })
    }
    refs.push({ tensor: name, location: checkLocation(location, name), offset, length })
  }
  return refs
}

/** The distinct external data files a model needs, relative to its directory. */
export function externalDataFiles(model: ModelProto): string[] {
  return [...new Set(externalDataRefs(model).map((r) => r.location))].sort()
}

function impliedLength(t: TensorProto): number | undefined {
  const size = DataTypeSize[t.dataType ?? 0]
  if (!size) return undefined
  return Math.ceil((t.dims ?? []).reduce<number>((a, d) => a * num(d), 1) * size)
}

/**
 * Reads the bytes of one external tensor from `modelDir`, checking that the range lies inside the file and
 * matches the size its dims imply.
 */
export async function readExternalTensor(tensor: TensorProto, modelDir: string): Promise<Uint8Array> {
  const [ref] = externalDataRefs({ graph: { initializer: [tensor] } })
  if (!ref) throw new IntegrityError(`Tensor ${tensor.name} is not stored externally`, { code: 'EXTERNAL_DATA_INVALID', hint: 'Read raw_data instead.' })
  const implied = impliedLength(tensor)
  const length = ref.length ?? implied
  if (length === undefined) throw new IntegrityError(`Tensor ${ref.tensor}: cannot tell the length of its external data`, { code: 'EXTERNAL_DATA_INVALID', hint: 'Re-export the model with a length entry.' })
  if (implied !== undefined && implied !== length) {
    throw new IntegrityError(`Tensor ${ref.tensor} needs ${implied} bytes but its external data entry says ${length}`, {
      code: 'EXTERNAL_DATA_INVALID',
      hint: 'The model and its data file do not match; re-export the model.',
    })
  }
  const file = join(modelDir, ref.location)
  let fh
  try {
    fh = await open(file, 'r')
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') {
      throw new NotFoundError(`External data file ${ref.location} (for tensor ${ref.tensor}) is missing next to the model`, {
        code: 'EXTERNAL_DATA_MISSING',
        hint: `Copy ${ref.location} into ${modelDir}: the model stores that name and reads it from its own directory.`,
      })
    }
    throw err
  }
  try {
    const { size } = await fh.stat()
    if (ref.offset + length > size) {
      throw new IntegrityError(`Tensor ${ref.tensor} reads bytes ${ref.offset}..${ref.offset + length} of ${ref.location}, which holds ${size}`, {
        code: 'EXTERNAL_DATA_INVALID',
        hint: 'The external data file is truncated or from another export; copy it again.',
      })
    }
    const out = new Uint8Array(length)
    let done = 0
    while (done < length) {
      const { bytesRead } = await fh.read(out, done, Math.min(length - done, 1 << 30), ref.offset + done)
      if (bytesRead === 0) break
      done += bytesRead
    }
    return out
  } finally {
    await fh.close()
  }
}

/** Loads every external tensor of `model` into raw_data (in place), resolving files from `modelDir`. */
export async function inlineExternalData(model: ModelProto, modelDir: string): Promise<ModelProto> {
  for (const t of allTensors(model)) {
    if (t.dataLocation !== DATA_LOCATION_EXTERNAL) continue
    t.rawData = await readExternalTensor(t, modelDir)
    t.dataLocation = 0
    t.externalData = []
  }
  return model
}
