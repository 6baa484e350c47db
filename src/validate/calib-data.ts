/**
 * Calibration (and held-out) inputs for quantize, batch by batch:
 *
 * - a text file, one sample per line (blank lines skipped), or a .jsonl file whose lines are objects with a
 *   string "text": tokenized with the model's tokenizer.json through @huggingface/tokenizers (the tokenizer
 *   of transformers.js, pure JavaScript), with the special tokens the tokenizer adds, truncated to the
 *   sequence length (the last token kept a separator), padded with the pad token and attention mask 0;
 *   token_type_ids 0 and position_ids 0..n-1 when the model takes them. A fixed sequence dim of the model
 *   wins over --seq-len.
 * - a directory of ONNX test data (test_data_set_N/input_M.pb, or one such directory): each data set is
 *   one batch, as stored, read when it is needed.
 *
 * Text is read whole (calibration sets are small) but tokenized and batched lazily.
 */
import { readdir, readFile, stat } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { loadTokenizer, type LoadedTokenizer } from './tokenizer.js'
import { errnoCode, NotFoundError, osFailure, UsageError } from '../lib/errors.js'
import { bindByName, readDataSetDir } from './reference.js'
import type { ValueInfo } from './runtime.js'
import { allocate, type Dtype, type HostTensor, type TensorMap } from './tensors.js'

export interface CalibDataOptions {
  /** A text file, a .jsonl file, or a directory of ONNX test-data inputs. */
  data: string
  /** The model's inputs (their names, dtypes and shapes). */
  inputs: readonly ValueInfo[]
  /** tokenizer.json (and tokenizer_config.json) are looked up next to it. */
  modelPath: string
  /** --tokenizer: a tokenizer.json, or a directory holding one. */
  tokenizer?: string
  batchSize: number
  seqLen: number
}

export interface CalibData {
  kind: 'text' | 'jsonl' | 'onnx-test-data'
  /** The data path, and for text the tokenizer used. */
  source: string
  tokenizer?: string
  /** Samples (text lines) or data sets. */
  samples: number
  /** Batches in order; each call starts from the first. */
  batches(): AsyncIterable<TensorMap>
}

export async function loadCalibData(o: CalibDataOptions): Promise<CalibData> {
  let s
  try {
    s = await stat(o.data)
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') {
      throw new NotFoundError(`calibration data ${o.data} does not exist`, { code: 'CALIB_DATA_NOT_FOUND', hint: 'Check --calib-data: a text file, a .jsonl file, or a directory of ONNX test-data inputs.' })
    }
    throw osFailure(err, `reading the calibration data ${o.data}`)
  }
  if (s.isDirectory()) return testDataDir(o)
  const jsonl = /\.jsonl$/i.test(o.data)
  let text: string
  try {
    text = await readFile(o.data, 'utf8')
  } catch (err) {
    throw osFailure(err, `reading the calibration data ${o.data}`)
  }
  const samples = jsonl ? jsonlSamples(text, o.data) : text.split(/\r?\n/).map((l) => l.trim()).filter(Boolean)
  if (samples.length === 0) {
    throw new UsageError(`${o.data} holds no calibration samples${jsonl ? ' (no line with a "text")' : ' (only blank lines)'}`, {
      code: 'CALIB_DATA_EMPTY',
      hint: jsonl ? 'Give one JSON object per line with a string "text" field.' : 'Give one text sample per line, like the inputs the model will see.',
    })
  }
  const tok = await loadTokenizer(o.modelPath, o.tokenizer, 'text calibration data')
  const layout = tokenLayout(o.inputs, o.seqLen, o.data)
  return {
    kind: jsonl ? 'jsonl' : 'text',
    source: o.data,
    tokenizer: tok.path,
    samples: samples.length,
    async *batches() {
      for (let at = 0; at < samples.length; at += o.batchSize) {
        yield encodeBatch(tok, layout, samples.slice(at, at + o.batchSize))
      }
    },
  }
}

function jsonlSamples(text: string, path: string): string[] {
  const out: string[] = []
  text.split(/\r?\n/).forEach((line, i) => {
    if (!line.trim()) return
    let doc: unknown
    try {
      doc = JSON.parse(line)
    } catch (err) {
      throw new UsageError(`${path} line ${i + 1} is not JSON: ${(err as Error).message}`, { code: 'CALIB_DATA_INVALID', hint: 'Each line of a .jsonl file is one JSON object, e.g. {"text": "a sample"}.' })
    }
    const t = (doc as { text?: unknown } | null)?.text
    if (typeof t !== 'string') {
      throw new UsageError(`${path} line ${i + 1} has no string "text" field`, { code: 'CALIB_DATA_INVALID', hint: 'Each line needs {"text": "..."}; other fields are ignored.' })
    }
    if (t.trim()) out.push(t)
  })
  return out
}

type Role = 'input_ids' | 'attention_mask' | 'token_type_ids' | 'position_ids'

interface TokenLayout { seqLen: number; inputs: { name: string; dtype: Dtype; role: Role }[] }

