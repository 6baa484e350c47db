/**
 * build: an ONNX model -> a TensorRT engine with trtexec, proven against onnxruntime, in --out:
 *
 *   engine.plan    the engine (trtexec --saveEngine)
 *   engine.json    what it is: GPU, compute capability, TensorRT version, precision, profile, the ONNX
 *                  file's sha256, the argv, tool versions (engine-record.ts)
 *   build.log      trtexec's whole log (stdout and stderr interleaved)
 *   layers.json    --exportLayerInfo (profilingVerbosity=detailed)
 *   times.json     --exportTimes, profile.json --exportProfile, perf.json the parsed performance summary
 *                  (none of the three with skipBenchmark: no inference runs)
 *   validation/    the raw inputs of the validation run (absent with skipValidation)
 *
 * trtexec runs in a staging directory beside --out with paths relative to it, so the argument lists in
 * engine.json hold for --out itself; the staging directory becomes --out only at the end (out-dir.ts).
 * Library code: it reports steps through `progress` and returns the result; it never prints.
 */
import { existsSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { ExternalError, InterruptedError, UsageError } from '../lib/errors.js'
import { modelforgeCacheDir, timingCacheDir } from '../lib/env.js'
import { sha256File } from '../lib/hash.js'
import { nestProgress, planSteps, runStep, skipStep, type Progress } from '../lib/progress.js'
import { listFiles } from '../lib/tree.js'
import { modelforgeVersion } from '../lib/version.js'
import { assertWellFormed, inspectModel, type ModelInspection } from '../onnx/inspect.js'
import { checkToleranceNames, parseTolerance, type Tolerance } from '../validate/compare.js'
import { modelHints } from '../validate/inputs.js'
import { validationError, type ValidateResult } from '../validate/report.js'
import { quantizeModel, type QuantizeOptions, type QuantizeResult } from '../validate/quantize.js'
import { buildArgv, shellCommand } from './argv.js'
import { ENGINE_SCHEMA, type EngineRecord } from './engine-record.js'
import { gpuBeforeBuild, gpuSlug, rememberDevice, rememberedDevice } from './gpu.js'
import { findTrtexec, probeTrtexec, type TrtexecSource } from './locate.js'
import { checkOut, commitStaging, discardStaging, openStaging, type Staging } from './out-dir.js'
import { interrupted, runTrtexec, type Deadline, type TrtexecRun } from './run-trtexec.js'
import { planShapes } from './shapes.js'
import { planTimingCache, prepareTimingCache, settleTimingCache, type TimingCacheOutcome, type TimingCachePlan } from './timing-cache.js'
import { BUILD_PRECISIONS, type BuildPrecision, type DeviceInfo, type PerfSummary, type ShapeProfile, type TrtVersion } from './types.js'
import { planValidation, tolerancePrecision, validateEngine } from './validate-engine.js'

type Env = Record<string, string | undefined>

export const ENGINE_FILE = 'engine.plan'
export const OUTPUT_FILES = {
  engine: ENGINE_FILE,
  record: 'engine.json',
  log: 'build.log',
  layers: 'layers.json',
  times: 'times.json',
  profile: 'profile.json',
  perf: 'perf.json',
} as const

export interface BuildOptions {
  /** The ONNX model. */
  onnx: string
  /** The output directory (absent or empty, or replaced with force). */
  out: string
  force?: boolean
  /** Default fp32, trtexec's own: nothing is reduced unless asked. */
  precision?: BuildPrecision
  /** --trtexec: the program to run (else $TRTEXEC, PATH, /usr/src/tensorrt/bin/trtexec). */
  trtexec?: string
  /** The environment trtexec and nvidia-smi run in and are looked up in (default process.env). */
  env?: Env
  /** "min:opt:max" of batch and sequence dims (shapes.ts has the defaults), other dims by name. */
  batch?: string
  seq?: string
  /** Decoders: "min:opt:max" of the past (cached tokens) dim; min may be 0. */
  past?: string
  dims?: Record<string, string>
  workspaceMiB?: number
  builderOptimizationLevel?: number
  hardwareCompatibilityLevel?: string
  /** Root of the timing caches (default lib/env.ts timingCacheDir()). */
  timingCacheDir?: string
  skipBenchmark?: boolean
  skipValidation?: boolean
  /** Plan only: return the command lines, run nothing but the version probe, write nothing. */
  dryRun?: boolean
  /** Everything (probe, build, validation) must be done in this many milliseconds. */
  timeoutMs?: number
  /** Aborting stops trtexec and removes what was written; the call rejects with exit 130. */
  signal?: AbortSignal
  /** --atol / --rtol values ("1e-3", "logits:0.05") over the precision's defaults. */
  atol?: readonly (string | number)[]
  rtol?: readonly (string | number)[]
  /**
   * How to make the model of an int8 build (any TensorRT) or an fp16 build on TensorRT 11 from an fp32 one:
   * quantize's calibration and fp16 options. The transformed model is written into --out and built from.
   */
  transform?: BuildTransformOptions
  progress?: Progress
}

export type BuildTransformOptions = Pick<QuantizeOptions,
  'calibData' | 'tokenizer' | 'calibBatches' | 'batchSize' | 'seqLen' | 'method' | 'percentile' | 'calibCache' | 'quantizeAttention' | 'keepFp32' | 'fp16MaxAbs'>

export interface BuildTimings {
  /** Finding and probing trtexec (near 0 when the probe is cached). */
  probeMs: number
  /** The build run of trtexec up to its inference (the whole run with skipBenchmark). */
  buildMs?: number
  /** The benchmark part of the build run. */
  benchmarkMs?: number
  /** The onnxruntime reference and the validation run of trtexec. */
  validationMs?: number
  totalMs: number
  /** What trtexec said: `Engine built in X sec.` */
  trtexecBuildS?: number
}

export interface BuildResult {
  onnx: { path: string; bytes: number; sha256: string }
  out: string
  dryRun: boolean
  precision: BuildPrecision
  typedModel?: 'fp16' | 'qdq'
  tool: { path: string; source: TrtexecSource; version: TrtVersion }
  gpu: {
    /** The device trtexec reported building on. */
    device?: DeviceInfo
    nvidiaSmi?: DeviceInfo
    /** How the GPU was known before the build (it names the timing cache). */
    knownBefore: 'nvidia-smi' | 'remembered' | 'unknown'
  }
  profile: ShapeProfile
  inferenceShapes: Record<string, number[]>
  /** Exact argument lists; their paths are relative to the engine's directory (--out), where trtexec ran. */
  argv: { build: string[]; validation?: string[] }
  /** The same as shell lines to paste (creating --out and changing into it first). */
  commands: { build: string; validation?: string }
  timingCache: { file?: string; mode: TimingCachePlan['mode']; action?: TimingCacheOutcome['action']; loaded?: boolean }
  timings: BuildTimings
  perf?: PerfSummary
  engine?: { file: string; bytes: number; sha256: string }
  /** What was written to --out (empty for a dry run). */
  files: { path: string; size: number }[]
  /** Files not written and why. */
  skipped: { files: string[]; reason: string }[]
  validation?: ValidateResult
  /** The model made from --onnx for this precision (in --out), when the build made one. */
  transform?: { file: string; precision: 'int8' | 'fp16'; bytes?: number; sha256?: string; quantize?: QuantizeResult }
  /** trtexec's own [W] lines of the build. */
  trtexecWarnings: string[]
  /** Ours: what the caller should know although the build succeeded. */
  warnings: string[]
}

const STEPS = [
  { id: 'locate', title: 'Finding trtexec' },
  { id: 'model', title: 'Reading the model' },
  { id: 'plan', title: 'Planning the build' },
  { id: 'transform', title: 'Making the model of this precision' },
  { id: 'build', title: 'Building the engine' },
  { id: 'validate', title: 'Validating the engine against onnxruntime' },
  { id: 'write', title: 'Writing the output directory' },
]

function checkOptions(o: BuildOptions): { precision: BuildPrecision; atol: Tolerance; rtol: Tolerance } {
  const precision = o.precision ?? 'fp32'
  if (!BUILD_PRECISIONS.includes(precision)) {
    throw new UsageError(`unknown precision ${precision}`, { code: 'INVALID_PRECISION', hint: `Use one of ${BUILD_PRECISIONS.join(', ')}.` })
  }
  if (o.timeoutMs !== undefined && !(o.timeoutMs > 0)) {
    throw new UsageError(`--timeout must be longer than 0, got ${o.timeoutMs} ms`, { code: 'INVALID_DURATION', hint: 'For example --timeout 30m.' })
  }
  return { precision, atol: parseTolerance(o.atol, 'atol'), rtol: parseTolerance(o.rtol, 'rtol') }
}

/** Repeated `--dim name=min:opt:max` values as planShapes' dims (the range itself is checked there). */
export function parseDimFlags(values: readonly string[] = []): Record<string, string> {
  const dims: Record<string, string> = {}
  for (const v of values) {
    const eq = v.lastIndexOf('=')
    if (eq <= 0 || eq === v.length - 1) {
      throw new UsageError(`--dim ${v}: expected <dim name>=min:opt:max`, {
        code: 'INVALID_SHAPE_RANGE',
        hint: 'For example --dim height=224:224:512 (the name is the symbolic dimension of the model\'s input).',
        details: { flag: '--dim', value: v },
      })
    }
    dims[v.slice(0, eq)] = v.slice(eq + 1)
  }
  return dims
}

/** The transform a build of this precision needs first, if any (see buildEngine). */
export function transformFor(precision: BuildPrecision, typedModel: 'fp16' | 'qdq' | undefined, version: TrtVersion): 'int8' | 'fp16' | undefined {
  if (precision === 'int8' && typedModel === undefined) return 'int8'
  if (precision === 'fp16' && typedModel === undefined && version.major >= 11) return 'fp16'
  return undefined
}

const INT8_TRANSFORM_KEYS = ['calibData', 'tokenizer', 'calibBatches', 'batchSize', 'seqLen', 'method', 'percentile', 'calibCache', 'quantizeAttention'] as const
const FP16_TRANSFORM_KEYS = ['keepFp32', 'fp16MaxAbs'] as const

/** The transform options given that the transform made (if any) would not use, as their --flag names. */
export function unusedTransformFlags(t: BuildTransformOptions, transform: 'int8' | 'fp16' | undefined): string[] {
  const given = (keys: readonly string[]) => keys.filter((k) => (t as Record<string, unknown>)[k] !== undefined && (t as Record<string, unknown>)[k] !== false)
  return [...(transform === 'int8' ? [] : given(INT8_TRANSFORM_KEYS)), ...(transform === 'fp16' ? [] : given(FP16_TRANSFORM_KEYS))]
    .map((k) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`)
}

/** Transform options must be used: a --calib-data ignored would let a user believe the engine was calibrated on it. */
function checkTransformOptions(o: BuildOptions, transform: 'int8' | 'fp16' | undefined, typedModel: 'fp16' | 'qdq' | undefined): void {
  const t = o.transform ?? {}
  const unused = unusedTransformFlags(t, transform)
  if (unused.length) {
    const why = typedModel ? `the model is already ${typedModel === 'qdq' ? 'a Q/DQ' : 'an fp16'} model and is built as it is` : transform ? `this build makes an ${transform} model` : `a ${o.precision ?? 'fp32'} build does not transform the model${o.precision === 'fp16' ? ' before TensorRT 11 (trtexec --fp16 chooses fp16 layers itself)' : ''}`
    throw new UsageError(`${unused.join(', ')}: not used, because ${why}`, {
      code: 'INVALID_OPTION',
      hint: 'Drop them, or give the fp32 model and the precision they apply to (calibration flags: int8; --keep-fp32, --fp16-max-abs: fp16 on TensorRT 11).',
    })
  }
  if (transform === 'int8' && t.calibData === undefined && t.calibCache === undefined) {
    throw new UsageError(`An int8 build calibrates a Q/DQ model from ${o.onnx} first, and that needs calibration data`, {
      code: 'CALIB_DATA_REQUIRED',
      hint: 'Pass --calib-data <file|dir> (text, JSONL with a "text" field, or ONNX test-data inputs) or --calib-cache <file>; or build a Q/DQ model made by `modelforge quantize --precision int8`.',
    })
  }
}

/** The model's own types say the precision: Q/DQ nodes (int8), or weights held as float16. */
export function typedModelOf(info: ModelInspection): 'fp16' | 'qdq' | undefined {
  if (info.ops.some((o) => o.op === 'QuantizeLinear' || o.op === 'DequantizeLinear')) return 'qdq'
  const d = info.parameters.dtypes
  return (d.float16 ?? 0) > (d.float32 ?? 0) ? 'fp16' : undefined
}

function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`
}

function secs(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`
}

/** `mkdir -p <out> && cd <out> && <trtexec ...>`: trtexec's paths are relative to the engine's directory. */
function shellLine(out: string, file: string, argv: string[], create: boolean): string {
  return [...(create ? [shellCommand('mkdir', ['-p', out])] : []), shellCommand('cd', [out]), shellCommand(file, argv)].join(' && ')
}

export async function buildEngine(o: BuildOptions): Promise<BuildResult> {
  const started = performance.now()
  const { precision, atol, rtol } = checkOptions(o)
  const env = o.env ?? process.env
  const progress = o.progress
  const onnx = resolve(o.onnx)
  const out = resolve(o.out)
  const deadline: Deadline | undefined = o.timeoutMs ? { at: started + o.timeoutMs, totalMs: o.timeoutMs } : undefined
  const stateDir = modelforgeCacheDir(env)
  const cacheRoot = o.timingCacheDir ? resolve(o.timingCacheDir) : timingCacheDir(undefined, env)
  const warnings: string[] = []
  const checkAbort = (): void => {
    if (o.signal?.aborted) throw interrupted('build')
  }

  planSteps(progress, STEPS)
  await checkOut(out, o.force ?? false)

  const located = await runStep(progress, 'locate', async () => {
    const t0 = performance.now()
    const found = await findTrtexec({ flag: o.trtexec, env })
    // A dry run writes nothing, the probe cache included.
    const probe = await probeTrtexec(found.path, { cacheDir: o.dryRun ? undefined : stateDir, env })
    return { ...found, version: probe.version, ms: performance.now() - t0 }
  }, { title: (r) => `trtexec ${r.version.text}${r.version.build !== undefined ? ` [b${r.version.build}]` : ''}: ${r.path} (from ${r.source === 'flag' ? '--trtexec' : r.source === 'default' ? 'the default path' : r.source})` })
  checkAbort()
  const version = located.version

  const model = await runStep(progress, 'model', async () => {
    const [info, digest, hints, smi] = await Promise.all([
      inspectModel(onnx).then(assertWellFormed),
      sha256File(onnx, { followSymlinks: true }),
      modelHints(onnx),
      gpuBeforeBuild(env),
    ])
    return { info, digest, hints, smi, typedModel: typedModelOf(info) }
  }, { title: (m) => `${onnx}: ${m.info.inputs.length} input${m.info.inputs.length === 1 ? '' : 's'}, ${m.info.nodes} nodes${m.typedModel ? `, ${m.typedModel === 'qdq' ? 'Q/DQ' : 'fp16'} model` : ''}` })
  checkAbort()
  const { info, hints } = model
  // int8 always builds from a Q/DQ model; fp16 on TensorRT 11 from an fp16 one (it has no --fp16): when the
  // model is neither, quantize makes it into --out and trtexec builds from that file.
  const transform = transformFor(precision, model.typedModel, version)
  checkTransformOptions(o, transform, model.typedModel)
  const typedModel = transform ? (transform === 'int8' ? 'qdq' as const : 'fp16' as const) : model.typedModel
  const transformFile = transform ? `model.${transform}.onnx` : undefined

  const plan = await runStep(progress, 'plan', async () => {
    checkToleranceNames({ atol, rtol }, info.outputs.map((x) => x.name))
    const inputs = info.inputs.map((i) => ({ name: i.name, dtype: i.dtype, shape: i.shape ?? [] }))
    const shapes = planShapes(inputs, { batch: o.batch, seq: o.seq, past: o.past, dims: o.dims, maxPositions: hints.maxPositions })
    const remembered = model.smi ? undefined : await rememberedDevice(stateDir, located.path)
    const before: DeviceInfo | undefined = model.smi ?? remembered
    const cache = planTimingCache(cacheRoot, version, before)
    const build = buildArgv({
      version, onnx: transformFile ?? onnx, engine: OUTPUT_FILES.engine, precision, ...(typedModel ? { typedModel } : {}), profile: shapes.profile,
      workspaceMiB: o.workspaceMiB, builderOptimizationLevel: o.builderOptimizationLevel, hardwareCompatibilityLevel: o.hardwareCompatibilityLevel,
      timingCacheFile: cache.argvFile, layerInfo: OUTPUT_FILES.layers,
      ...(o.skipBenchmark ? { skipBenchmark: true } : { times: OUTPUT_FILES.times, profileJson: OUTPUT_FILES.profile }),
    })
    const validation = o.skipValidation ? undefined : planValidation({ version, engine: OUTPUT_FILES.engine, inputs, inference: shapes.inference })
    return { shapes, cache, build, validation, knownBefore: model.smi ? 'nvidia-smi' as const : remembered ? 'remembered' as const : 'unknown' as const, before }
  }, { title: (p) => `${Object.keys(p.shapes.profile).length ? `profile ${Object.entries(p.shapes.profile).map(([n, r]) => `${n} ${r.min.join('x')}..${r.max.join('x')}`).join(', ')}` : 'static shapes'}; timing cache ${p.cache.mode === 'shared' ? p.cache.argvFile : `for ${p.before ? gpuSlug(p.before) : 'the GPU trtexec reports'} (staged)`}` })
  checkAbort()

  const result: BuildResult = {
    onnx: { path: onnx, bytes: model.digest.size, sha256: model.digest.sha256 },
    out,
    dryRun: o.dryRun ?? false,
    precision,
    ...(typedModel ? { typedModel } : {}),
    tool: { path: located.path, source: located.source, version },
    gpu: { ...(model.smi ? { nvidiaSmi: model.smi } : {}), knownBefore: plan.knownBefore },
    profile: plan.shapes.profile,
    inferenceShapes: plan.validation?.shapes ?? plan.shapes.inference,
    argv: { build: plan.build, ...(plan.validation ? { validation: plan.validation.argv } : {}) },
    commands: {
      build: shellLine(out, located.path, plan.build, true),
      ...(plan.validation ? { validation: shellLine(out, located.path, plan.validation.argv, false) } : {}),
    },
    timingCache: { ...(plan.cache.keyed ? { file: plan.cache.keyed } : {}), mode: plan.cache.mode },
    timings: { probeMs: located.ms, totalMs: 0 },
    files: [],
    skipped: [],
    trtexecWarnings: [],
    warnings,
  }
  if (transform) result.transform = { file: transformFile!, precision: transform }
  if (o.skipBenchmark) result.skipped.push({ files: [OUTPUT_FILES.times, OUTPUT_FILES.profile, OUTPUT_FILES.perf], reason: '--skip-benchmark: trtexec ran no inference' })
  if (o.skipValidation) result.skipped.push({ files: ['validation/'], reason: '--skip-validation: the engine was not compared with onnxruntime' })

  if (o.dryRun) {
    if (transform) warnings.push(`the build first writes ${transformFile} into ${out} (modelforge quantize --precision ${transform}); the command lines read it from there`)
    for (const id of ['transform', 'build', 'validate', 'write']) skipStep(progress, id, 'dry run')
    result.timings.totalMs = performance.now() - started
    return result
  }

  let staging: Staging | undefined
  let onnxruntime: string | undefined
  try {
    staging = await openStaging(out)
    const dir = staging.dir
    if (transform) {
      const made = await runStep(progress, 'transform', async () => quantizeModel({
        ...o.transform,
        model: onnx,
        precision: transform,
        out: join(dir, transformFile!),
        progress: nestProgress(progress, 'transform'),
      }), { title: (q) => `${transformFile}: ${q.precision} model of ${(q.out.bytes / 2 ** 20).toFixed(1)} MiB, ${q.accuracy.outputs.map((m) => `${m.name} cosine ${m.cosine.toFixed(4)}`).join(', ')} against fp32` })
      result.transform = { file: transformFile!, precision: transform, bytes: made.out.bytes, sha256: made.out.sha256, quantize: made }
      warnings.push(...made.warnings)
      checkAbort()
    } else {
      skipStep(progress, 'transform', typedModel ? `the model is already ${typedModel === 'qdq' ? 'Q/DQ' : 'fp16'}` : `${precision} builds from the model as it is`)
    }
    const built = await runStep(progress, 'build', async (step) => {
      step.title(`Building the engine (${precision}${typedModel ? `, ${typedModel === 'qdq' ? 'Q/DQ' : 'fp16'} model` : ''}) with TensorRT ${version.text}`)
      await prepareTimingCache(plan.cache, dir)
      const run = await runTrtexec(located.path, plan.build, { kind: 'build', cwd: dir, env, deadline, signal: o.signal, onPhase: (p) => step.message(p) })
      await writeFile(join(dir, OUTPUT_FILES.log), run.log)
      await checkWritten(dir, run, o.skipBenchmark ?? false)
      // The GPU is certain now: file a staged cache under it and remember it for the next build's key.
      const device = run.parsed.device
      const cache = await settleTimingCache(plan.cache, { root: cacheRoot, version, staging: dir, device: device ?? plan.before })
      if (device) await rememberDevice(stateDir, located.path, device).catch(() => undefined)
      const engine = await sha256File(join(dir, OUTPUT_FILES.engine))
      return { run, device, cache, engine }
    }, { title: (b) => `Built ${OUTPUT_FILES.engine} (${mib(b.engine.size)}) in ${secs(b.run.inferenceStartMs ?? b.run.durationMs)}${b.run.parsed.perf?.throughputQps !== undefined ? `; ${b.run.parsed.perf.throughputQps} qps` : ''}` })
    checkAbort()
    const { run, device } = built
    if (built.cache.warning) warnings.push(built.cache.warning)
    if (!device) warnings.push(`trtexec's log names no device: engine.json records ${plan.before ? `the GPU ${plan.knownBefore === 'nvidia-smi' ? 'nvidia-smi' : 'the last build'} reported` : 'no GPU'}`)
    if (device && plan.before && gpuSlug(device) !== gpuSlug(plan.before)) {
      warnings.push(`trtexec built on ${device.name} (${device.computeCapability ?? '?'}), not on ${plan.before.name} as ${plan.knownBefore === 'nvidia-smi' ? 'nvidia-smi' : 'the last build'} said: the timing cache ${plan.cache.argvFile} may not fit this GPU`)
    }
    result.gpu.device = device
    result.timingCache = {
      ...(built.cache.file ? { file: built.cache.file } : {}),
      mode: built.cache.mode, action: built.cache.action, loaded: run.timingCacheLoaded !== undefined,
    }
    result.engine = { file: OUTPUT_FILES.engine, bytes: built.engine.size, sha256: built.engine.sha256 }
    result.perf = run.parsed.perf
    result.trtexecWarnings = run.parsed.warnings
    result.timings.buildMs = run.inferenceStartMs ?? run.durationMs
    if (!o.skipBenchmark && run.inferenceStartMs !== undefined) result.timings.benchmarkMs = run.durationMs - run.inferenceStartMs
    if (run.parsed.buildTimeS !== undefined) result.timings.trtexecBuildS = run.parsed.buildTimeS
    if (result.perf && !o.skipBenchmark) {
      await writeFile(join(dir, OUTPUT_FILES.perf), JSON.stringify({ precision, inferenceShapes: result.inferenceShapes, ...result.perf }, null, 2) + '\n')
    }

    if (plan.validation) {
      const v = await runStep(progress, 'validate', async (step) => {
        const t0 = performance.now()
        const checked = await validateEngine({
          trtexec: located.path, version, onnx, dir, label: join(out, OUTPUT_FILES.engine), plan: plan.validation!, precision,
          ...(typedModel ? { typedModel } : {}), atol, rtol, hints, env, deadline, signal: o.signal, onPhase: (p) => step.message(p),
        })
        return { ...checked, ms: performance.now() - t0 }
      }, { title: (v) => `Validated against onnxruntime (${v.result.precision} rule): ${v.result.passed ? `${v.result.outputs.length} of ${v.result.outputs.length} outputs within tolerance` : `${v.result.failed.length} FAILED`}` })
      checkAbort()
      result.validation = v.result
      onnxruntime = v.onnxruntime
      result.timings.validationMs = v.ms
      if (!v.result.passed) {
        throw validationError(v.result, { subject: 'engine validation', suggestPrecision: false })
      }
    } else {
      skipStep(progress, 'validate', '--skip-validation')
    }

    await runStep(progress, 'write', async () => {
      const record = engineRecord(result, o, { device: device ?? plan.before, validationPrecision: plan.validation ? tolerancePrecision(precision, typedModel) : undefined, onnxruntime })
      await writeFile(join(dir, OUTPUT_FILES.record), JSON.stringify(record, null, 2) + '\n')
      checkAbort()
      await commitStaging(staging!, o.force ?? false)
      staging = undefined
      result.files = (await listFiles(out)).map((f) => ({ path: f.rel, size: f.size }))
    }, { title: () => `Wrote ${result.files.length} files to ${out}` })
  } catch (err) {
    if (staging) await discardStaging(staging)
    if (o.signal?.aborted && !(err instanceof InterruptedError)) throw interrupted('build')
    throw err
  }
  result.timings.totalMs = performance.now() - started
  return result
}

/** The files trtexec was asked for must be there: a PASSED run without them is trtexec's failure. */
async function checkWritten(dir: string, run: TrtexecRun, skipBenchmark: boolean): Promise<void> {
  const wanted: string[] = [OUTPUT_FILES.engine, OUTPUT_FILES.layers, ...(skipBenchmark ? [] : [OUTPUT_FILES.times, OUTPUT_FILES.profile])]
  const missing = wanted.filter((f) => !existsSync(join(dir, f)))
  const noSummary = !skipBenchmark && !run.parsed.perf?.throughputQps
  if (missing.length || noSummary) {
    const what = [...(missing.length ? [`did not write ${missing.join(', ')}`] : []), ...(noSummary ? ['printed no performance summary'] : [])].join(' and ')
    throw new ExternalError(`trtexec reported PASSED but ${what}`, {
      code: 'TRTEXEC_BAD_OUTPUT',
      hint: 'Rerun the build command (build --dry-run prints it) by hand and look at its log; report it with the trtexec version.',
      details: { missing, argv: run.argv },
    })
  }
}

function engineRecord(r: BuildResult, o: BuildOptions, x: { device?: DeviceInfo; validationPrecision?: string; onnxruntime?: string }): EngineRecord {
  return {
    schema: ENGINE_SCHEMA,
    created: new Date().toISOString(),
    engine: r.engine!,
    onnx: r.onnx,
    precision: r.precision,
    ...(r.typedModel ? { typedModel: r.typedModel } : {}),
    ...(r.transform?.sha256 ? { builtFrom: { file: r.transform.file, bytes: r.transform.bytes!, sha256: r.transform.sha256, precision: r.transform.precision } } : {}),
    tensorrt: { version: r.tool.version.text, ...(r.tool.version.build !== undefined ? { build: r.tool.version.build } : {}), encoded: r.tool.version.encoded },
    ...(x.device ? { gpu: x.device } : {}),
    ...(r.gpu.nvidiaSmi ? { nvidiaSmi: r.gpu.nvidiaSmi } : {}),
    profile: r.profile,
    inferenceShapes: r.inferenceShapes,
    options: {
      ...(o.workspaceMiB !== undefined ? { workspaceMiB: o.workspaceMiB } : {}),
      ...(o.builderOptimizationLevel !== undefined ? { builderOptimizationLevel: o.builderOptimizationLevel } : {}),
      ...(o.hardwareCompatibilityLevel !== undefined ? { hardwareCompatibilityLevel: o.hardwareCompatibilityLevel } : {}),
    },
    trtexec: { path: r.tool.path, argv: r.argv.build, ...(r.argv.validation ? { validationArgv: r.argv.validation } : {}) },
    ...(r.timingCache.file ? { timingCache: r.timingCache.file } : {}),
    ...(r.validation && x.validationPrecision ? {
      validation: {
        passed: r.validation.passed,
        precision: x.validationPrecision,
        outputs: r.validation.outputs.map((m) => ({ name: m.name, maxAbsErr: m.maxAbsErr, maxRelErr: m.maxRelErr, cosine: m.cosine, atol: m.atol, rtol: m.rtol, passed: m.passed })),
      },
    } : {}),
    ...(r.perf ? { performance: r.perf } : {}),
    tools: { modelforge: modelforgeVersion(), node: process.version, ...(x.onnxruntime ? { onnxruntime: x.onnxruntime } : {}), trtexec: r.tool.version.text },
  }
}
