/**
 * engine.json: what an engine is, next to engine.plan. A TensorRT plan runs only on the TensorRT version
 * that built it and on GPUs of its compute capability (unless built hardware-compatible), and it is only
 * as good as the ONNX file it came from: the record names all three, so a reader can refuse an engine
 * built elsewhere before deserializing it (checkEngineRecord), and the store's manifest can quote it.
 */
import type { BuildPrecision, DeviceInfo, PerfSummary, ShapeProfile, TrtVersion } from './types.js'

export const ENGINE_SCHEMA = 'modelforge/engine@1'

export interface EngineRecord {
  schema: typeof ENGINE_SCHEMA
  /** ISO-8601 UTC. */
  created: string
  engine: { file: string; bytes: number; sha256: string }
  onnx: { path: string; bytes: number; sha256: string }
  precision: BuildPrecision
  /** The model's own types (an fp16 or a Q/DQ model), when they say the precision. */
  typedModel?: 'fp16' | 'qdq'
  /** The model trtexec built from when the build made it from `onnx` (quantize's int8 or fp16 model, in the engine's directory). */
  builtFrom?: { file: string; bytes: number; sha256: string; precision: 'int8' | 'fp16' }
  tensorrt: { version: string; build?: number; encoded: number }
  /** The device trtexec built on (its log's device block; nvidia-smi's when the log names none). */
  gpu?: DeviceInfo
  /** nvidia-smi's view of the same device, when the machine has nvidia-smi. */
  nvidiaSmi?: DeviceInfo
  /** The optimization profile (empty for a static model) and the shapes the benchmark and validation ran. */
  profile: ShapeProfile
  inferenceShapes: Record<string, number[]>
  options: { workspaceMiB?: number; builderOptimizationLevel?: number; hardwareCompatibilityLevel?: string }
  trtexec: {
    path: string
    /** Paths in it are relative to the engine's directory, where trtexec ran. */
    argv: string[]
    validationArgv?: string[]
  }
  timingCache?: string
  validation?: {
    passed: boolean
    /** Which of validate's rules judged it. */
    precision: string
    outputs: { name: string; maxAbsErr: number; maxRelErr: number | null; cosine: number; atol: number; rtol: number; passed: boolean }[]
  }
  performance?: PerfSummary
  /** onnxruntime only when it made the validation's reference. */
  tools: { modelforge: string; node: string; onnxruntime?: string; trtexec: string }
}

/** Where a reader is now: the TensorRT it links and the GPU it would run the engine on. */
export interface RuntimeHere {
  /** The TensorRT a reader links; absent: not checked. */
  tensorrt?: Pick<TrtVersion, 'major' | 'minor' | 'patch'>
  gpu?: Pick<DeviceInfo, 'name' | 'computeCapability'>
}

const ccNumber = (cc: string): number => Number(cc)

/**
 * Why this engine cannot run here (empty when nothing speaks against it). TensorRT refuses a plan from
 * another version ("please rebuild"); one from another compute capability too, unless it was built with
 * hardware compatibility level ampere+, which runs on any Ampere or later GPU (compute capability 8.0 and
 * up) and on nothing older; sameComputeCapability (10.9+) still needs the same capability. Another GPU
 * model of the same capability runs it, maybe slower than an engine tuned for it.
 */
export function checkEngineRecord(record: EngineRecord, here: RuntimeHere): string[] {
  const reasons: string[] = []
  const v = here.tensorrt
  const built = record.tensorrt.version
  if (v && `${v.major}.${v.minor}.${v.patch}` !== built) {
    reasons.push(`built with TensorRT ${built}, this is TensorRT ${v.major}.${v.minor}.${v.patch}: a plan loads only in the TensorRT version that built it`)
  }
  const level = record.options.hardwareCompatibilityLevel?.toLowerCase().replace(/[_-]/g, '')
  const amperePlus = level === 'ampere+' || level === 'ampereplus'
  const cc = here.gpu?.computeCapability
  if (!record.gpu) reasons.push('the record names no GPU it was built on')
  else if (cc && record.gpu.computeCapability && cc !== record.gpu.computeCapability) {
    if (!amperePlus) reasons.push(`built for compute capability ${record.gpu.computeCapability} (${record.gpu.name}), this GPU is ${cc} (${here.gpu!.name}): an engine runs only on the compute capability it was built for unless built with --hardware-compatibility-level ampere+`)
    else if (ccNumber(cc) < 8) reasons.push(`built with hardware compatibility level ampere+ (compute capability 8.0 and up), this GPU is ${cc} (${here.gpu!.name})`)
  }
  return reasons
}
