/**
 * Text generation with a decoder ONNX model in onnxruntime-node: greedy or sampled, batched with left
 * padding, with the KV cache when the model has one.
 *
 * The model's interface is the one Optimum writes for causal LMs (and torch exports of them follow):
 * inputs input_ids [batch, seq], attention_mask [batch, past + seq], position_ids [batch, seq] (optional),
 * past_key_values.N.key / .value [batch, kv_heads, past, head_dim]; outputs logits [batch, seq, vocab] and
 * present.N.key / .value. The first run (prefill) feeds the whole prompt with an empty past; each later run
 * feeds one token per row and the presents of the run before as the past. A model without past inputs
 * (text-generation without a cache) is run on the whole sequence at every step.
 *
 * Left padding as transformers does it: pad tokens first, attention_mask 0 over them, position_ids the
 * cumulative sum of the mask minus one (0 at the pads), so every row of a batch generates what it would
 * alone. Hand-written: no JavaScript library generates over an onnxruntime-node session we own (transformers.js
 * owns its sessions and its own runtime build).
 */
import { UsageError } from '../lib/errors.js'
import { prng } from '../lib/random.js'
import { runModel, type LoadedModel, type ValueInfo } from './runtime.js'
import { toFloat64, type HostTensor, type TensorMap } from './tensors.js'

/** What generate runs: a LoadedModel, or anything with the same inputs and a run (a reader's ModelSession). */
export interface DecoderModel {
  inputs: ValueInfo[]
  outputs: ValueInfo[]
  run?(feeds: TensorMap, outputNames?: string[]): Promise<TensorMap>
}

export interface GenerationOptions {
  /** Tokens to add at most (default 20). */
  maxNewTokens?: number
  /** Pick the most likely token (default when no temperature is given). */
  greedy?: boolean
  /** Sample with this temperature (> 0); implies greedy false. */
  temperature?: number
  /** Sample among the k most likely tokens only. */
  topK?: number
  /** Sample among the most likely tokens whose probabilities add up to p (nucleus). */
  topP?: number
  /** Seed of the sampler (default 0): the same seed gives the same tokens. */
  seed?: number
  /** A row ends when it produces one of these. */
  eosTokenId?: number | number[]
  /** The token that pads the prompts on the left and the rows that ended (default: the first eos id, else 0). */
  padTokenId?: number
}

export interface GenerationResult {
  /** Each row's prompt (unpadded) followed by what it generated (up to and including its eos). */
  sequences: number[][]
  /** What each row generated. */
  newTokens: number[][]
  /** Whether each row ended with an eos token (else it reached maxNewTokens). */
  finished: boolean[]
  /** Model runs. */
  steps: number
  /** Whether the KV cache was used. */
  cached: boolean
}

interface Interface {
  ids: ValueInfo
  mask?: ValueInfo
  positions?: ValueInfo
  past: { input: ValueInfo; output: string; kvHeads: number; headDim: number }[]
  logits: string
}

function dimOf(info: ValueInfo, i: number, what: string): number {
  const d = info.shape[i]
  if (typeof d !== 'number') {
    throw new UsageError(`${info.name} has no fixed ${what} (its dims are [${info.shape.join(', ')}])`, {
      code: 'DECODER_INTERFACE',
      hint: 'Export the model with fixed key/value heads and head size (Optimum and modelforge do).',
    })
  }
  return d
}

