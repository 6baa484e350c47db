/**
 * The optimization profile of a build: for every input with dynamic dimensions, its min/opt/max shape.
 * TensorRT needs one for each dynamic input (without it trtexec forces every dynamic dim to 1), and checks
 * nothing about it before a long build, so the ranges are settled here, from the model's own inputs:
 *
 * - batch: a dim named batch, batch_size, N or B, or any dynamic dim at index 0; --batch, default 1:8:32;
 * - sequence: a dim named sequence, sequence_length, seq_len, seq, tokens or past_sequence_length, or a
 *   dynamic dim at index 1 of an integer (token id) input; --seq, default 1:128:<max positions>, the opt
 *   clamped to the maximum, which is the model's max_position_embeddings (a longer sequence indexes past
 *   its position table);
 * - any other dynamic dim: only by name, from `dims` (build's --dim name=min:opt:max).
 *
 * A decoder (inputs past_key_values.N.key / .value) has one profile that holds both of its runs: the
 * prefill (past 0, the prompt within --seq) and the decode steps (seq 1, a past within --past, default
 * 0:<min(128, (max - 1) / 2)>:<max - 1>). The past dim (axis 2 of the past inputs) takes --past; attention_mask's
 * second dim (past + seq) runs from seq min + past min to seq max + past max, capped at the model's
 * maximum positions. The inference shapes are a prefill: the prompt at --seq's opt with an empty past,
 * which is what the validation run feeds and the benchmark times.
 *
 * A named dim gets one range wherever it appears, because TensorRT requires equally named dims to be equal.
 * The inference shapes (for the benchmark and the validation run) are the opt shapes.
 */
import { UsageError } from '../lib/errors.js'
import type { ShapeProfile, ShapeRange } from './types.js'

export interface ModelInput {
  name: string
  /** onnxruntime's type name: 'float32', 'int64', ... */
  dtype: string
  /** Numbers for fixed dims; symbolic names, '?', -1 or 0 for dynamic ones. */
  shape: (number | string)[]
}

export interface PlanShapesOptions {
  /** "min:opt:max" for batch dims (default 1:8:32), or one number for a fixed batch. */
  batch?: string
  /** "min:opt:max" for sequence dims (default 1:128:maxPositions), or one number. */
  seq?: string
  /** The longest sequence the model takes (config.json's max_position_embeddings, see validate's modelHints). */
  maxPositions?: number
  /** Ranges of other symbolic dims by name: { height: '224:224:512' }. */
  dims?: Record<string, string>
  /** Decoders: "min:opt:max" of the past (cached tokens), min may be 0. */
  past?: string
}

export interface ShapePlan {
  /** Every input with a dynamic dim, with its range; empty for a static model. */
  profile: ShapeProfile
  /** The opt shape of each input in the profile: what the benchmark and the validation run feed. */
  inference: Record<string, number[]>
}

export const DEFAULT_BATCH = '1:8:32'
export const DEFAULT_SEQ_OPT = 128

interface DimRange {
  min: number
  opt: number
  max: number
}

type Kind = 'batch' | 'seq' | 'past' | 'total' | 'named'

const PAST_INPUT = /^past_key_values\.\d+\.(key|value)$/

const BATCH_NAMES = new Set(['batch', 'batchsize', 'n', 'b'])
const SEQ_NAMES = new Set(['sequence', 'sequencelength', 'seqlen', 'seqlength', 'seq', 'tokens', 'pastsequencelength'])

const normal = (name: string): string => name.toLowerCase().replace(/[^a-z0-9]/g, '')

function isDynamic(d: number | string): boolean {
  return typeof d === 'string' || d <= 0
}

/** A symbolic name, or undefined for an unknown dim ('?', -1, 0, ''). */
function dimName(d: number | string): string | undefined {
  return typeof d === 'string' && d !== '' && d !== '?' ? d : undefined
}

const isInteger = (dtype: string): boolean => /^u?int\d*$/.test(dtype)

/**
 * "min:opt:max" (or one number for all three) of positive integers in order. `flag` names the value in
 * messages ("--batch", "--dim height"), `example` shows a good one.
 */
