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

type Kind = 'batch' | 'seq' | 'named'

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
export function parseRange(text: string, flag: string, example = `${flag} ${DEFAULT_BATCH}`): DimRange {
  const parts = text.trim().split(':')
  const nums = parts.map((p) => (/^\d+$/.test(p.trim()) ? Number(p.trim()) : NaN))
  const bad = (why: string): UsageError => new UsageError(`${flag} ${JSON.stringify(text)} is not a shape range: ${why}`, {
    code: 'INVALID_SHAPE_RANGE',
    hint: `Give ${flag} as min:opt:max of positive integers with min <= opt <= max, e.g. ${example} (or one number for a fixed size).`,
    details: { flag, value: text },
  })
  if (parts.length !== 1 && parts.length !== 3) throw bad('it needs three numbers separated by ":"')
  if (nums.some((n) => !Number.isSafeInteger(n) || n < 1)) throw bad('every number must be a whole number of at least 1')
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
      if (kind === 'batch') return batch
      if (kind === 'seq') return seqRange(input.name, axis)
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
  return { profile, inference }
}
