/**
 * Deterministic input generation from a model's input metadata, shaped like what a transformer sees in
 * production: token ids inside the vocabulary, attention masks with padded tails (the case exporters get
 * wrong), token types with a second segment, and plain uniform values for everything else.
 */
import { dirname, join } from 'node:path'
import { ModelforgeError, UsageError } from '../lib/errors.js'
import { readJsonFile } from '../lib/json.js'
import { prng } from '../lib/random.js'
import { num, readModel, type GraphProto } from '../onnx/proto.js'
import type { ValueInfo } from './runtime.js'
import { floatToHalf } from '../onnx/float16.js'
import { allocate, elementCount, isDtype, type Dtype, type HostTensor, type TensorMap } from './tensors.js'

export interface GenerateOptions {
  /** Batch size: symbolic leading dims (and dims named like batch) take this value. Default 2. */
  samples?: number
  /** PRNG seed; the same seed and metadata give the same inputs. Default 0. */
  seed?: number
  /** Length for symbolic sequence dims. Default 16, capped at maxPositions. */
  sequenceLength?: number
  /** Token ids are drawn from [0, vocabSize). Default 100 when nothing else is known. */
  vocabSize?: number
  /** token_type_ids values are below this. Default 2. */
  typeVocabSize?: number
  /** Cap for the sequence length (max_position_embeddings). */
  maxPositions?: number
  /** Explicit values for symbolic dims by name (e.g. {batch: 4, sequence: 7}); these win. */
  dims?: Record<string, number>
  /** Range of generic float inputs, [min, max). Default [0, 1) as Polygraphy's data loader. */
  floatRange?: [number, number]
  /** Range of generic integer inputs, [min, max). Default [0, 2). */
  intRange?: [number, number]
}

type Role = 'input_ids' | 'attention_mask' | 'token_type_ids' | 'position_ids' | 'generic'

function roleOf(name: string): Role {
  const n = name.toLowerCase()
  if (/attention_mask|(^|_)mask$/.test(n)) return 'attention_mask'
  if (/token_type_ids|segment_ids/.test(n)) return 'token_type_ids'
  if (/position_ids/.test(n)) return 'position_ids'
  if (/input_ids|^ids$|token_ids|decoder_input_ids/.test(n)) return 'input_ids'
  return 'generic'
}

const BATCH_NAME = /batch|^n$|^N$/i
const SEQ_NAME = /seq|sequence|length|len|tokens|^s$|past/i

/**
 * A decoder's cache inputs (past_key_values.N.key / .value, [batch, kv_heads, past, head_dim]) are given an
 * empty past: generated inputs are a prefill, whose attention_mask (past + seq) then spans the sequence.
 */
const isPastAxis = (info: ValueInfo, axis: number, name: string): boolean =>
  (/^past_key_values\./.test(info.name) && axis === 2) || /^past[_a-z]*$/i.test(name)

/** The concrete shape for an input, resolving symbolic dims consistently across inputs. */
export function resolveShape(info: ValueInfo, options: GenerateOptions = {}): number[] {
  const samples = options.samples ?? 2
  const seq = sequenceLength(options)
  const tokenLike = roleOf(info.name) !== 'generic'
  return info.shape.map((d, axis) => {
    if (typeof d === 'number' && d >= 0) return d
    const name = typeof d === 'string' ? d : ''
    if (name && options.dims && options.dims[name] !== undefined) return options.dims[name]
    if (isPastAxis(info, axis, name)) return 0
    if (name && BATCH_NAME.test(name)) return samples
    if (name && SEQ_NAME.test(name)) return seq
    if (axis === 0) return samples
    if (axis === 1 && tokenLike) return seq
    return 1
  })
}

function sequenceLength(options: GenerateOptions): number {
  const seq = options.sequenceLength ?? 16
  return options.maxPositions ? Math.min(seq, options.maxPositions) : seq
}

/**
 * Generates one feed for every tensor input. The attention mask is drawn first so that token ids and token
 * types agree with it (padding positions hold id 0 and type 0); sample 0 is always unpadded.
 */
export function generateInputs(inputs: readonly ValueInfo[], options: GenerateOptions = {}): TensorMap {
  for (const [k, v] of Object.entries({ samples: options.samples, sequenceLength: options.sequenceLength, vocabSize: options.vocabSize })) {
    if (v !== undefined && (!Number.isInteger(v) || v < 1)) {
      throw new UsageError(`${k} must be a positive integer (got ${v})`, { code: 'INVALID_OPTION', hint: `Pass --${k === 'sequenceLength' ? 'sequence-length' : k === 'vocabSize' ? 'vocab-size' : 'samples'} 1 or more.` })
    }
  }
  const rand = prng(options.seed ?? 0)
  const out: TensorMap = {}
  const ordered = [...inputs].sort((a, b) => (roleOf(a.name) === 'attention_mask' ? -1 : 0) - (roleOf(b.name) === 'attention_mask' ? -1 : 0))
  // Valid length per sample (batch row), shared by every token-shaped input.
  let lengths: number[] | undefined
  for (const info of ordered) {
    if (!info.isTensor || !isDtype(info.dtype)) {
      throw new UsageError(`cannot generate input "${info.name}" of type ${info.dtype}`, {
        code: 'INPUT_UNGENERATABLE',
        hint: 'Provide this input with --inputs (a JSON file or an ONNX test data directory).',
      })
    }
    const dims = resolveShape(info, options)
    const role = roleOf(info.name)
    const tokenShaped = dims.length === 2 && role !== 'generic'
    if (tokenShaped && !lengths) {
      lengths = Array.from({ length: dims[0] }, (_, b) => (b === 0 ? dims[1] : 1 + Math.floor(rand() * dims[1])))
    }
    out[info.name] = tokenShaped
      ? tokenInput(info.dtype, role, dims, lengths!, rand, options)
      : genericInput(info.dtype, dims, rand, options)
  }
  return out
}

