/**
 * Activation ranges for Q/DQ: onnxruntime runs over the calibration batches with only the tensors that need
 * a range exposed as extra outputs (intermediates.ts), one batch at a time; each tensor is folded into its
 * collector and dropped, so memory is one batch's activations plus a 2048-bin histogram per tensor.
 *
 * Methods, for symmetric int8 (the range is a bound on |x|):
 * - minmax: amax = max |x| seen.
 * - percentile: the given percentile of |x|, read off the histogram (the upper edge of the bin where the
 *   cumulative count reaches it), as Model Optimizer's HistogramCalibrator does.
 * - entropy (default): the bound whose 128-level quantization of the |x| histogram loses the least
 *   information (KL divergence between the clipped reference distribution and its quantized expansion),
 *   TensorRT's entropy calibrator as Model Optimizer implements it (modelopt/torch/quantization/calib/
 *   histogram.py `_compute_amax_entropy`: 2048 bins, start bin 128, stride 1, 128 quantized bins for signed
 *   int8, the zero bin set to its neighbour's count, the last bin of minimal divergence). Hand-written: there is no JavaScript library for it.
 *
 * The histogram is streamed as Model Optimizer streams it: the first batch fixes the bin width (its max |x|
 * over 2048 bins); a later batch reaching further adds bins of the same width. So that a far outlier cannot
 * grow it without bound (the entropy search is quadratic in the bin count), bins are merged in pairs when
 * there are more than 8192 (the width doubles; counts are kept exactly).

 */
import { IntegrityError, UsageError } from '../lib/errors.js'
import type { ModelProto } from '../onnx/proto.js'
import { exposeValues, typesOf, type ExposedModel } from './intermediates.js'
import type { TensorMap } from './tensors.js'

export type CalibMethod = 'minmax' | 'percentile' | 'entropy'
export const CALIB_METHODS: readonly CalibMethod[] = ['minmax', 'percentile', 'entropy']
export const DEFAULT_PERCENTILE = 99.999
export const DEFAULT_BINS = 2048
const MAX_BINS = 8192
const ENTROPY_START_BIN = 128
/** 1 << (bits - 1) for signed int8, as Model Optimizer counts them. */
const INT8_LEVELS = 128

export interface CalibrateOptions {
  method: CalibMethod
  /** percentile: of |x|, in (0, 100]. Default 99.999. */
  percentile?: number
  /** Histogram bins of the first batch. Default 2048. */
  bins?: number
  /** After each batch, with the number of batches done. */
  onBatch?: (done: number) => void
}

export interface TensorRange {
  /** The bound |x| <= amax the method chose (0 for a tensor that was all zeros). */
  amax: number
  min: number
  max: number
  /** Non-finite values seen (skipped), when there were any. */
  nonFinite?: number
}

/** A streaming histogram of |x| with fixed-width bins from 0. */
export class AbsHistogram {
  counts: Float64Array = new Float64Array(0)
  width = 0
  /** Values seen before the width was known (all zeros so far): they land in bin 0. */
  private zeros = 0

  constructor(readonly initialBins = DEFAULT_BINS) {}

  get total(): number {
    let t = this.zeros
    for (let i = 0; i < this.counts.length; i++) t += this.counts[i]!
    return t
  }

  /** Adds the finite values of data, whose largest |x| is absMax. */
  add(data: Float32Array, absMax: number): void {
    if (this.width === 0) {
      if (absMax === 0) {
        for (let i = 0; i < data.length; i++) if (Number.isFinite(data[i]!)) this.zeros++
        return
      }
      this.width = absMax / this.initialBins
      this.counts = new Float64Array(this.initialBins)
      this.counts[0] = this.zeros
      this.zeros = 0
    }
    this.grow(absMax)
    const counts = this.counts
    const last = counts.length - 1
    const inv = 1 / this.width
    for (let i = 0; i < data.length; i++) {
      const v = data[i]!
      const a = v < 0 ? -v : v
      if (!(a <= absMax)) continue // NaN and infinities
      let b = (a * inv) | 0
      if (b > last) b = last
      counts[b]!++
    }
  }

  /** Upper edge of the last bin. */
  get range(): number {
    return this.width * this.counts.length
  }

