/**
 * Activation ranges: each method on data with a known answer, the streaming histogram against a one-shot
 * one, and calibrate() on a real model fetching only what it was asked for.
 */
import { describe, expect, it } from 'vitest'
import { ModelforgeError } from '../../src/lib/errors.js'
import { prng } from '../../src/lib/random.js'
import { readModel } from '../../src/onnx/proto.js'
import { AbsHistogram, calibrate, type CalibMethod } from '../../src/validate/calibrate.js'
import { generateInputs } from '../../src/validate/inputs.js'
import { loadModel } from '../../src/validate/runtime.js'

const BERT = 'fixtures/hf-tiny/tiny-bert/model.onnx'

function gaussian(n: number, seed: number, sigma = 1): Float32Array {
  const r = prng(seed)
  const out = new Float32Array(n)
  for (let i = 0; i < n; i += 2) {
    const u = Math.max(r(), 1e-12)
    const v = r()
    const m = Math.sqrt(-2 * Math.log(u)) * sigma
    out[i] = m * Math.cos(2 * Math.PI * v)
    if (i + 1 < n) out[i + 1] = m * Math.sin(2 * Math.PI * v)
  }
  return out
}

function absMax(a: Float32Array): number {
  let m = 0
  for (const v of a) m = Math.max(m, Math.abs(v))
  return m
}


/** Model Optimizer's _compute_amax_entropy transcribed loop for loop (O(n^2)), to check the fast one. */
function entropyReference(counts: Float64Array, width: number): number {
  const bins = Float64Array.from(counts)
  bins[0] = bins[1]!
  const total = bins.reduce((a, b) => a + b, 0)
  let best = Infinity
  let bestI = bins.length
  for (let i = 128; i <= bins.length; i++) {
    const sums = new Float64Array(128)
    const nonzero = new Float64Array(128)
    for (let j = 0; j < i; j++) if (bins[j]) { sums[Math.floor((j * 128) / i)]! += bins[j]!; nonzero[Math.floor((j * 128) / i)]!++ }
    const p = Array.from(bins.slice(0, i))
    p[i - 1]! += total - p.reduce((a, b) => a + b, 0)
    const q = p.map((_, j) => (bins[j] ? sums[Math.floor((j * 128) / i)]! / nonzero[Math.floor((j * 128) / i)]! : 0))
    const ps = p.reduce((a, b) => a + b, 0)
    const qs = q.reduce((a, b) => a + b, 0)
    let kl = 0
    for (let j = 0; j < i; j++) {
      if (!p[j]) continue
      kl += q[j] ? (p[j]! / ps) * Math.log((p[j]! / ps) / (q[j]! / qs)) : Infinity
    }
    if (kl <= best) { best = kl; bestI = i }
  }
  return bestI * width
}

