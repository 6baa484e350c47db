/**
 * The benchmark: a trace of queries that covers the requested --warmUp and --duration, computed rather than
 * waited for, and reported with trtexec's arithmetic (samples/common/sampleReporting.cpp). Each query's host
 * latency is exactly h2d + compute + d2h; percentiles take the element at N-1-int((1-p/100)N) of the sorted
 * values; the median is the middle (or the mean of the two middles); throughput is queries over the host
 * walltime from the first measured query's H2D start to the last query's D2H end. Timestamps and
 * statistics are float32 as in trtexec, so what the log prints is what a reader can recompute.
 */
import { writeFileSync } from 'node:fs'
import { prng } from '../../../src/lib/random.js'
import { cpp, cppFloat } from './format.js'
import type { Log } from './log.js'
import type { Options } from './options.js'

export interface Query {
  enqStart: number; enqEnd: number
  h2dStart: number; h2dEnd: number
  computeStart: number; computeEnd: number
  d2hStart: number; d2hEnd: number
}

export interface Costs {
  /** Mean GPU compute time of one query, ms. */
  computeMs: number
  h2dMs: number
  d2hMs: number
  enqueueMs: number
}

const f = Math.fround

/** A standard normal draw (Box-Muller) from the seeded generator. */
function gauss(rand: () => number): number {
  const u = Math.max(rand(), 1e-12)
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand())
}

/**
 * Queries run back to back on one stream: the host enqueues at most two ahead of the GPU, each query's H2D
 * starts when the previous D2H ends (or its enqueue is done), compute follows H2D, D2H follows compute.
 * The run stops once the measured part lasts --duration seconds and holds --iterations queries.
 */
export function simulate(o: Options, c: Costs, seed: number): { trace: Query[]; warmups: number } {
  const rand = prng(seed)
  const jitter = (mean: number, spread: number) => {
    // Mostly steady, with the occasional slow query real GPUs show (clock changes, other work).
    const slow = rand() < 0.005 ? 1.2 + rand() * 0.8 : 1
    return Math.max(mean * 0.5, mean * (1 + spread * gauss(rand)) * slow)
  }
  const trace: Query[] = []
  const warmupMs = o.warmUp
  const durationMs = o.duration * 1000
  let warmups = -1
  let firstH2d = 0
  for (let i = 0; ; i++) {
    const prev = trace[i - 1]
    const prev2 = trace[i - 2]
    const enqStart = f(Math.max(prev?.enqEnd ?? 0.05, prev2?.d2hEnd ?? 0) + 0.001 + o.idleTime)
    const enqEnd = f(enqStart + jitter(c.enqueueMs, 0.08))
    const h2dStart = f(Math.max(prev?.d2hEnd ?? 0, enqStart + 0.002) + o.sleepTime)
    const h2dEnd = f(h2dStart + (c.h2dMs > 0 ? jitter(c.h2dMs, 0.1) : 0))
    const computeStart = h2dEnd
    const computeEnd = f(computeStart + jitter(c.computeMs, 0.03))
    const d2hStart = computeEnd
    const d2hEnd = f(d2hStart + (c.d2hMs > 0 ? jitter(c.d2hMs, 0.05) : 0))
    trace.push({ enqStart, enqEnd, h2dStart, h2dEnd, computeStart, computeEnd, d2hStart, d2hEnd })
    if (warmups < 0 && computeStart >= warmupMs) {
      warmups = i
      firstH2d = h2dStart
    }
    if (warmups >= 0 && i + 1 - warmups >= o.iterations && d2hEnd - firstH2d >= durationMs) break
  }
  return { trace, warmups }
}

interface Timing { enq: number; h2d: number; compute: number; d2h: number; latency: number }

function timing(q: Query): Timing {
  const enq = f(q.enqEnd - q.enqStart)
  const h2d = f(q.h2dEnd - q.h2dStart)
  const compute = f(q.computeEnd - q.computeStart)
  const d2h = f(q.d2hEnd - q.d2hStart)
  return { enq, h2d, compute, d2h, latency: f(f(h2d + compute) + d2h) }
}

export interface Stat { min: number; max: number; mean: number; median: number; percentiles: number[]; coeffVar: number }

/** getPerformanceResult, float32 throughout as in the C++. */
export function statistic(values: readonly number[], percentiles: readonly number[]): Stat {
  const sorted = [...values].sort((a, b) => a - b)
  const n = sorted.length
  let sum = 0
  for (const v of sorted) sum = f(sum + v)
  const mean = f(sum / n)
  const m = Math.floor(n / 2)
  const median = n % 2 ? sorted[m]! : f((sorted[m - 1]! + sorted[m]!) / 2)
  const pct = percentiles.map((p) => sorted[Math.max(n - 1 - Math.trunc((1 - p / 100) * n), 0)]!)
  let sq = 0
  for (const v of sorted) sq = f(sq + f(v - mean) * f(v - mean))
  const coeffVar = mean === 0 ? Infinity : f(Math.sqrt(f(sq / n)) / mean * 100)
  return { min: sorted[0]!, max: sorted[n - 1]!, mean, median, percentiles: pct, coeffVar }
}