function tokenInput(dtype: Dtype, role: Role, dims: number[], lengths: number[], rand: () => number, o: GenerateOptions): HostTensor {
  const [batch, seq] = dims
  const values: number[] = new Array(batch * seq).fill(0)
  const vocab = o.vocabSize ?? 100
  const types = o.typeVocabSize ?? 2
  for (let b = 0; b < batch; b++) {
    const len = Math.min(lengths[b] ?? seq, seq)
    const split = types > 1 ? Math.floor(len / 2) : len
    for (let s = 0; s < len; s++) {
      const i = b * seq + s
      if (role === 'attention_mask') values[i] = 1
      else if (role === 'input_ids') values[i] = Math.floor(rand() * vocab)
      else if (role === 'token_type_ids') values[i] = s < split ? 0 : 1
      else if (role === 'position_ids') values[i] = s
    }
  }
  return fill(dtype, dims, values)
}

function genericInput(dtype: Dtype, dims: number[], rand: () => number, o: GenerateOptions): HostTensor {
  const n = elementCount(dims)
  const values: (number | string)[] = new Array(n)
  const [fmin, fmax] = o.floatRange ?? [0, 1]
  const [imin, imax] = o.intRange ?? [0, 2]
  for (let i = 0; i < n; i++) {
    const r = rand()
    if (dtype === 'float32' || dtype === 'float64' || dtype === 'float16') values[i] = fmin + r * (fmax - fmin)
    else if (dtype === 'bool') values[i] = r < 0.5 ? 0 : 1
    else if (dtype === 'string') values[i] = `s${Math.floor(r * 1000)}`
    else values[i] = imin + Math.floor(r * (imax - imin))
  }
  return fill(dtype, dims, values)
}

function fill(dtype: Dtype, dims: number[], values: (number | string)[]): HostTensor {
  const data = allocate(dtype, values.length)
  for (let i = 0; i < values.length; i++) {
    const v = values[i]
    if (dtype === 'string') (data as string[])[i] = String(v)
    else if (dtype === 'int64' || dtype === 'uint64') (data as BigInt64Array)[i] = BigInt(v as number)
    else if (dtype === 'float16') (data as Uint16Array)[i] = floatToHalf(v as number)
    else (data as Float32Array)[i] = v as number
  }
  return { dtype, dims, data }
}

export interface ModelHints {
  vocabSize?: number
  typeVocabSize?: number
  maxPositions?: number
  /** Where the hints came from, for reports. */
  from?: string
}

/**
 * Vocabulary and position limits for a model file: config.json next to it (an export's --out directory
 * holds one), else the row count of the embedding table the input ids are gathered from.
 */
export async function modelHints(modelPath: string): Promise<ModelHints> {
  const configPath = join(dirname(modelPath), 'config.json')
  // The hints are optional: without a usable config.json the embedding tables still tell.
  const config = await readJsonFile<Record<string, unknown>>(configPath, { expect: 'object' }).catch((err: unknown) => {
    if (err instanceof ModelforgeError && (err.code === 'JSON_NOT_FOUND' || err.code === 'JSON_INVALID')) return undefined
    throw err
  })
  if (config) {
    const int = (k: string) => (typeof config[k] === 'number' && Number.isInteger(config[k]) ? (config[k] as number) : undefined)
    // GPT-2's config names its position limit n_positions.
    const hints: ModelHints = { vocabSize: int('vocab_size'), typeVocabSize: int('type_vocab_size'), maxPositions: int('max_position_embeddings') ?? int('n_positions'), from: configPath }
    // RoBERTa positions start after padding_idx + 1, so max_position_embeddings over-counts by that much.
    if (hints.maxPositions && config.model_type && /roberta/.test(String(config.model_type)) && typeof config.pad_token_id === 'number') {
      hints.maxPositions -= config.pad_token_id + 1
    }
    if (hints.vocabSize) return hints
  }
  return embeddingHints(modelPath)
}

async function embeddingHints(modelPath: string): Promise<ModelHints> {
  let graph: GraphProto | undefined
  try {
    graph = (await readModel(modelPath)).graph
  } catch {
    // The load through onnxruntime reports a broken file with a better message; hints are optional.
    return {}
  }
  if (!graph) return {}
  const inits = new Map((graph.initializer ?? []).map((t) => [t.name ?? '', t]))
  const hints: ModelHints = { from: `${modelPath} (embedding tables)` }
  for (const node of graph.node ?? []) {
    if (node.opType !== 'Gather' || !node.input || node.input.length < 2) continue
    const table = inits.get(node.input[0])
    const role = roleOf(node.input[1])
    if (!table?.dims?.length) continue
    const rows = num(table.dims[0])
    if (role === 'input_ids' && hints.vocabSize === undefined) hints.vocabSize = rows
    if (role === 'token_type_ids' && hints.typeVocabSize === undefined) hints.typeVocabSize = rows
  }
  return hints.vocabSize || hints.typeVocabSize ? hints : {}
}