  private grow(absMax: number): void {
    if (absMax <= this.range) return
    let bins = Math.ceil(absMax / this.width)
    let counts = new Float64Array(bins)
    counts.set(this.counts)
    while (bins > MAX_BINS) {
      const half = Math.ceil(bins / 2)
      const merged = new Float64Array(half)
      for (let i = 0; i < bins; i++) merged[i >> 1]! += counts[i]!
      counts = merged
      bins = half
      this.width *= 2
    }
    this.counts = counts
  }

  /** The percentile (0..100] of |x|: the upper edge of the bin where the cumulative count reaches it. */
  percentile(p: number): number {
    const total = this.total
    if (total === 0 || this.width === 0) return 0
    const target = (p / 100) * total
    let cum = 0
    for (let i = 0; i < this.counts.length; i++) {
      cum += this.counts[i]!
      if (cum >= target) return (i + 1) * this.width
    }
    return this.range
  }

  /**
   * TensorRT's entropy threshold (see the module comment). For each candidate i, the reference is
   * bins[0..i) with the tail folded into its last bin, the candidate spreads each of 128 levels' count over
   * its nonzero bins, and KL(p || q) over the normalized pair is summed level by level from prefix sums
   * (counts, nonzero bins, c ln c), so a candidate costs 128 steps instead of i: O(128 n), not O(n^2).
   */
  entropy(): number {
    if (this.width === 0) return 0
    // As Model Optimizer: the zero bin (exact zeros, padding) counts as much as its neighbour, so that a
    // spike at 0 does not decide the bound.
    const bins = Float64Array.from(this.counts)
    if (bins.length > 1) bins[0] = bins[1]!
    const width = this.width
    const n = bins.length
    if (n <= ENTROPY_START_BIN) return this.range
    const C = new Float64Array(n + 1)
    const NZ = new Float64Array(n + 1)
    const A = new Float64Array(n + 1)
    for (let j = 0; j < n; j++) {
      const c = bins[j]!
      C[j + 1] = C[j]! + c
      NZ[j + 1] = NZ[j]! + (c > 0 ? 1 : 0)
      A[j + 1] = A[j]! + (c > 0 ? c * Math.log(c) : 0)
    }
    const P = C[n]!
    const lnP = Math.log(P)
    let best = Infinity
    let bestI = n
    for (let i = ENTROPY_START_BIN; i <= n; i++) {
      const Q = C[i]!
      const lnQ = Math.log(Q)
      const tail = P - Q
      let kl = 0
      // Level g holds bins j with floor(j * 128 / i) = g, i.e. ceil(g i / 128) <= j < ceil((g + 1) i / 128).
      let lo = 0
      let lastQ = 0
      for (let g = 0; g < INT8_LEVELS; g++) {
        const hi = Math.ceil(((g + 1) * i) / INT8_LEVELS)
        const S = C[hi]! - C[lo]!
        const N = NZ[hi]! - NZ[lo]!
        if (S > 0) {
          const lnq = Math.log(S / N)
          kl += (A[hi]! - A[lo]!) - S * lnP - S * lnq + S * lnQ
          if (hi === i) lastQ = lnq
        }
        lo = hi
      }
      if (tail > 0) {
        // The last bin of the reference also holds everything beyond i.
        const c = bins[i - 1]!
        if (c === 0) kl = Infinity
        else {
          const p = c + tail
          kl += (p * Math.log(p) - c * Math.log(c)) - tail * lnP - tail * lastQ + tail * lnQ
        }
      }
      kl /= P
      // The last i of minimal divergence (Model Optimizer takes the last argmin).
      if (kl <= best) {
        best = kl
        bestI = i
      }
    }
    return bestI * width
  }
}

/** What one tensor's values make of its range. */
class Collector {
  min = Infinity
  max = -Infinity
  nonFinite = 0
  readonly hist?: AbsHistogram

  constructor(method: CalibMethod, bins: number) {
    if (method !== 'minmax') this.hist = new AbsHistogram(bins)
  }

  add(data: Float32Array): void {
    let min = this.min
    let max = this.max
    let bad = 0
    for (let i = 0; i < data.length; i++) {
      const v = data[i]!
      if (v < min) min = v
      if (v > max) max = v
      if (v - v !== 0) bad++
    }
    // Infinities went into min/max above; take them out again (NaN never compares).
    if (bad) {
      min = this.min
      max = this.max
      for (let i = 0; i < data.length; i++) {
        const v = data[i]!
        if (v - v !== 0) continue
        if (v < min) min = v
        if (v > max) max = v
      }
    }
    this.min = min
    this.max = max
    this.nonFinite += bad
    if (this.hist) {
      const absMax = Math.max(Math.abs(min), Math.abs(max))
      if (Number.isFinite(absMax)) this.hist.add(data, absMax)
    }
  }

