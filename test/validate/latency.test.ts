import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { latencyStats, measureLatency } from '../../src/validate/latency.js'
import { repoRoot } from '../helpers/store-helpers.js'

describe('onnxruntime latency', () => {
  it('statistics by linear interpolation between ranks', () => {
    expect(latencyStats([4, 1, 3, 2, 5])).toEqual({ min: 1, max: 5, mean: 3, median: 3, p90: 4.6, p95: 4.8, p99: 4.96 })
    expect(latencyStats([2])).toMatchObject({ min: 2, median: 2, p99: 2 })
  })

  it('measures a real model at batch 1, the sequence capped at its max positions, within the run count', async () => {
    const r = await measureLatency(join(repoRoot, 'fixtures', 'hf-tiny', 'tiny-bert', 'model.onnx'), { iterations: 5, warmup: 1 })
    expect(r.iterations).toBe(5)
    expect(r.shapes.input_ids).toEqual([1, 64])
    expect(r.executionProviders).toEqual(['cpu'])
    expect(r.latencyMs.min).toBeGreaterThan(0)
    expect(r.latencyMs.min).toBeLessThanOrEqual(r.latencyMs.median)
    expect(r.latencyMs.median).toBeLessThanOrEqual(r.latencyMs.max)
    expect(r.throughputQps).toBeCloseTo(1000 / r.latencyMs.median, 0)
  })
})
