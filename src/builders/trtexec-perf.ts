/**
 * trtexec's performance summary, in the two forms it has been printed in. From TensorRT 8.0, one line per
 * metric under a heading:
 *   === Performance summary ===
 *   Throughput: 691.435 qps
 *   Latency: min = 1.4209 ms, max = 3.047 ms, mean = 1.48372 ms, median = 1.43823 ms, percentile(90%) = 1.45624 ms, ...
 *   Enqueue Time: ...   H2D Latency: ...   GPU Compute Time: ...   D2H Latency: ...   (the same statistics)
 *   Total Host Walltime: 3.0039 s
 *   Total GPU Compute Time: 2.9983 s
 * Before (TensorRT 7), one line per statistic under each metric's name, a single percentile:
 *   Host Latency
 *   min: 1.64058 ms (end to end 1.66368 ms)      max: ...   mean: ...   median: ...
 *   percentile: 1.67065 ms at 99% (end to end 3.03931 ms at 99%)
 *   throughput: 0 qps
 *   walltime: 3.00461 s
 *   Enqueue Time / H2D Latency / GPU Compute (with `total compute time: 2.9 s`) / D2H Latency
 * The input is the text of the [I] messages in order: the verbose explanation of the metrics repeats their
 * names in [V] messages, so those must not reach here.
 */
import type { PerfStat, PerfSummary } from './types.js'

type Metric = 'latency' | 'enqueue' | 'h2d' | 'gpuCompute' | 'd2h'

const NUM = String.raw`[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?`
// C++ streams print an empty trace's statistics as inf or nan.
const VALUE = String.raw`(?:${NUM}|[-+]?inf|[-+]?nan)`

const SUMMARY_LINE: Record<string, Metric> = {
  Latency: 'latency',
  'Enqueue Time': 'enqueue',
  'H2D Latency': 'h2d',
  'GPU Compute Time': 'gpuCompute',
  'D2H Latency': 'd2h',
}
const OLD_HEADING: Record<string, Metric> = {
  'Host Latency': 'latency',
  'Host latency': 'latency',
  'Enqueue Time': 'enqueue',
  'H2D Latency': 'h2d',
  'GPU Compute': 'gpuCompute',
  'D2H Latency': 'd2h',
}

const STAT_PART = new RegExp(String.raw`^(min|max|mean|median|percentile\((${NUM})%\)) = (${VALUE}) ms$`)
const OLD_STAT = new RegExp(String.raw`^(min|max|mean|median): (${VALUE}) ms\b`)
const OLD_PERCENTILE = new RegExp(String.raw`^percentile: (${VALUE}) ms at (${NUM})%`)

/** A number as trtexec printed it, or undefined for inf, nan and anything else. */
function num(text: string | undefined): number | undefined {
  if (text === undefined) return undefined
  const n = Number(text)
  return Number.isFinite(n) ? n : undefined
}

interface StatDraft {
  min?: number
  max?: number
  mean?: number
  median?: number
  percentiles: Record<string, number>
}

/** A statistic is reported only when its four base values are numbers. */
function complete(d: StatDraft | undefined): PerfStat | undefined {
  if (!d || d.min === undefined || d.max === undefined || d.mean === undefined || d.median === undefined) return undefined
  return { min: d.min, max: d.max, mean: d.mean, median: d.median, percentiles: d.percentiles }
}

/** `min = 1.42 ms, max = 3.04 ms, mean = ..., median = ..., percentile(90%) = ... ms, ...` */
function statLine(body: string): StatDraft {
  const d: StatDraft = { percentiles: {} }
  for (const part of body.split(',')) {
    const m = STAT_PART.exec(part.trim())
    if (!m) continue
    const value = num(m[3])
    if (value === undefined) continue
    if (m[2] !== undefined) d.percentiles[m[2]] = value
    else d[m[1] as 'min' | 'max' | 'mean' | 'median'] = value
  }
  return d
}

export function parsePerfSummary(info: readonly string[]): PerfSummary | undefined {
  const perf: PerfSummary = {}
  const drafts: Partial<Record<Metric, StatDraft>> = {}
  let inSummary = false
  let heading: Metric | undefined
  for (const raw of info) {
    const text = raw.trim()
    if (/^=== .* ===$/.test(text)) {
      inSummary = text === '=== Performance summary ==='
      heading = undefined
      continue
    }
    if (inSummary) {
      // The summary ends with an empty message; output dumps that follow may name a tensor "Latency".
      if (!text) {
        inSummary = false
        continue
      }
      const m = /^([A-Za-z2 ]+): (.*)$/.exec(text)
      if (!m) continue
      const [, name, body] = m
      if (name in SUMMARY_LINE) drafts[SUMMARY_LINE[name]] = statLine(body)
      else if (name === 'Throughput') perf.throughputQps = num(/^(\S+) qps/.exec(body)?.[1]) ?? perf.throughputQps
      else if (name === 'Total Host Walltime') perf.totalHostWalltimeS = num(/^(\S+) s$/.exec(body)?.[1]) ?? perf.totalHostWalltimeS
      else if (name === 'Total GPU Compute Time') perf.totalGpuComputeS = num(/^(\S+) s$/.exec(body)?.[1]) ?? perf.totalGpuComputeS
      continue
    }
    if (text in OLD_HEADING) {
      heading = OLD_HEADING[text]
      drafts[heading] = { percentiles: {} }
      continue
    }
    if (!heading) continue
    const draft = drafts[heading]!
    let m: RegExpExecArray | null
    if ((m = OLD_STAT.exec(text))) {
      const value = num(m[2])
      if (value !== undefined) draft[m[1] as 'min' | 'max' | 'mean' | 'median'] = value
    } else if ((m = OLD_PERCENTILE.exec(text))) {
      const value = num(m[1])
      if (value !== undefined) draft.percentiles[m[2]] = value
    } else if ((m = /^throughput: (\S+) qps/.exec(text))) perf.throughputQps = num(m[1])
    else if ((m = /^walltime: (\S+) s$/.exec(text))) perf.totalHostWalltimeS = num(m[1])
    else if ((m = /^total compute time: (\S+) s$/.exec(text))) perf.totalGpuComputeS = num(m[1])
    else heading = undefined
  }
  for (const metric of ['latency', 'enqueue', 'h2d', 'gpuCompute', 'd2h'] as const) {
    const stat = complete(drafts[metric])
    if (stat) perf[metric] = stat
  }
  for (const key of Object.keys(perf) as (keyof PerfSummary)[]) if (perf[key] === undefined) delete perf[key]
  return Object.keys(perf).length > 0 ? perf : undefined
}
