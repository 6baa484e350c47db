/** What build-engine is asked to do: its options, checked before anything is read or written. */
import { UsageError } from '../lib/errors.js'
import type { Progress } from '../lib/progress.js'
import { validateName } from '../publish/names.js'
import { BUILD_PRECISIONS, type BuildPrecision } from '../builders/types.js'
import type { BuildTransformOptions } from '../builders/build.js'
import { EXPORTERS, type Exporter } from '../export/exporter.js'

export const TARGETS = ['trt', 'onnx'] as const
export type Target = (typeof TARGETS)[number]
/** What the onnx target serves: onnxruntime runs fp32, fp16 and Q/DQ int8 models; bf16 and best are TensorRT's. */
export const ONNX_PRECISIONS = ['fp32', 'fp16', 'int8'] as const

export interface BuildEngineOptions {
  /** The agent the version is built for. */
  agent: string
  /** A Hugging Face repo id (fetched offline-first) or a local model directory. */
  modelId: string
  /** Branch, tag or commit of a repo id (default main). */
  revision?: string
  /** Default trt. */
  target?: Target
  /** Default fp16 for trt, fp32 for onnx. */
  precision?: BuildPrecision
  /** The version's name; default v<YYYY-MM-DD> (UTC), with .1, .2 ... when taken. */
  outputVersion?: string
  /** The store root (default MODEL_STORE_ROOT, else ./model-store). */
  store?: string
  /** Point this channel at the new version (default current). */
  channel?: string
  /** Publish the version to the channel (default true). */
  publish?: boolean
  /** Build even when a version with the same build key exists. */
  force?: boolean
  /** Print the plan (steps, commands, paths); write nothing. */
  dryRun?: boolean
  /** Never touch the network (default: HF_HUB_OFFLINE). */
  offline?: boolean
  /** The HF cache (default HF_HUB_CACHE, HF_HOME/hub, ~/.cache/huggingface/hub). */
  cacheDir?: string
  /** Free-form metadata for the manifest. */
  metadata?: Record<string, unknown>
  /** Capabilities for the model registry (manifest `capabilities`), over the ones it derives. */
  capabilities?: Record<string, unknown>
  /** As finalize's: the original Python ModelStore's checksum in `checksum` (default: store.legacyChecksum). */
  legacyChecksum?: boolean
  exporter?: Exporter
  task?: string
  opset?: number
  trtexec?: string
  batch?: string
  seq?: string
  /** Decoders: the past range of the engine's profile. */
  past?: string
  dims?: Record<string, string>
  workspaceMiB?: number
  builderOptimizationLevel?: number
  hardwareCompatibilityLevel?: string
  timingCacheDir?: string
  /** int8 calibration and fp16 options, as build and quantize take them. */
  transform?: BuildTransformOptions
  atol?: readonly (string | number)[]
  rtol?: readonly (string | number)[]
  /** Reference outputs (JSON or ONNX test data) the artifact is validated against instead of the fp32 ONNX. */
  reference?: string
  /** Append a markdown summary to this file (GITHUB_STEP_SUMMARY). */
  stepSummary?: string
  /** The environment trtexec, nvidia-smi and the hub client see (default process.env). */
  env?: Record<string, string | undefined>
  /** Aborting stops trtexec, removes the staging directory and rejects with exit 130. */
  signal?: AbortSignal
  /** The clock of the default version name (tests). */
  now?: Date
  progress?: Progress
}

export interface CheckedOptions {
  target: Target
  precision: BuildPrecision
  channel: string
  publish: boolean
}

export function checkOptions(o: BuildEngineOptions): CheckedOptions {
  validateName('agent', o.agent)
  if (o.outputVersion !== undefined) validateName('version', o.outputVersion)
  const channel = o.channel ?? 'current'
  if (channel !== 'current') validateName('channel', channel)
  const target = o.target ?? 'trt'
  if (!(TARGETS as readonly string[]).includes(target)) {
    throw new UsageError(`--target ${target} is not one of ${TARGETS.join(', ')}`, { code: 'INVALID_OPTION', hint: 'Use --target trt (a TensorRT engine) or --target onnx (an ONNX model for onnxruntime).' })
  }
  const precision = o.precision ?? (target === 'trt' ? 'fp16' : 'fp32')
  const allowed: readonly string[] = target === 'trt' ? BUILD_PRECISIONS : ONNX_PRECISIONS
  if (!allowed.includes(precision)) {
    throw new UsageError(`--precision ${precision} is not one the ${target} target builds (${allowed.join(', ')})`, {
      code: 'INVALID_PRECISION',
      hint: target === 'onnx' ? 'bf16 and best are TensorRT precisions: use --target trt, or --precision fp16|int8 for onnxruntime.' : `Use one of ${allowed.join(', ')}.`,
    })
  }
  if (o.exporter !== undefined && !(EXPORTERS as readonly string[]).includes(o.exporter)) {
    throw new UsageError(`--exporter ${o.exporter} is not one of ${EXPORTERS.join(', ')}`, { code: 'INVALID_EXPORTER', hint: 'Pick auto, repo, native or optimum.' })
  }
  const t = o.transform ?? {}
  if (precision === 'int8' && t.calibData === undefined && t.calibCache === undefined) {
    throw new UsageError('An int8 build calibrates a Q/DQ model from the fp32 export, and that needs calibration data', {
      code: 'CALIB_DATA_REQUIRED',
      hint: 'Pass --calib-data <file|dir> (text, JSONL with a "text" field, or ONNX test-data inputs), or --calib-cache <file> from an earlier run.',
    })
  }
  if (target === 'onnx') {
    const trtOnly = { trtexec: o.trtexec, workspace: o.workspaceMiB, 'builder-optimization-level': o.builderOptimizationLevel, 'hardware-compatibility-level': o.hardwareCompatibilityLevel, 'timing-cache-dir': o.timingCacheDir, batch: o.batch, seq: o.seq, past: o.past, dim: o.dims && Object.keys(o.dims).length ? o.dims : undefined }
    const given = Object.entries(trtOnly).filter(([, v]) => v !== undefined).map(([k]) => `--${k}`)
    if (given.length) {
      throw new UsageError(`${given.join(', ')}: TensorRT build options, not used by --target onnx`, {
        code: 'INVALID_OPTION',
        hint: 'Drop them, or build an engine with --target trt.',
      })
    }
  }
  return { target, precision, channel, publish: o.publish ?? true }
}