function statText(s: Stat, percentiles: readonly number[]): string {
  const ps = percentiles.map((p, i) => `, percentile(${cpp(p)}%) = ${cppFloat(s.percentiles[i]!)} ms`).join('')
  return `min = ${cppFloat(s.min)} ms, max = ${cppFloat(s.max)} ms, mean = ${cppFloat(s.mean)} ms, median = ${cppFloat(s.median)} ms${ps}`
}

/** printPerformanceReport: prolog, trace averages, summary, warnings; and --exportTimes. */
export function report(log: Log, o: Options, trace: Query[], warmups: number): void {
  const measured = trace.slice(warmups)
  const benchMs = f(trace.at(-1)!.d2hEnd - measured[0]!.h2dStart)
  log.info(`Warmup completed ${warmups} queries over ${cpp(o.warmUp)} ms`)
  log.info(`Timing trace has ${measured.length} queries over ${cppFloat(benchMs / 1000)} s`)
  const timings = measured.map(timing)
  log.info()
  log.info('=== Trace details ===')
  log.info(`Trace averages of ${o.avgRuns} runs:`)
  // 10.x prints the first and last 200 groups and says how many queries it left out.
  const cap = 200 * o.avgRuns
  const omit = o.version.major >= 10 && timings.length > 2 * cap
  let sum = { enq: 0, h2d: 0, compute: 0, d2h: 0 }
  let count = 0
  for (let i = 0; i < timings.length; i++) {
    if (omit && i === cap) {
      log.info(`... Omitting ${timings.length - 2 * cap} lines`)
      i = timings.length - cap - 1
      continue
    }
    const t = timings[i]!
    sum = { enq: f(sum.enq + t.enq), h2d: f(sum.h2d + t.h2d), compute: f(sum.compute + t.compute), d2h: f(sum.d2h + t.d2h) }
    if (++count === o.avgRuns) {
      const latency = f(f(sum.h2d + sum.compute) + sum.d2h)
      log.info(`Average on ${o.avgRuns} runs - GPU latency: ${cppFloat(sum.compute / o.avgRuns)} ms - Host latency: ${cppFloat(latency / o.avgRuns)} ms (enqueue ${cppFloat(sum.enq / o.avgRuns)} ms)`)
      count = 0
      sum = { enq: 0, h2d: 0, compute: 0, d2h: 0 }
    }
  }
  const p = o.percentiles
  const latency = statistic(timings.map((t) => t.latency), p)
  const enqueue = statistic(timings.map((t) => t.enq), p)
  const h2d = statistic(timings.map((t) => t.h2d), p)
  const compute = statistic(timings.map((t) => t.compute), p)
  const d2h = statistic(timings.map((t) => t.d2h), p)
  log.info()
  log.info('=== Performance summary ===')
  log.info(`Throughput: ${cppFloat(measured.length / benchMs * 1000)} qps`)
  log.info(`Latency: ${statText(latency, p)}`)
  log.info(`Enqueue Time: ${statText(enqueue, p)}`)
  log.info(`H2D Latency: ${statText(h2d, p)}`)
  log.info(`GPU Compute Time: ${statText(compute, p)}`)
  log.info(`D2H Latency: ${statText(d2h, p)}`)
  log.info(`Total Host Walltime: ${cppFloat(benchMs / 1000)} s`)
  log.info(`Total GPU Compute Time: ${cppFloat(compute.mean * measured.length / 1000)} s`)
  if (enqueue.median > 0.8 * compute.median) {
    log.warn('* Throughput may be bound by Enqueue Time rather than GPU Compute and the GPU may be under-utilized.')
    log.warn('  If not already in use, --useCudaGraph (utilize CUDA graphs where possible) may increase the throughput.')
  }
  if (h2d.median >= compute.median) {
    log.warn('* Throughput may be bound by host-to-device transfers for the inputs rather than GPU Compute and the GPU may be under-utilized.')
    log.warn('  Add --noDataTransfers flag to disable data transfers.')
  }
  if (d2h.median >= compute.median) {
    log.warn('* Throughput may be bound by device-to-host transfers for the outputs rather than GPU Compute and the GPU may be under-utilized.')
    log.warn('  Add --noDataTransfers flag to disable data transfers.')
  }
  if (compute.coeffVar > 2.5) {
    log.warn(`* GPU compute time is unstable, with coefficient of variance = ${cppFloat(compute.coeffVar)}%.`)
    log.warn('  If not already in use, locking GPU clock frequency or adding --useSpinWait may improve the stability.')
  }
  if (o.infStreams > 1) {
    log.warn('* Multiple inference streams are used. Latencies may not be accurate since inferences may run in   parallel. Please use "Throughput" as the performance metric instead.')
  }
  log.info('Explanations of the performance metrics are printed in the verbose logs.')
  log.line('V', '')
  log.line('V', '=== Explanations of the performance metrics ===')
  log.line('V', 'Latency: the summation of H2D Latency, GPU Compute Time, and D2H Latency. This is the latency to infer a single query.')
  log.info()
  if (o.exportTimes) writeTimes(o.exportTimes, trace, warmups)
}