describe('the |x| histogram', () => {
  it('reads percentiles within a bin of the exact ones', () => {
    const x = Float32Array.from({ length: 100_000 }, (_, i) => (i % 2 ? -1 : 1) * (i / 100_000) * 10)
    const h = new AbsHistogram()
    h.add(x, absMax(x))
    expect(h.total).toBe(100_000)
    expect(Math.abs(h.percentile(50) - 5)).toBeLessThanOrEqual(h.width)
    expect(Math.abs(h.percentile(99) - 9.9)).toBeLessThanOrEqual(h.width)
    expect(h.percentile(100)).toBeCloseTo(absMax(x), 5)
  })

  it('grows as later batches reach further and then holds the counts a one-shot histogram of the same bins holds', () => {
    const a = gaussian(20_000, 1)
    const b = gaussian(20_000, 2, 3)
    const streamed = new AbsHistogram()
    streamed.add(a, absMax(a))
    const width = streamed.width
    streamed.add(b, absMax(b))
    expect(streamed.width).toBe(width)
    expect(streamed.counts.length).toBe(Math.ceil(absMax(b) / width))
    const counts = new Float64Array(streamed.counts.length)
    // As numpy's histogram, a batch's own max lands in the last bin it had then (the edge is inclusive).
    const bin = (v: number, bins: number) => Math.min(bins - 1, Math.floor(Math.abs(v) * (1 / width)))
    for (const v of a) counts[bin(v, 2048)]!++
    for (const v of b) counts[bin(v, counts.length)]!++
    expect([...streamed.counts]).toEqual([...counts])
  })

  it('merges bins in pairs past 8192 bins, keeping every count', () => {
    const h = new AbsHistogram()
    h.add(Float32Array.of(1, -0.5), 1)
    h.add(Float32Array.of(100), 100)
    expect(h.counts.length).toBeLessThanOrEqual(8192)
    expect(h.total).toBe(3)
    expect(h.range).toBeGreaterThanOrEqual(100)
  })

  it('counts all-zero batches before the width is known', () => {
    const h = new AbsHistogram()
    h.add(new Float32Array(10), 0)
    h.add(Float32Array.of(2), 2)
    expect(h.total).toBe(11)
    expect(h.counts[0]).toBe(10)
  })

  it('entropy gives Model Optimizer\'s threshold (its loops transcribed) on gaussian, skewed and spiky data', () => {
    const r = prng(9)
    const cases = [gaussian(50_000, 4), Float32Array.from({ length: 30_000 }, () => Math.exp(3 * r()) - 1), Float32Array.from({ length: 5_000 }, (_, i) => (i % 7) * 0.1)]
    for (const data of cases) {
      const h = new AbsHistogram(512)
      h.add(data, absMax(data))
      const fast = h.entropy()
      const slow = entropyReference(h.counts, h.width)
      // Sums in another order can move a tie between candidates by a bin.
      expect(Math.abs(fast - slow)).toBeLessThanOrEqual(h.width * 1.0001)
    }
  })

  it('entropy picks a bound between the 99th percentile and the max of gaussian data, and ignores one huge outlier', () => {
    const x = gaussian(200_000, 3)
    const h = new AbsHistogram()
    h.add(x, absMax(x))
    const t = h.entropy()
    expect(t).toBeGreaterThan(h.percentile(99))
    expect(t).toBeLessThan(absMax(x))
    const withOutlier = Float32Array.from([...x, 60])
    const o = new AbsHistogram()
    o.add(withOutlier, 60)
    expect(o.entropy()).toBeLessThan(10)
  })
})

describe('calibrate on tiny-bert', () => {
  async function batches(n: number) {
    const m = await loadModel(BERT)
    const out = Array.from({ length: n }, (_, i) => generateInputs(m.inputs, { vocabSize: 43, samples: 4, sequenceLength: 12, seed: i }))
    await m.session.release()
    return out
  }

  it('gives each requested tensor a finite positive amax, per method (minmax the largest), counting batches', async () => {
    const model = await readModel(BERT)
    const tensors = (model.graph!.node ?? []).filter((n) => n.opType === 'MatMul').map((n) => n.input![0]!).slice(0, 6)
    const data = await batches(3)
    const got: Record<string, Record<string, { amax: number; min: number; max: number }>> = {}
    for (const method of ['minmax', 'percentile', 'entropy'] as CalibMethod[]) {
      let seen = 0
      got[method] = await calibrate(model, BERT, tensors, data, { method, onBatch: (d) => (seen = d) })
      expect(seen).toBe(3)
      expect(Object.keys(got[method]!).sort()).toEqual([...new Set(tensors)].sort())
      for (const r of Object.values(got[method]!)) {
        expect(r.amax).toBeGreaterThan(0)
        expect(Number.isFinite(r.amax)).toBe(true)
      }
    }
    for (const t of tensors) {
      const mm = got.minmax![t]!
      expect(mm.amax).toBe(Math.max(Math.abs(mm.min), Math.abs(mm.max)))
      expect(got.entropy![t]!.amax).toBeLessThanOrEqual(mm.amax)
      expect(got.percentile![t]!.amax).toBeLessThanOrEqual(mm.amax)
    }
  })

  it('refuses a tensor that is not float32, or not in the model', async () => {
    const model = await readModel(BERT)
    const err = await calibrate(model, BERT, ['input_ids'], await batches(1), { method: 'minmax' }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ModelforgeError)
    expect(err).toMatchObject({ code: 'CALIB_TENSOR_INVALID', exitCode: 2 })
    const unknown = await calibrate(model, BERT, ['no_such_tensor'], await batches(1), { method: 'minmax' }).catch((e: unknown) => e)
    expect(unknown).toBeInstanceOf(ModelforgeError)
  })
})