function decoderInterface(m: DecoderModel): Interface {
  const byName = new Map(m.inputs.map((i) => [i.name, i]))
  const ids = byName.get('input_ids')
  const logits = m.outputs.find((o) => o.name === 'logits')
  if (!ids || !logits) {
    throw new UsageError(`not a causal LM: the model needs an input_ids input and a logits output (it has inputs ${m.inputs.map((i) => i.name).join(', ')}; outputs ${m.outputs.map((o) => o.name).join(', ')})`, {
      code: 'DECODER_INTERFACE',
      hint: 'Export it with --task text-generation-with-past (or text-generation).',
    })
  }
  const past = m.inputs.filter((i) => /^past_key_values\.\d+\.(key|value)$/.test(i.name)).map((input) => {
    const output = input.name.replace(/^past_key_values\./, 'present.')
    if (!m.outputs.some((o) => o.name === output)) {
      throw new UsageError(`${input.name} has no matching output ${output}`, { code: 'DECODER_INTERFACE', hint: 'Every past_key_values.N.key/value input needs its present.N.key/value output.' })
    }
    return { input, output, kvHeads: dimOf(input, 1, 'key/value head count'), headDim: dimOf(input, 3, 'head size') }
  })
  const known = new Set(['input_ids', 'attention_mask', 'position_ids', ...past.map((p) => p.input.name)])
  const other = m.inputs.filter((i) => !known.has(i.name))
  if (other.length) {
    throw new UsageError(`the decoder takes inputs generate does not know how to feed: ${other.map((i) => i.name).join(', ')}`, {
      code: 'DECODER_INTERFACE',
      hint: 'Export with the Optimum names: input_ids, attention_mask, position_ids, past_key_values.N.key/value.',
    })
  }
  return { ids, mask: byName.get('attention_mask'), positions: byName.get('position_ids'), past, logits: logits.name }
}

function intTensor(info: ValueInfo, dims: number[], values: number[]): HostTensor {
  return info.dtype === 'int32'
    ? { dtype: 'int32', dims, data: Int32Array.from(values) }
    : { dtype: 'int64', dims, data: BigInt64Array.from(values, (v) => BigInt(v)) }
}

function checkOptions(prompts: readonly (readonly number[])[], o: GenerationOptions): void {
  const bad = (what: string, hint: string) => new UsageError(what, { code: 'INVALID_OPTION', hint })
  if (prompts.length === 0 || prompts.some((p) => p.length === 0)) throw bad('generate needs at least one prompt, each of one token or more', 'Pass the token ids of each prompt (tokenize the text first).')
  if (prompts.some((p) => p.some((t) => !Number.isInteger(t) || t < 0))) throw bad('prompt token ids must be non-negative integers', 'Pass the ids the tokenizer gave.')
  if (o.maxNewTokens !== undefined && (!Number.isInteger(o.maxNewTokens) || o.maxNewTokens < 1)) throw bad(`maxNewTokens must be a positive integer, got ${o.maxNewTokens}`, 'For example maxNewTokens: 32.')
  if (o.temperature !== undefined && !(o.temperature > 0)) throw bad(`temperature must be above 0, got ${o.temperature}`, 'Use greedy: true for temperature 0.')
  if (o.topK !== undefined && (!Number.isInteger(o.topK) || o.topK < 1)) throw bad(`topK must be a positive integer, got ${o.topK}`, 'For example topK: 50.')
  if (o.topP !== undefined && !(o.topP > 0 && o.topP <= 1)) throw bad(`topP must be in (0, 1], got ${o.topP}`, 'For example topP: 0.9.')
  if (o.greedy && (o.temperature !== undefined || o.topK !== undefined || o.topP !== undefined)) throw bad('greedy: true cannot be combined with temperature, topK or topP', 'Drop greedy to sample, or drop the sampling options.')
}

/** The next token of one row from its last position's logits. */
function pick(logits: Float64Array, offset: number, vocab: number, o: GenerationOptions, rand: () => number): number {
  const sample = o.temperature !== undefined || o.topK !== undefined || o.topP !== undefined
  if (!sample) {
    let best = 0
    for (let v = 1; v < vocab; v++) if (logits[offset + v]! > logits[offset + best]!) best = v
    return best
  }
  const t = o.temperature ?? 1
  let order = Array.from({ length: vocab }, (_, v) => v).sort((a, b) => logits[offset + b]! - logits[offset + a]! || a - b)
  if (o.topK !== undefined) order = order.slice(0, o.topK)
  const max = logits[offset + order[0]!]!
  let probs = order.map((v) => Math.exp((logits[offset + v]! - max) / t))
  const sum = probs.reduce((a, b) => a + b, 0)
  probs = probs.map((p) => p / sum)
  if (o.topP !== undefined) {
    let acc = 0
    let keep = 0
    while (keep < probs.length && (keep === 0 || acc < o.topP)) acc += probs[keep++]!
    order = order.slice(0, keep)
    probs = probs.slice(0, keep).map((p) => p / acc)
  }
  let r = rand()
  for (let i = 0; i < order.length; i++) {
    r -= probs[i]!
    if (r <= 0) return order[i]!
  }
  return order[order.length - 1]!
}