/** exportJSONTrace: the measured queries, `, ` at the start of every line after the first. */
export function writeTimes(path: string, trace: Query[], warmups: number): void {
  const lines = trace.slice(warmups).map((q, i) => {
    const t = timing(q)
    const kv = [
      ['startEnqMs', q.enqStart], ['endEnqMs', q.enqEnd], ['startH2dMs', q.h2dStart], ['endH2dMs', q.h2dEnd],
      ['startComputeMs', q.computeStart], ['endComputeMs', q.computeEnd], ['startD2hMs', q.d2hStart], ['endD2hMs', q.d2hEnd],
      ['h2dMs', t.h2d], ['computeMs', t.compute], ['d2hMs', t.d2h], ['latencyMs', t.latency],
    ] as const
    return `${i === 0 ? '  ' : ', '}{ ${kv.map(([k, v]) => `"${k}" : ${cppFloat(v)}`).join(', ')} }`
  })
  writeFileSync(path, `[\n${lines.join('\n')}${lines.length ? '\n' : ''}]\n`)
}

export interface LayerTime { name: string; times: number[] }

/** Per-layer times of a profiled run: the compute time split over the layers by their share of the work. */
export function profileLayers(names: readonly string[], shares: readonly number[], iterations: number, computeMs: number, seed: number): LayerTime[] {
  const rand = prng(seed ^ 0x5bd1e995)
  const total = shares.reduce((a, b) => a + b, 0) || 1
  return names.map((name, i) => {
    const mean = computeMs * (shares[i]! / total)
    return { name, times: Array.from({ length: iterations }, () => f(Math.max(mean * 0.3, mean * (1 + 0.05 * gauss(rand))))) }
  })
}

function layerStats(t: LayerTime): { total: number; avg: number; median: number } {
  let total = 0
  for (const x of t.times) total = f(total + x)
  const s = [...t.times].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  const median = s.length % 2 ? s[m]! : f((s[m - 1]! + s[m]!) / 2)
  return { total, avg: f(total / t.times.length), median }
}

/** Profiler::print (--dumpProfile). */
export function printProfile(log: Log, layers: LayerTime[]): void {
  const count = layers[0]?.times.length ?? 0
  const stats = layers.map(layerStats)
  const total = stats.reduce((a, s) => f(a + s.total), 0)
  const perIter = Array.from({ length: count }, (_, k) => layers.reduce((a, l) => f(a + l.times[k]!), 0)).sort((a, b) => a - b)
  const mid = Math.floor(count / 2)
  const medianTotal = count % 2 ? perIter[mid]! : f((perIter[mid - 1]! + perIter[mid]!) / 2)
  const row = (t: number, a: number, m: number, p: number, name: string) =>
    `${t.toFixed(2).padStart(11)}${a.toFixed(4).padStart(13)}${m.toFixed(4).padStart(13)}${p.toFixed(1).padStart(10)}   ${name}`
  log.info()
  log.info(`=== Profile (${count} iterations ) ===`)
  log.info('   Time(ms)     Avg.(ms)   Median(ms)   Time(%)   Layer')
  layers.forEach((l, i) => log.info(row(stats[i]!.total, stats[i]!.avg, stats[i]!.median, stats[i]!.total / total * 100, l.name)))
  log.info(row(total, total / count, medianTotal, 100, 'Total'))
  log.info()
}

/** Profiler::exportJSONProfile (--exportProfile): the iteration count first, then one record per layer. */
export function writeProfile(path: string, layers: LayerTime[]): void {
  const count = layers[0]?.times.length ?? 0
  const stats = layers.map(layerStats)
  const total = stats.reduce((a, s) => f(a + s.total), 0)
  const lines = layers.map((l, i) => {
    const s = stats[i]!
    return `, { "name" : ${JSON.stringify(l.name)}, "timeMs" : ${cppFloat(s.total)}, "averageMs" : ${cppFloat(s.avg)}, "medianMs" : ${cppFloat(s.median)}, "percentage" : ${cppFloat(s.total / total * 100)} }`
  })
  writeFileSync(path, `[\n  { "count" : ${count} }\n${lines.join('\n')}${lines.length ? '\n' : ''}]\n`)
}
