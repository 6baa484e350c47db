/**
 * Output comparison: error metrics and the pass rule.
 *
 * The elementwise rule is Polygraphy's: an element passes when |c - r| <= atol OR |c - r| / |r| <= rtol
 * (r the reference). Non-finite values pass only when both sides agree (NaN with NaN, +Inf with +Inf).
 * Metrics (max/mean abs error, max rel error, cosine) are taken over the elements where both sides are finite.
 */
import { UsageError } from '../lib/errors.js'
import { toFloat64, type HostTensor, type TensorMap } from './tensors.js'

export type Precision = 'fp32' | 'fp16' | 'int8'
export const PRECISIONS: readonly Precision[] = ['fp32', 'fp16', 'int8']

export const DEFAULT_TOLERANCES: Record<Precision, { atol: number; rtol: number }> = {
  fp32: { atol: 1e-4, rtol: 1e-3 },
  fp16: { atol: 1e-2, rtol: 1e-2 },
  int8: { atol: 1e-1, rtol: 1e-1 },
}
/** INT8 outputs are judged by direction, not elementwise: cosine similarity at least this. */
export const INT8_MIN_COSINE = 0.99

/** A tolerance for every output, with per-output overrides. */
export interface Tolerance {
  default?: number
  perOutput: Record<string, number>
}

/**
 * Parses repeated --atol/--rtol values: "1e-4" sets the default, "logits:1e-3" one output. Output names may
 * contain ':' (e.g. "encoder:0"), so the value is what follows the last colon.
 */
export function parseTolerance(values: readonly (string | number)[] | undefined, flag: string): Tolerance {
  const tol: Tolerance = { perOutput: {} }
  for (const raw of values ?? []) {
    const text = String(raw).trim()
    const at = text.lastIndexOf(':')
    const name = at >= 0 ? text.slice(0, at) : undefined
    const valueText = at >= 0 ? text.slice(at + 1) : text
    const value = Number(valueText)
    if (valueText === '' || !Number.isFinite(value) || value < 0 || (name !== undefined && name === '')) {
      throw new UsageError(`--${flag} ${text}: expected a non-negative number or <output>:<number>`, {
        code: 'INVALID_TOLERANCE',
        hint: `e.g. --${flag} 1e-4 (all outputs) or --${flag} logits:1e-3 (one output); repeat the flag for several.`,
      })
    }
    if (name === undefined) tol.default = value
    else tol.perOutput[name] = value
  }
  return tol
}

export function toleranceFor(tol: Tolerance, output: string, fallback: number): number {
  return tol.perOutput[output] ?? tol.default ?? fallback
}

export interface CompareOptions {
  atol: number
  rtol: number
  precision: Precision
  /** Whether atol/rtol were given explicitly (int8 then also applies the elementwise rule). */
  elementwiseForInt8?: boolean
  minCosine?: number
  /** int8: the share of logits rows whose argmax must agree (default 1: every row, validate's rule). */
  minArgmaxAgreement?: number
}

export interface OutputMetrics {
  name: string
  /** Which input set (test_data_set_0, reference.json, generated). */
  dataset: string
  dtype: string
  dims: number[]
  referenceDtype: string
  referenceDims: number[]
  elements: number
  atol: number
  rtol: number
  maxAbsErr: number
  /** null when infinite: the reference is 0 where the candidate is not. */
  maxRelErr: number | null
  meanAbsErr: number
  cosine: number
  /** Elements failing the rule (including non-finite disagreements). */
  mismatches: number
  /** The element with the largest absolute error (row-major index), if any element differs. */
  worst?: { index: number; candidate: number | string; reference: number | string }
  nan: { candidate: number; reference: number }
  inf: { candidate: number; reference: number }
  /** For outputs named logits under int8: fraction of rows whose argmax (last axis) agrees. */
  argmaxAgreement?: number
  passed: boolean
  /** Why it failed, in one line. */
  reason?: string
}

/** Row-wise argmax agreement over the last axis. */
function argmaxAgreement(c: Float64Array, r: Float64Array, dims: number[]): number {
  const width = dims.length ? dims[dims.length - 1] : 1
  if (width === 0) return 1
  const rows = c.length / width
  let agree = 0
  for (let row = 0; row < rows; row++) {
    let ci = 0
    let ri = 0
    for (let j = 1; j < width; j++) {
      if (c[row * width + j] > c[row * width + ci]) ci = j
      if (r[row * width + j] > r[row * width + ri]) ri = j
    }
    if (ci === ri) agree++
  }
  return rows ? agree / rows : 1
}

