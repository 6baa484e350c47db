import { describe, expect, it } from 'vitest'
import { parsePerfSummary } from '../../src/builders/trtexec-perf.js'

describe('parsePerfSummary', () => {
  it('reads the summary of TensorRT 8 and later, every percentile it prints', () => {
    const perf = parsePerfSummary([
      '',
      '=== Performance summary ===',
      'Throughput: 691.435 qps',
      'Latency: min = 1.4209 ms, max = 3.047 ms, mean = 1.48372 ms, median = 1.43823 ms, percentile(50%) = 1.43823 ms, percentile(99.9%) = 2.9 ms',
      'GPU Compute Time: min = 1.38855 ms, max = 3.00439 ms, mean = 1.44357 ms, median = 1.39775 ms, percentile(90%) = 1.40308 ms',
      'Total Host Walltime: 3.0039 s',
      'Total GPU Compute Time: 2.9983 s',
      'Explanations of the performance metrics are printed in the verbose logs.',
      '',
      // What --dumpOutput prints after the summary: a tensor may be called anything.
      'Latency: (1x10)',
    ])
    expect(perf).toEqual({
      throughputQps: 691.435,
      latency: { min: 1.4209, max: 3.047, mean: 1.48372, median: 1.43823, percentiles: { '50': 1.43823, '99.9': 2.9 } },
      gpuCompute: { min: 1.38855, max: 3.00439, mean: 1.44357, median: 1.39775, percentiles: { '90': 1.40308 } },
      totalHostWalltimeS: 3.0039,
      totalGpuComputeS: 2.9983,
    })
  })

  it('reads the summary of TensorRT 7: a heading per metric, one statistic per line (a metric missing one is left out)', () => {
    const perf = parsePerfSummary([
      'Average on 10 runs - GPU latency: 1.56 ms - Host latency: 1.65 ms (end to end 2.76 ms, enqueue 0.94 ms)',
      'Host Latency',
      'min: 1.64058 ms (end to end 1.66368 ms)',
      'max: 6.2915 ms (end to end 7.65552 ms)',
      'mean: 1.66069 ms (end to end 3.00909 ms)',
      'median: 1.65601 ms (end to end 3.01636 ms)',
      'percentile: 1.67065 ms at 99% (end to end 3.03931 ms at 99%)',
      'throughput: 601.5 qps',
      'walltime: 3.00461 s',
      'Enqueue Time',
      'min: 0.9 ms',
      'max: 1.2 ms',
      'median: 0.93 ms',
      'GPU Compute',
      'min: 1.5 ms',
      'max: 6.1 ms',
      'mean: 1.56 ms',
      'median: 1.55 ms',
      'percentile: 1.58 ms at 99%',
      'total compute time: 2.8 s',
      'Explanations of the performance metrics are printed in the verbose logs.',
      'min: 9 ms',
    ])
    expect(perf).toEqual({
      latency: { min: 1.64058, max: 6.2915, mean: 1.66069, median: 1.65601, percentiles: { '99': 1.67065 } },
      gpuCompute: { min: 1.5, max: 6.1, mean: 1.56, median: 1.55, percentiles: { '99': 1.58 } },
      throughputQps: 601.5,
      totalHostWalltimeS: 3.00461,
      totalGpuComputeS: 2.8,
    })
  })

  it('is undefined without a summary (--skipInference, --dumpProfile without --separateProfileRun)', () => {
    expect(parsePerfSummary(['Skipped inference phase since --skipInference is added.'])).toBeUndefined()
    expect(parsePerfSummary(['The e2e network timing is not reported since it is inaccurate due to the extra synchronizations when the profiler is enabled.'])).toBeUndefined()
  })
})