export async function generate(model: DecoderModel | LoadedModel, prompts: readonly (readonly number[])[], options: GenerationOptions = {}): Promise<GenerationResult> {
  checkOptions(prompts, options)
  const api = decoderInterface(model)
  const run = (feeds: TensorMap, names: string[]) => ('run' in model && model.run ? model.run(feeds, names) : runModel(model as LoadedModel, feeds, names))
  const eos = new Set(options.eosTokenId === undefined ? [] : Array.isArray(options.eosTokenId) ? options.eosTokenId : [options.eosTokenId])
  const pad = options.padTokenId ?? (eos.size ? [...eos][0]! : 0)
  const maxNew = options.maxNewTokens ?? 20
  const rand = prng(options.seed ?? 0)
  const batch = prompts.length
  const width = Math.max(...prompts.map((p) => p.length))
  // Left-padded rows: the whole sequence so far, and its attention mask.
  const tokens = prompts.map((p) => [...Array<number>(width - p.length).fill(pad), ...p])
  const mask = prompts.map((p) => [...Array<number>(width - p.length).fill(0), ...Array<number>(p.length).fill(1)])
  const generated: number[][] = prompts.map(() => [])
  const finished = prompts.map(() => false)
  const cached = api.past.length > 0
  let past: TensorMap = Object.fromEntries(api.past.map((p) => [p.input.name, {
    dtype: p.input.dtype as HostTensor['dtype'], dims: [batch, p.kvHeads, 0, p.headDim], data: p.input.dtype === 'float16' ? new Uint16Array(0) : new Float32Array(0),
  } as HostTensor]))
  let steps = 0
  for (let step = 0; step < maxNew && !finished.every(Boolean); step++) {
    const total = tokens[0]!.length
    // Prefill (and every step without a cache) feeds the whole sequence; a cached step only the last token.
    const fed = cached && step > 0 ? 1 : total
    const from = total - fed
    const feeds: TensorMap = { ...past }
    feeds[api.ids.name] = intTensor(api.ids, [batch, fed], tokens.flatMap((row) => row.slice(from)))
    if (api.mask) feeds[api.mask.name] = intTensor(api.mask, [batch, total], mask.flat())
    if (api.positions) {
      feeds[api.positions.name] = intTensor(api.positions, [batch, fed], mask.flatMap((row) => {
        let seen = 0
        const pos = row.map((m) => (seen += m) - 1).map((p) => Math.max(p, 0))
        return pos.slice(from)
      }))
    }
    const out = await run(feeds, [api.logits, ...api.past.map((p) => p.output)])
    steps++
    const logits = out[api.logits]!
    const [, seq, vocab] = logits.dims as [number, number, number]
    const values = toFloat64(logits)
    for (let b = 0; b < batch; b++) {
      const next = finished[b] ? pad : pick(values, (b * seq + seq - 1) * vocab, vocab, options, rand)
      tokens[b]!.push(next)
      mask[b]!.push(finished[b] ? 0 : 1)
      if (!finished[b]) {
        generated[b]!.push(next)
        if (eos.has(next)) finished[b] = true
      }
    }
    if (cached) past = Object.fromEntries(api.past.map((p) => [p.input.name, out[p.output]!]))
  }
  return {
    sequences: prompts.map((p, b) => [...p, ...generated[b]!]),
    newTokens: generated,
    finished,
    steps,
    cached,
  }
}
