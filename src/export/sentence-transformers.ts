/**
 * sentence-transformers layouts: modules.json (Transformer -> Pooling -> optional Normalize), the pooling
 * config in 1_Pooling/config.json, and the pooling written as ONNX ops exactly as
 * sentence_transformers.models.Pooling computes it (CLS / max / mean / mean-sqrt-len, concatenated in
 * that order, then F.normalize when a Normalize module follows).
 */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { IntegrityError, UsageError } from '../lib/errors.js'
import { readJsonFile } from '../lib/json.js'
import { DataType } from '../onnx/proto.js'
import { type GraphBuilder } from '../onnx/graph-builder.js'
import { checkLocation } from '../onnx/external-data.js'

export type PoolingMode = 'cls' | 'max' | 'mean' | 'mean_sqrt_len'

export interface SentenceTransformersConfig {
  /** The directory of the Transformer module (the repo root, or e.g. 0_Transformer in old layouts). */
  transformerDir: string
  /** Pooling modes in the order sentence-transformers concatenates them. */
  modes: PoolingMode[]
  normalize: boolean
  maxSeqLength?: number
}

interface ModuleEntry { idx?: number; name?: string; path?: string; type?: string }

const RESAVE = 'Check the sentence-transformers files; re-save the model with SentenceTransformer.save().'

const invalid = (file: string, what: string, hint = RESAVE): IntegrityError =>
  new IntegrityError(`${file}: ${what}`, { code: 'SENTENCE_TRANSFORMERS_INVALID', hint })

function readJson<T>(file: string, expect?: 'object' | 'array'): Promise<T> {
  return readJsonFile<T>(file, { expect, onError: (f) => new IntegrityError(f.message, { code: 'SENTENCE_TRANSFORMERS_INVALID', hint: RESAVE }) })
}

export function isSentenceTransformers(dir: string): boolean {
  return existsSync(join(dir, 'modules.json'))
}

export async function readSentenceTransformers(dir: string): Promise<SentenceTransformersConfig> {
  const modulesFile = join(dir, 'modules.json')
  const modules = await readJson<unknown[]>(modulesFile, 'array')
  const kinds = (modules as ModuleEntry[]).map((m) => String(m?.type ?? '').replace(/^sentence_transformers\.models\./, ''))
  const supported = ['Transformer', 'Pooling', 'Normalize']
  const unsupported = kinds.filter((k) => !supported.includes(k))
  if (unsupported.length > 0) {
    // A valid pipeline this exporter does not implement: unsupported (2), not broken.
    throw new UsageError(`${modulesFile}: module type(s) ${unsupported.join(', ')} are not supported by the native exporter (supported: ${supported.join(', ')})`, {
      code: 'UNSUPPORTED_CONFIG',
      hint: 'Use --exporter optimum, which exports any sentence-transformers pipeline.',
    })
  }
  if (kinds[0] !== 'Transformer' || kinds[1] !== 'Pooling' || kinds.length > 3 || (kinds.length === 3 && kinds[2] !== 'Normalize')) {
    throw invalid(modulesFile, `expected Transformer, Pooling and an optional Normalize, found ${kinds.join(', ')}`,
      'Use --exporter optimum for other module pipelines.')
  }
  const [transformer, pooling] = modules as ModuleEntry[]
  const transformerDir = join(dir, checkLocation(transformer!.path || '.', 'modules.json Transformer path'))
  const poolingFile = join(dir, checkLocation(pooling!.path || '1_Pooling', 'modules.json Pooling path'), 'config.json')
  const pc = await readJson<Record<string, unknown>>(poolingFile, 'object')
  for (const key of ['pooling_mode_weightedmean_tokens', 'pooling_mode_lasttoken']) {
    if (pc[key] === true) {
      throw invalid(poolingFile, `${key} is not supported by the native exporter (cls, max, mean, mean_sqrt_len are)`, 'Use --exporter optimum.')
    }
  }
  const flags: [PoolingMode, string][] = [
    ['cls', 'pooling_mode_cls_token'],
    ['max', 'pooling_mode_max_tokens'],
    ['mean', 'pooling_mode_mean_tokens'],
    ['mean_sqrt_len', 'pooling_mode_mean_sqrt_len_tokens'],
  ]
  const modes = flags.filter(([, key]) => pc[key] === true).map(([mode]) => mode)
  if (modes.length === 0) throw invalid(poolingFile, 'no pooling mode is enabled')
  let maxSeqLength: number | undefined
  const sbert = join(transformerDir, 'sentence_bert_config.json')
  if (existsSync(sbert)) {
    const v = (await readJson<{ max_seq_length?: unknown } | null>(sbert))?.max_seq_length
    if (typeof v === 'number') maxSeqLength = v
  }
  return { transformerDir, modes, normalize: kinds[2] === 'Normalize', maxSeqLength }
}

function reduceOver(g: GraphBuilder, opset: number, op: string, x: string, keepdims: number): string {
  const axes = g.constant('axes', [1], BigInt64Array.from([1n]))
  if (op === 'ReduceSum' || opset >= 18) return g.op(op, [x, axes], { keepdims })
  return g.op(op, [x], { axes: [1], keepdims })
}

/** Adds the pooling (and normalization) over `tokens` [B, S, H]; returns the [B, dim] embedding. */
export function addPooling(
  g: GraphBuilder,
  opset: number,
  tokens: string,
  attentionMask: string,
  hidden: number,
  st: SentenceTransformersConfig,
): { value: string; dim: number } {
  const f = (v: number): string => g.constant('const', [], new Float32Array([v]))
  // mask as float [B, S, 1], broadcast over the hidden axis.
  const maskF = g.op('Unsqueeze', [g.op('Cast', [attentionMask], { to: DataType.FLOAT }), g.constant('axes', [1], BigInt64Array.from([-1n]))])
  const parts: string[] = []
  let sum: string | undefined
  let count: string | undefined
  for (const mode of st.modes) {
    if (mode === 'cls') {
      parts.push(g.op('Gather', [tokens, g.constant('index', [], BigInt64Array.from([0n]))], { axis: 1 }))
    } else if (mode === 'max') {
      const masked = g.op('Where', [g.op('Equal', [maskF, f(0)]), f(-1e9), tokens])
      parts.push(reduceOver(g, opset, 'ReduceMax', masked, 0))
    } else {
      sum ??= reduceOver(g, opset, 'ReduceSum', g.op('Mul', [tokens, maskF]), 0)
      count ??= g.op('Max', [reduceOver(g, opset, 'ReduceSum', maskF, 0), f(1e-9)])
      parts.push(g.op('Div', [sum, mode === 'mean' ? count : g.op('Sqrt', [count])]))
    }
  }
  let value = parts.length === 1 ? parts[0]! : g.op('Concat', parts, { axis: 1 })
  if (st.normalize) {
    const norm = g.op('Sqrt', [reduceOver(g, opset, 'ReduceSum', g.op('Mul', [value, value]), 1)])
    value = g.op('Div', [value, g.op('Max', [norm, f(1e-12)])])
  }
  return { value, dim: hidden * st.modes.length }
}