  range(o: CalibrateOptions): TensorRange {
    const seen = this.min <= this.max
    const min = seen ? this.min : 0
    const max = seen ? this.max : 0
    const absMax = Math.max(Math.abs(min), Math.abs(max))
    let amax = absMax
    if (o.method === 'percentile') amax = Math.min(absMax, this.hist!.percentile(o.percentile ?? DEFAULT_PERCENTILE))
    else if (o.method === 'entropy') amax = Math.min(absMax, this.hist!.entropy())
    return { amax, min, max, ...(this.nonFinite ? { nonFinite: this.nonFinite } : {}) }
  }
}

/**
 * The ranges of `tensors` over `batches`. A tensor that is not float is refused (Q/DQ needs float), one
 * the model does not produce too; a tensor that never held a finite value is an error (its range is
 * unknowable), one that held only zeros gets amax 0 (the Q/DQ rewrite gives it the smallest scale).
 */
export async function calibrate(
  model: ModelProto, path: string, tensors: readonly string[],
  batches: AsyncIterable<TensorMap> | Iterable<TensorMap>, o: CalibrateOptions,
): Promise<Record<string, TensorRange>> {
  if (!CALIB_METHODS.includes(o.method)) {
    throw new UsageError(`unknown calibration method ${o.method}`, { code: 'INVALID_OPTION', hint: `Use one of ${CALIB_METHODS.join(', ')}.` })
  }
  const names = [...new Set(tensors)]
  const exposed = await exposeValues(model, path, names)
  try {
    return await calibrateExposed(exposed, path, names, batches, o)
  } finally {
    await exposed.close()
  }
}

/** calibrate() on a session that exposes (at least) the tensors already. */
export async function calibrateExposed(
  exposed: ExposedModel, path: string, tensors: readonly string[],
  batches: AsyncIterable<TensorMap> | Iterable<TensorMap>, o: CalibrateOptions,
): Promise<Record<string, TensorRange>> {
  if (!CALIB_METHODS.includes(o.method)) {
    throw new UsageError(`unknown calibration method ${o.method}`, { code: 'INVALID_OPTION', hint: `Use one of ${CALIB_METHODS.join(', ')}.` })
  }
  const names = [...new Set(tensors)]
  {
    const types = typesOf(exposed)
    const notFloat = names.filter((n) => types.get(n) !== 'float32')
    if (notFloat.length) {
      throw new UsageError(`cannot calibrate ${notFloat.slice(0, 3).join(', ')}${notFloat.length > 3 ? ', ...' : ''}: ${notFloat.length === 1 ? 'it is' : 'they are'} not float32 tensors of ${path}`, {
        code: 'CALIB_TENSOR_INVALID',
        hint: 'Only float32 activations take a calibrated range; give the fp32 model.',
      })
    }
    const collectors = new Map(names.map((n) => [n, new Collector(o.method, o.bins ?? DEFAULT_BINS)]))
    let done = 0
    // A graph input that needs a range (the first MatMul's input) is read from the feeds, not fetched.
    const inputs = new Set(exposed.loaded.inputs.map((v) => v.name))
    const fetched = names.filter((n) => !inputs.has(n))
    for await (const feeds of batches) {
      const out = fetched.length ? await exposed.run(feeds, fetched) : {}
      for (const n of names) collectors.get(n)!.add((inputs.has(n) ? feeds[n]! : out[n]!).data as Float32Array)
      done++
      o.onBatch?.(done)
    }
    const ranges: Record<string, TensorRange> = {}
    for (const n of names) {
      const c = collectors.get(n)!
      if (done > 0 && !(c.min <= c.max)) {
        throw new IntegrityError(`${n} held no finite value on the calibration data (${c.nonFinite} NaN or infinite values)`, {
          code: 'CALIB_NON_FINITE',
          hint: 'The model overflows on these inputs: check the calibration data (token ids inside the vocabulary, masks) and the model.',
        })
      }
      ranges[n] = c.range(o)
    }
    return ranges
  }
}