export function parseRange(text: string, flag: string, example = `${flag} ${DEFAULT_BATCH}`, least = 1): DimRange {
  const parts = text.trim().split(':')
  const nums = parts.map((p) => (/^\d+$/.test(p.trim()) ? Number(p.trim()) : NaN))
  const bad = (why: string): UsageError => new UsageError(`${flag} ${JSON.stringify(text)} is not a shape range: ${why}`, {
    code: 'INVALID_SHAPE_RANGE',
    hint: `Give ${flag} as min:opt:max of ${least === 0 ? 'whole numbers' : 'positive integers'} with min <= opt <= max, e.g. ${example} (or one number for a fixed size).`,
    details: { flag, value: text },
  })
  if (parts.length !== 1 && parts.length !== 3) throw bad('it needs three numbers separated by ":"')
  if (nums.some((n) => !Number.isSafeInteger(n) || n < least)) throw bad(`every number must be a whole number of at least ${least}`)
  const [min, opt, max] = parts.length === 1 ? [nums[0]!, nums[0]!, nums[0]!] : (nums as [number, number, number])
  if (!(min <= opt && opt <= max)) throw bad(`min <= opt <= max does not hold (${min}, ${opt}, ${max})`)
  return { min, opt, max }
}

/** The profile for these inputs; throws (exit 2) before any build when a range is bad or cannot be chosen. */
export function planShapes(inputs: readonly ModelInput[], o: PlanShapesOptions = {}): ShapePlan {
  const maxPositions = Number.isSafeInteger(o.maxPositions) && o.maxPositions! > 0 ? o.maxPositions : undefined
  // Every given range is checked, used or not: a typo fails now rather than after a build.
  const batch = parseRange(o.batch ?? DEFAULT_BATCH, '--batch')
  const seqGiven = o.seq === undefined ? undefined : parseRange(o.seq, '--seq', `--seq 1:${DEFAULT_SEQ_OPT}:512`)
  if (seqGiven && maxPositions && seqGiven.max > maxPositions) {
    throw new UsageError(`--seq ${o.seq} goes beyond the ${maxPositions} positions the model takes (max_position_embeddings)`, {
      code: 'INVALID_SHAPE_RANGE',
      hint: `Keep the sequence maximum at ${maxPositions} or below, e.g. --seq 1:${Math.min(DEFAULT_SEQ_OPT, maxPositions)}:${maxPositions}.`,
      details: { flag: '--seq', value: o.seq, maxPositions },
    })
  }
  const named = new Map(Object.entries(o.dims ?? {}).map(([name, text]) => [name, parseRange(text, `--dim ${name}`, `--dim ${name}=1:8:64`)]))

  const kindOfName = new Map<string, Kind>()
  const decoder = decoderRanges(inputs, o, maxPositions, kindOfName)
  const seqRange = (input: string, axis: number): DimRange => {
    if (seqGiven) return seqGiven
    if (maxPositions) return { min: 1, opt: Math.min(DEFAULT_SEQ_OPT, maxPositions), max: maxPositions }
    throw new UsageError(`Input "${input}" has a dynamic sequence dimension (index ${axis}), and the model's maximum sequence length is unknown (no config.json with max_position_embeddings next to it)`, {
      code: 'SHAPE_RANGE_REQUIRED',
      hint: 'Pass --seq min:opt:max, e.g. --seq 1:128:512, with a maximum the model can take.',
      details: { input, axis },
    })
  }

  const profile: ShapeProfile = {}
  for (const input of inputs) {
    if (!input.shape.some(isDynamic)) continue
    const ranges = input.shape.map((d, axis): DimRange => {
      if (!isDynamic(d)) return { min: d as number, opt: d as number, max: d as number }
      const name = dimName(d)
      if (name !== undefined && named.has(name)) return named.get(name)!
      let kind = name === undefined ? undefined : kindOfName.get(name)
      if (!kind) {
        const n = name === undefined ? '' : normal(name)
        kind = BATCH_NAMES.has(n) ? 'batch'
          : SEQ_NAMES.has(n) ? 'seq'
            : axis === 0 ? 'batch'
              : axis === 1 && isInteger(input.dtype) ? 'seq'
                : 'named'
        if (name !== undefined) kindOfName.set(name, kind)
      }
      if (!kind && decoder && PAST_INPUT.test(input.name) && axis === 2) kind = 'past'
      if (kind === 'batch') return batch
      if (kind === 'seq') return seqRange(input.name, axis)
      if (kind === 'past') return decoder!.past(seqRange(input.name, 1))
      if (kind === 'total') return decoder!.total(seqRange(input.name, 1))
      const what = name === undefined ? 'an unnamed dynamic dimension' : `the dynamic dimension "${name}"`
      throw new UsageError(`Input "${input.name}" has ${what} at index ${axis}, which is neither a batch nor a sequence dimension: modelforge cannot choose its range`, {
        code: 'SHAPE_RANGE_REQUIRED',
        hint: name === undefined
          ? 'Export the model with that dimension fixed (or named, to give its range with --dim <name>=min:opt:max).'
          : `Give its range with --dim ${name}=min:opt:max, or export the model with that dimension fixed.`,
        details: { input: input.name, axis, dim: name ?? null },
      })
    })
    const range: ShapeRange = { min: ranges.map((r) => r.min), opt: ranges.map((r) => r.opt), max: ranges.map((r) => r.max) }
    profile[input.name] = range
  }
  const inference = Object.fromEntries(Object.entries(profile).map(([name, r]) => [name, [...r.opt]]))
  if (decoder) {
    // A prefill: the prompt at --seq's opt after the shortest past (empty unless --past says otherwise).
    const pastMin = Object.entries(profile).find(([name]) => PAST_INPUT.test(name))?.[1].min[2] ?? 0
    for (const input of inputs) {
      const shape = inference[input.name]
      if (!shape) continue
      if (PAST_INPUT.test(input.name)) shape[2] = pastMin
      else if (input.name === 'attention_mask' && inference.input_ids) shape[1] = inference.input_ids[1]! + pastMin
    }
  }
  return { profile, inference }
}

