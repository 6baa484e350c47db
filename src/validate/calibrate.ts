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
import { exposeValues } from './intermediates.js'
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

  /** TensorRT's entropy threshold (see the module comment). */
  entropy(): number {
    if (this.width === 0) return 0
    // As Model Optimizer: the zero bin (exact zeros, padding) counts as much as its neighbour, so that a
    // spike at 0 does not decide the bound.
    const bins = Float64Array.from(this.counts)
    if (bins.length > 1) bins[0] = bins[1]!
    const width = this.width
    const n = bins.length
    if (n <= ENTROPY_START_BIN) return this.range
    const suffix = new Float64Array(n + 1)
    for (let i = n - 1; i >= 0; i--) suffix[i] = suffix[i + 1]! + bins[i]!
    const groupSum = new Float64Array(INT8_LEVELS)
    const groupNonZero = new Float64Array(INT8_LEVELS)
    let best = Infinity
    let bestI = n
    for (let i = ENTROPY_START_BIN; i <= n; i++) {
      groupSum.fill(0)
      groupNonZero.fill(0)
      // numpy: digitize(range(i), linspace(0, i, 129)) - 1, i.e. bin j goes to level floor(j * 128 / i).
      for (let j = 0; j < i; j++) {
        const c = bins[j]!
        if (c === 0) continue
        const g = Math.floor((j * INT8_LEVELS) / i)
        groupSum[g]! += c
        groupNonZero[g]!++
      }
      // Reference p: bins[0..i) with everything beyond folded into the last; candidate q: each level's count
      // spread evenly over its nonzero bins.
      let pTotal = 0
      let qTotal = 0
      for (let j = 0; j < i; j++) {
        pTotal += j === i - 1 ? bins[j]! + suffix[i]! : bins[j]!
        if (bins[j]! !== 0) {
          const g = Math.floor((j * INT8_LEVELS) / i)
          qTotal += groupSum[g]! / groupNonZero[g]!
        }
      }
      let kl = 0
      for (let j = 0; j < i; j++) {
        const p = j === i - 1 ? bins[j]! + suffix[i]! : bins[j]!
        if (p === 0) continue
        let q = 0
        if (bins[j]! !== 0) {
          const g = Math.floor((j * INT8_LEVELS) / i)
          q = groupSum[g]! / groupNonZero[g]!
        }
        if (q === 0) {
          kl = Infinity
          break
        }
        const pn = p / pTotal
        kl += pn * Math.log(pn / (q / qTotal))
      }
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
    const types = new Map(exposed.loaded.outputs.map((v) => [v.name, v.dtype]))
    const notFloat = names.filter((n) => types.get(n) !== 'float32')
    if (notFloat.length) {
      throw new UsageError(`cannot calibrate ${notFloat.slice(0, 3).join(', ')}${notFloat.length > 3 ? ', ...' : ''}: ${notFloat.length === 1 ? 'it is' : 'they are'} not float32 tensors of ${path}`, {
        code: 'CALIB_TENSOR_INVALID',
        hint: 'Only float32 activations take a calibrated range; give the fp32 model.',
      })
    }
    const collectors = new Map(names.map((n) => [n, new Collector(o.method, o.bins ?? DEFAULT_BINS)]))
    let done = 0
    for await (const feeds of batches) {
      const out = await exposed.run(feeds, names)
      for (const n of names) collectors.get(n)!.add(out[n]!.data as Float32Array)
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
  } finally {
    await exposed.close()
  }
}