function sameDims(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i])
}

export function compareOutput(name: string, dataset: string, candidate: HostTensor, reference: HostTensor, o: CompareOptions): OutputMetrics {
  const base = {
    name, dataset,
    dtype: candidate.dtype, dims: candidate.dims, referenceDtype: reference.dtype, referenceDims: reference.dims,
    elements: reference.data.length, atol: o.atol, rtol: o.rtol,
  }
  const empty = { maxAbsErr: 0, maxRelErr: 0, meanAbsErr: 0, cosine: 1, mismatches: 0, nan: { candidate: 0, reference: 0 }, inf: { candidate: 0, reference: 0 } }
  if (!sameDims(candidate.dims, reference.dims)) {
    return { ...base, ...empty, mismatches: reference.data.length, cosine: 0, passed: false, reason: `shape [${candidate.dims.join(', ')}] differs from the reference's [${reference.dims.join(', ')}]` }
  }
  if (candidate.dtype === 'string' || reference.dtype === 'string') return compareStrings(base, empty, candidate, reference)

  const c = toFloat64(candidate)
  const r = toFloat64(reference)
  const n = r.length
  let maxAbs = 0
  let maxRel = 0
  let sumAbs = 0
  let finite = 0
  let dot = 0
  let cc = 0
  let rr = 0
  let mismatches = 0
  /** Positions where exactly one side is non-finite, or both are but differ (NaN vs Inf, +Inf vs -Inf). */
  let nonFiniteDisagree = 0
  let worst = -1
  let worstAbs = -1
  const nan = { candidate: 0, reference: 0 }
  const inf = { candidate: 0, reference: 0 }
  for (let i = 0; i < n; i++) {
    const a = c[i]
    const b = r[i]
    if (Number.isNaN(a)) nan.candidate++
    else if (!Number.isFinite(a)) inf.candidate++
    if (Number.isNaN(b)) nan.reference++
    else if (!Number.isFinite(b)) inf.reference++
    if (!Number.isFinite(a) || !Number.isFinite(b)) {
      const agree = (Number.isNaN(a) && Number.isNaN(b)) || a === b
      if (!agree) {
        mismatches++
        nonFiniteDisagree++
        if (worstAbs !== Infinity) {
          worstAbs = Infinity
          worst = i
        }
      }
      continue
    }
    const abs = Math.abs(a - b)
    const rel = abs === 0 ? 0 : abs / Math.abs(b)
    if (abs > maxAbs) maxAbs = abs
    if (rel > maxRel) maxRel = rel
    if (abs > worstAbs) {
      worstAbs = abs
      worst = i
    }
    sumAbs += abs
    finite++
    dot += a * b
    cc += a * a
    rr += b * b
    if (abs > o.atol && rel > o.rtol) mismatches++
  }
  const cosine = cc === 0 && rr === 0 ? 1 : cc === 0 || rr === 0 ? 0 : dot / Math.sqrt(cc * rr)
  const metrics: OutputMetrics = {
    ...base,
    maxAbsErr: maxAbs,
    maxRelErr: Number.isFinite(maxRel) ? maxRel : null,
    meanAbsErr: finite ? sumAbs / finite : 0,
    cosine,
    mismatches,
    nan,
    inf,
    passed: true,
  }
  if (worst >= 0 && worstAbs > 0) metrics.worst = { index: worst, candidate: c[worst], reference: r[worst] }

  const failures: string[] = []
  const elementwise = o.precision !== 'int8' || o.elementwiseForInt8
  if (elementwise && mismatches > 0) {
    failures.push(`${mismatches} of ${n} elements outside atol ${o.atol} / rtol ${o.rtol} (max abs err ${fmt(maxAbs)}, max rel err ${maxRel === Infinity ? 'inf' : fmt(maxRel)})`)
  }
  if (o.precision === 'int8') {
    const minCos = o.minCosine ?? INT8_MIN_COSINE
    if (cosine < minCos) failures.push(`cosine similarity ${cosine.toFixed(5)} < ${minCos}`)
    if (/logits/i.test(name)) {
      metrics.argmaxAgreement = argmaxAgreement(c, r, reference.dims)
      const minAgree = o.minArgmaxAgreement ?? 1
      if (metrics.argmaxAgreement < minAgree) failures.push(`argmax differs in ${((1 - metrics.argmaxAgreement) * 100).toFixed(1)}% of rows${minAgree < 1 ? ` (more than ${fmt((1 - minAgree) * 100)}%)` : ''}`)
    }
    // Counted by position: a NaN moved elsewhere is as wrong as a new one (cosine skips non-finite elements).
    if (!elementwise && nonFiniteDisagree > 0) failures.push(`non-finite values disagree at ${nonFiniteDisagree} of ${n} positions (${nan.candidate} NaN / ${inf.candidate} Inf in the candidate vs ${nan.reference} / ${inf.reference} in the reference)`)
  } else if (o.minCosine !== undefined && cosine < o.minCosine) {
    failures.push(`cosine similarity ${cosine.toFixed(5)} < ${o.minCosine}`)
  }
  if (failures.length) {
    metrics.passed = false
    metrics.reason = failures.join('; ')
  }
  return metrics
}