interface DecoderRanges {
  past(seq: DimRange): DimRange
  total(seq: DimRange): DimRange
}

/**
 * For a decoder: marks the past dim and attention_mask's past + seq dim, and says their ranges once the
 * sequence range is known; undefined for other models (where --past is refused).
 */
function decoderRanges(inputs: readonly ModelInput[], o: PlanShapesOptions, maxPositions: number | undefined, kinds: Map<string, Kind>): DecoderRanges | undefined {
  const pasts = inputs.filter((i) => PAST_INPUT.test(i.name))
  if (pasts.length === 0) {
    if (o.past !== undefined) {
      throw new UsageError(`--past ${o.past} is for decoders with a KV cache, and this model has no past_key_values inputs`, {
        code: 'INVALID_SHAPE_RANGE',
        hint: 'Drop --past, or build a model exported with --task text-generation-with-past.',
        details: { flag: '--past', value: o.past },
      })
    }
    return undefined
  }
  const pastGiven = o.past === undefined ? undefined : parseRange(o.past, '--past', '--past 0:128:2047', 0)
  for (const p of pasts) {
    const name = dimName(p.shape[2] ?? '')
    if (name !== undefined) kinds.set(name, 'past')
  }
  const mask = inputs.find((i) => i.name === 'attention_mask')
  const total = mask ? dimName(mask.shape[1] ?? '') : undefined
  if (total !== undefined) kinds.set(total, 'total')
  const pastOf = (seq: DimRange): DimRange => {
    if (pastGiven) {
      if (maxPositions && pastGiven.max + 1 > maxPositions) {
        throw new UsageError(`--past ${o.past} leaves no position for the next token: the model takes ${maxPositions} positions (max_position_embeddings)`, {
          code: 'INVALID_SHAPE_RANGE',
          hint: `Keep the past maximum at ${maxPositions - 1} or below, e.g. --past 0:${Math.min(DEFAULT_SEQ_OPT, maxPositions - 1)}:${maxPositions - 1}.`,
          details: { flag: '--past', value: o.past, maxPositions },
        })
      }
      return pastGiven
    }
    const max = (maxPositions ?? seq.max + 1) - 1
    return { min: 0, opt: Math.min(DEFAULT_SEQ_OPT, Math.floor(max / 2)), max }
  }
  return {
    past: pastOf,
    total: (seq) => {
      const past = pastOf(seq)
      const cap = (n: number): number => (maxPositions ? Math.min(n, maxPositions) : n)
      return { min: seq.min + past.min, opt: cap(seq.opt + past.opt), max: cap(seq.max + past.max) }
    },
  }
}