// The roles validate's input generator gives names (inputs.ts), for the inputs a tokenizer can fill.
function roleOf(name: string): Role | undefined {
  const n = name.toLowerCase()
  if (/attention_mask|(^|_)mask$/.test(n)) return 'attention_mask'
  if (/token_type_ids|segment_ids/.test(n)) return 'token_type_ids'
  if (/position_ids/.test(n)) return 'position_ids'
  if (/input_ids|^ids$|token_ids/.test(n)) return 'input_ids'
  return undefined
}

function tokenLayout(inputs: readonly ValueInfo[], seqLen: number, data: string): TokenLayout {
  const layout: TokenLayout = { seqLen, inputs: [] }
  for (const info of inputs) {
    const role = roleOf(info.name)
    if (!role || (info.dtype !== 'int64' && info.dtype !== 'int32')) {
      throw new UsageError(`text calibration data cannot fill input "${info.name}" (${info.dtype} [${info.shape.join(', ')}]): only token ids, attention masks, token types and positions come from a tokenizer`, {
        code: 'CALIB_DATA_INVALID',
        hint: `Give --calib-data as a directory of ONNX test-data inputs (test_data_set_N/input_M.pb) for this model instead of ${basename(data)}.`,
      })
    }
    const fixed = info.shape[1]
    if (typeof fixed === 'number' && fixed > 0) layout.seqLen = fixed
    layout.inputs.push({ name: info.name, dtype: info.dtype, role })
  }
  if (!layout.inputs.some((i) => i.role === 'input_ids')) {
    throw new UsageError(`the model has no token-id input for text calibration data (inputs: ${inputs.map((i) => i.name).join(', ')})`, {
      code: 'CALIB_DATA_INVALID',
      hint: 'Give --calib-data as a directory of ONNX test-data inputs for this model.',
    })
  }
  return layout
}

function encodeBatch(tok: LoadedTokenizer, layout: TokenLayout, texts: string[]): TensorMap {
  const { seqLen } = layout
  const rows = texts.map((t) => {
    const ids = tok.tokenizer.encode(t).ids
    if (ids.length <= seqLen) return ids
    // Truncated, keeping the closing special token ([SEP], </s>) where the tokenizer added one.
    const last = ids[ids.length - 1]!
    return tok.special.has(last) ? [...ids.slice(0, seqLen - 1), last] : ids.slice(0, seqLen)
  })
  const out: TensorMap = {}
  const n = texts.length * seqLen
  for (const input of layout.inputs) {
    const values = new Array<number>(n)
    rows.forEach((ids, b) => {
      for (let s = 0; s < seqLen; s++) {
        const real = s < ids.length
        const i = b * seqLen + s
        values[i] = input.role === 'input_ids' ? (real ? ids[s]! : tok.padId)
          : input.role === 'attention_mask' ? (real ? 1 : 0)
            : input.role === 'position_ids' ? s
              : 0
      }
    })
    out[input.name] = intTensor(input.dtype, [texts.length, seqLen], values)
  }
  return out
}

function intTensor(dtype: Dtype, dims: number[], values: number[]): HostTensor {
  const data = allocate(dtype, values.length)
  if (data instanceof BigInt64Array) values.forEach((v, i) => (data[i] = BigInt(v)))
  else (data as Int32Array).set(values)
  return { dtype, dims, data }
}

async function testDataDir(o: CalibDataOptions): Promise<CalibData> {
  let entries
  try {
    entries = await readdir(o.data, { withFileTypes: true })
  } catch (err) {
    throw osFailure(err, `reading the calibration data ${o.data}`)
  }
  const sets = entries.filter((e) => e.isDirectory() && /^test_data_set_\d+$/.test(e.name))
    .map((e) => join(o.data, e.name))
    .sort((a, b) => Number(a.split('_').pop()) - Number(b.split('_').pop()))
  const dirs = sets.length ? sets : entries.some((e) => /^input_\d+\.pb$/.test(e.name)) ? [o.data] : []
  if (dirs.length === 0) {
    throw new UsageError(`${o.data} holds no ONNX test data (test_data_set_N/input_M.pb)`, {
      code: 'CALIB_DATA_EMPTY',
      hint: 'A calibration directory holds test_data_set_0/, test_data_set_1/, ... each with input_0.pb, input_1.pb, ... (one batch each), or is one such directory.',
    })
  }
  const names = o.inputs.map((i) => i.name)
  return {
    kind: 'onnx-test-data',
    source: o.data,
    samples: dirs.length,
    async *batches() {
      for (const dir of dirs) {
        const set = await readDataSetDir(dir)
        const feeds = bindByName(set.inputs, names, `calibration input in ${dir}:`)
        for (const info of o.inputs) {
          const t = feeds[info.name]
          if (!t) {
            throw new UsageError(`${dir} lacks the model input "${info.name}"`, { code: 'CALIB_DATA_INVALID', hint: `Each data set needs input_N.pb for every model input: ${names.join(', ')}.` })
          }
          if (t.dtype !== info.dtype) {
            throw new UsageError(`${dir}: input "${info.name}" is ${t.dtype}, the model takes ${info.dtype}`, { code: 'CALIB_DATA_INVALID', hint: 'Write the data sets in the dtypes the model declares (see `modelforge inspect`).' })
          }
        }
        yield feeds
      }
    },
  }
}
