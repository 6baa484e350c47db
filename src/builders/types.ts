/**
 * The shapes the trtexec driver's parts agree on: the TensorRT version read from trtexec's banner, what a
 * log says (device, timings, the performance summary, a classified failure), the build options that become
 * an argument list, and the shape profile. One file so that the version reader, the argument builder, the
 * log parser and the driver can be written and tested apart.
 */

/** TensorRT as trtexec names itself: `&&&& RUNNING TensorRT.trtexec [TensorRT v101601] [b11] # ...`. */
export interface TrtVersion {
  major: number
  minor: number
  patch: number
  /** The `[bNN]` build tag (10.4 and later). */
  build?: number
  /** The number in the banner: 8.x major*1000+minor*100+patch, 10.x and later major*10000+minor*100+patch. */
  encoded: number
  /** "10.16.1". */
  text: string
}

export type BuildPrecision = 'fp32' | 'fp16' | 'bf16' | 'int8' | 'best'
export const BUILD_PRECISIONS: readonly BuildPrecision[] = ['fp32', 'fp16', 'bf16', 'int8', 'best']

export interface DeviceInfo {
  name: string
  /** "8.6". */
  computeCapability?: string
  memoryMiB?: number
  uuid?: string
  /** Where the facts came from: trtexec's device block, or nvidia-smi. */
  source: 'trtexec' | 'nvidia-smi'
}

/** One line of the performance summary, in milliseconds; percentiles keyed by their number ("90", "99"). */
export interface PerfStat {
  min: number
  max: number
  mean: number
  median: number
  percentiles: Record<string, number>
}

export interface PerfSummary {
  throughputQps?: number
  latency?: PerfStat
  enqueue?: PerfStat
  h2d?: PerfStat
  gpuCompute?: PerfStat
  d2h?: PerfStat
  totalHostWalltimeS?: number
  totalGpuComputeS?: number
}

/** Why trtexec failed, as far as its log tells. */
export type FailureClass =
  | 'unknown-option' // an option trtexec does not know (or a space-separated value)
  | 'invalid-value' // a known option with a value it cannot parse
  | 'onnx-parse' // the ONNX parser refused the model
  | 'unsupported-op' // no importer or plugin for an operator
  | 'no-implementation' // the builder found no kernel for a node
  | 'out-of-memory' // the build ran out of GPU (or host) memory
  | 'no-gpu' // no CUDA device, or no driver
  | 'cuda' // another CUDA failure
  | 'engine-incompatible' // a plan built for another GPU or TensorRT version
  | 'input-mismatch' // --loadInputs or --shapes that do not fit the engine
  | 'crash' // killed by a signal (segfault, abort)
  | 'unknown'

export interface TrtexecFailure {
  class: FailureClass
  /** One sentence: what went wrong. */
  cause: string
  /** The operator an unsupported-op failure names. */
  op?: string
  /** The node a parse or no-implementation failure names. */
  node?: string
  /** The last [E] lines (without timestamps), for the error message. */
  lastErrors: string[]
  /** What to do about it. */
  hint: string
}

export interface ParsedLog {
  version?: TrtVersion
  /** The argv after `#` on the banner. */
  commandLine?: string
  device?: DeviceInfo
  /** `Precision: FP32+FP16` from the options dump, as printed. */
  precision?: string
  parseTimeS?: number
  /** `Engine built in X sec.` */
  buildTimeS?: number
  /** `Created engine with size: X MiB` (or `Loaded engine with size`). */
  engineSizeMiB?: number
  /** [W] messages, without timestamps. */
  warnings: string[]
  /** [E] messages, without timestamps. */
  errors: string[]
  perf?: PerfSummary
  /** From the closing `&&&& PASSED|FAILED` line; 'unknown' when there is none (a crash, a CUDA failure). */
  status: 'passed' | 'failed' | 'unknown'
  failure?: TrtexecFailure
}

/** min/opt/max of one input's shape. */
export interface ShapeRange {
  min: number[]
  opt: number[]
  max: number[]
}

/** One optimization profile: input name -> its range. Empty for a static model. */
export type ShapeProfile = Record<string, ShapeRange>

export interface BuildArgvOptions {
  version: TrtVersion
  onnx: string
  engine: string
  precision: BuildPrecision
  /** The model's own types say the precision (an fp16 or Q/DQ model): strongly typed where TensorRT allows. */
  typedModel?: 'fp16' | 'qdq'
  profile: ShapeProfile
  workspaceMiB?: number
  builderOptimizationLevel?: number
  hardwareCompatibilityLevel?: string
  timingCacheFile?: string
  layerInfo?: string
  times?: string
  profileJson?: string
  skipBenchmark?: boolean
}

export interface ValidateArgvOptions {
  version: TrtVersion
  engine: string
  /** The inference shape of each dynamic input. */
  shapes: Record<string, number[]>
  /** input name -> raw little-endian file. */
  inputs: Record<string, string>
  /** Where --exportOutput writes. */
  output: string
}