function compareStrings(
  base: Omit<OutputMetrics, 'maxAbsErr' | 'maxRelErr' | 'meanAbsErr' | 'cosine' | 'mismatches' | 'nan' | 'inf' | 'passed'>,
  empty: Pick<OutputMetrics, 'maxAbsErr' | 'maxRelErr' | 'meanAbsErr' | 'cosine' | 'mismatches' | 'nan' | 'inf'>,
  candidate: HostTensor, reference: HostTensor,
): OutputMetrics {
  if (candidate.dtype !== reference.dtype) {
    return { ...base, ...empty, cosine: 0, mismatches: reference.data.length, passed: false, reason: `dtype ${candidate.dtype} vs reference ${reference.dtype}` }
  }
  const c = candidate.data as string[]
  const r = reference.data as string[]
  let mismatches = 0
  let first = -1
  for (let i = 0; i < r.length; i++) {
    if (c[i] !== r[i]) {
      mismatches++
      if (first < 0) first = i
    }
  }
  const m: OutputMetrics = { ...base, ...empty, cosine: mismatches ? 0 : 1, mismatches, passed: mismatches === 0 }
  if (first >= 0) {
    m.worst = { index: first, candidate: c[first], reference: r[first] }
    m.reason = `${mismatches} of ${r.length} strings differ`
  }
  return m
}

/** Compact number formatting for tables and messages. */
export function fmt(x: number | null | undefined): string {
  if (x === null) return 'inf'
  if (x === undefined) return '-'
  if (x === 0) return '0'
  const a = Math.abs(x)
  return a >= 1e-3 && a < 1e4 ? String(Number(x.toPrecision(4))) : x.toExponential(2)
}

/**
 * Per-output tolerances must name outputs that are compared: a misspelt name in --atol logits:1e-3 would
 * otherwise be ignored silently and the default applied.
 */
export function checkToleranceNames(tol: { atol: Tolerance; rtol: Tolerance }, available: readonly string[]): void {
  for (const [flag, t] of [['atol', tol.atol], ['rtol', tol.rtol]] as const) {
    const unknown = Object.keys(t.perOutput).filter((n) => !available.includes(n))
    if (unknown.length) {
      throw new UsageError(`--${flag} ${unknown.map((n) => `${n}:${t.perOutput[n]}`).join(', ')}: no compared output is named ${unknown.join(', ')} (outputs: ${available.join(', ')})`, {
        code: 'OUTPUT_UNKNOWN',
        hint: `Per-output tolerances take an output name from that list, e.g. --${flag} ${available[0] ?? 'output'}:1e-3.`,
      })
    }
  }
}

export interface CompareRules {
  precision: Precision
  atol: Tolerance
  rtol: Tolerance
  /** The precision's defaults for outputs the tolerances do not name. */
  fallback: { atol: number; rtol: number }
  minCosine?: number
  minArgmaxAgreement?: number
}

/**
 * Compares the named outputs of a candidate with the expected ones, each by the rule of the precision
 * (validate's, and build's for an engine against onnxruntime).
 */
export function compareOutputs(actual: TensorMap, expected: TensorMap, names: readonly string[], dataset: string, rules: CompareRules): OutputMetrics[] {
  const { atol, rtol, fallback } = rules
  return names.map((name) => compareOutput(name, dataset, actual[name]!, expected[name]!, {
    atol: toleranceFor(atol, name, fallback.atol),
    rtol: toleranceFor(rtol, name, fallback.rtol),
    precision: rules.precision,
    // int8 adds the elementwise rule only for outputs given a tolerance: --atol logits:0.5 says nothing
    // about the other outputs, which stay judged by cosine.
    elementwiseForInt8: atol.default !== undefined || rtol.default !== undefined || name in atol.perOutput || name in rtol.perOutput,
    minCosine: rules.minCosine,
    minArgmaxAgreement: rules.minArgmaxAgreement,
  }))
}
