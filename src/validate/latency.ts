/**
 * The latency of an ONNX model in onnxruntime-node (CPU unless the session options say otherwise), for the
 * performance section of a version built for the onnx target, where no trtexec summary exists. The inputs
 * are generated as validate generates them (one batch at a fixed sequence length); the first runs warm the
 * session up and are not counted, and the measurement stops at a run count or a time budget, whichever
 * comes first, so that it costs a bounded share of a build.
 */
import { generateInputs, modelHints } from './inputs.js'
import { closeModel, loadModel, runModel, type LoadOptions } from './runtime.js'

export interface LatencyOptions {
  /** Samples per run (symbolic batch dims). Default 1: what one request costs. */
  batch?: number
  /** Symbolic sequence dims. Default 128, capped at the model's max positions. */
  sequenceLength?: number
  /** Runs not counted. Default 1. */
  warmup?: number
  /** Counted runs at most. Default 10: a build measures a model, it does not benchmark it (trtexec does that for engines). */
  iterations?: number
  /** Stop counting after this many milliseconds (at least 3 runs are counted). Default 1000. */
  budgetMs?: number
  load?: LoadOptions
}

export interface LatencyStats {
  min: number
  max: number
  mean: number
  median: number
  p90: number
  p95: number
  p99: number
}

export interface LatencyResult {
  runtime: 'onnxruntime-node'
  /** The execution providers asked for (default cpu). */
  executionProviders: string[]
  shapes: Record<string, number[]>
  batch: number
  iterations: number
  warmup: number
  /** Milliseconds per run. */
  latencyMs: LatencyStats
  /** Samples per second at the median latency. */
  throughputQps: number
}

/** The q-quantile of sorted values, by linear interpolation between the two nearest ranks. */
function quantile(sorted: number[], q: number): number {
  const pos = (sorted.length - 1) * q
  const lo = Math.floor(pos)
  const hi = Math.ceil(pos)
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo)
}

const round = (ms: number): number => Math.round(ms * 1000) / 1000

export function latencyStats(samples: readonly number[]): LatencyStats {
  const s = [...samples].sort((a, b) => a - b)
  return {
    min: round(s[0]!),
    max: round(s[s.length - 1]!),
    mean: round(s.reduce((a, b) => a + b, 0) / s.length),
    median: round(quantile(s, 0.5)),
    p90: round(quantile(s, 0.9)),
    p95: round(quantile(s, 0.95)),
    p99: round(quantile(s, 0.99)),
  }
}

export async function measureLatency(modelPath: string, options: LatencyOptions = {}): Promise<LatencyResult> {
  const batch = options.batch ?? 1
  const warmup = options.warmup ?? 1
  const maxRuns = options.iterations ?? 10
  const budget = options.budgetMs ?? 1000
  const hints = await modelHints(modelPath)
  const sequenceLength = Math.min(options.sequenceLength ?? 128, hints.maxPositions ?? Number.POSITIVE_INFINITY)
  const model = await loadModel(modelPath, options.load)
  try {
    const inputs = generateInputs(model.inputs, { ...hints, samples: batch, sequenceLength })
    for (let i = 0; i < warmup; i++) await runModel(model, inputs)
    const samples: number[] = []
    const started = performance.now()
    while (samples.length < maxRuns && (samples.length < 3 || performance.now() - started < budget)) {
      const t0 = performance.now()
      await runModel(model, inputs)
      samples.push(performance.now() - t0)
    }
    const latencyMs = latencyStats(samples)
    const providers = options.load?.sessionOptions?.executionProviders
    return {
      runtime: 'onnxruntime-node',
      executionProviders: providers ? providers.map((p) => (typeof p === 'string' ? p : p.name)) : ['cpu'],
      shapes: Object.fromEntries(Object.entries(inputs).map(([k, t]) => [k, t.dims])),
      batch,
      iterations: samples.length,
      warmup,
      latencyMs,
      throughputQps: round((batch * 1000) / latencyMs.median),
    }
  } finally {
    await closeModel(model)
  }
}
