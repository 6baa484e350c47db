/**
 * build-engine: a model id to a published, validated version in the store, in one call.
 *
 *   source -> key -> stage -> export -> quantize -> build -> validate -> measure -> publish
 *
 * The version is written where it will live from the start: versions/<version>.tmp, the store's own staging
 * directory (publish/stage.ts), which claims the name, is never read by readers, and is what `store gc`
 * removes when a killed build leaves it. Any failure, and Ctrl-C, removes it: `current` and every finalized
 * version stay as they were, and the error names the step that failed. Only a version whose validation
 * passed is finalized (hashed into manifest.json, renamed into place) and published.
 *
 * The steps are the libraries' own (hub fetch, export, quantize, builders, validate, publish), each run with
 * its progress nested under the pipeline's step, so the caller's one task list shows the whole tree.
 *
 * What the version holds (docs/build-engine.md):
 *   target onnx: model.onnx (the artifact, at the precision asked), fp32/model.onnx (the fp32 export, when
 *                the artifact is not it), model.calib.json (int8), config and tokenizer files, build.log
 *                (the steps), validation.json, perf.json (onnxruntime latency)
 *   target trt:  engine.plan, engine.json, model.onnx (the fp32 export the engine was validated against),
 *                model.int8.onnx / model.fp16.onnx when TensorRT built from a transformed model, config and
 *                tokenizer files, build.log (trtexec's), layers.json, times.json, profile.json, perf.json,
 *                validation.json, validation/ (the engine validation's inputs)
 */
import { copyFile, mkdtemp, mkdir, readdir, rename, rm, rmdir, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ConflictError, errorFromCode, InternalError, ModelforgeError, NotFoundError, systemError, UsageError } from '../lib/errors.js'
import { storeRoot, modelforgeCacheDir } from '../lib/env.js'
import { nestProgress, planSteps, runStep, skipStep, type StepInfo, type StepReporter } from '../lib/progress.js'
import { modelforgeVersion } from '../lib/version.js'
import { fetchModel, type FetchResult } from '../hub/fetch.js'
import { exportModel, type ExportResult } from '../export/index.js'
import { buildEngine, transformFor, unusedTransformFlags, type BuildResult } from '../builders/build.js'
import { findTrtexec, probeTrtexec } from '../builders/locate.js'
import { interrupted } from '../builders/run-trtexec.js'
import type { TrtVersion } from '../builders/types.js'
import { runtimeInfo } from '../validate/backends.js'
import { measureLatency, type LatencyResult } from '../validate/latency.js'
import { quantizeModel, type QuantizeResult } from '../validate/quantize.js'
import { validateModel, validationError, type ValidateResult } from '../validate/validate.js'
import { decoderValidationError, isDecoderModel, validateDecoder, type DecoderValidation } from '../validate/decoder-check.js'
import { ModelStore, type FinalizeResult } from '../publish/store.js'
import { readManifest } from '../publish/manifest.js'
import { buildKey, buildKeyInputs } from './build-key.js'
import { dateVersion, freeVersion, takenVersions } from './naming.js'
import { checkOptions, type BuildEngineOptions, type CheckedOptions, type Target } from './options.js'
import { appendSummary, failureMarkdown, summaryMarkdown } from './summary.js'

export type { BuildEngineOptions } from './options.js'

export const STEPS: StepInfo[] = [
  { id: 'source', title: 'Resolving the model' },
  { id: 'key', title: 'Computing the build key' },
  { id: 'stage', title: 'Staging the version' },
  { id: 'export', title: 'Exporting to ONNX' },
  { id: 'quantize', title: 'Making the model of this precision' },
  { id: 'build', title: 'Building the TensorRT engine' },
  { id: 'validate', title: 'Validating against the fp32 ONNX' },
  { id: 'measure', title: 'Measuring latency' },
  { id: 'publish', title: 'Finalizing and publishing' },
]
export type StepId = 'source' | 'key' | 'stage' | 'export' | 'quantize' | 'build' | 'validate' | 'measure' | 'publish'

export interface StepTiming {
  id: StepId
  title: string
  status: 'done' | 'skipped' | 'failed'
  ms: number
  reason?: string
}

export interface Artifact {
  path: string
  kind: 'onnx' | 'tensorrt-engine'
  precision: string
  /** serve: what a reader loads; reference: the fp32 model it was validated against; built-from: the model TensorRT built from. */
  role: 'serve' | 'reference' | 'built-from'
  [key: string]: unknown
}

export interface ValidationMetrics {
  reference: string
  precision: string
  passed: boolean
  outputs: { name: string; dataset?: string; maxAbsErr: number; maxRelErr: number | null; meanAbsErr?: number; cosine: number; passed: boolean; reason?: string }[]
  /** Decoders: greedy generation of the candidate against the reference's tokens. */
  greedy?: { prompt: number[]; expected: number[]; actual: number[]; firstDivergence: number | null; passed: boolean }
}

export interface PerformanceMetrics {
  source: 'trtexec' | 'onnxruntime-node'
  throughputQps?: number
  latencyMs?: { min: number; mean: number; median: number; max: number; p90?: number; p95?: number; p99?: number }
  shapes?: Record<string, number[]>
}

export interface BuildEngineResult {
  /** built: a new version; up-to-date: a version with this build key exists (nothing written); planned: --dry-run. */
  status: 'built' | 'up-to-date' | 'planned'
  agent: string
  version: string
  store: string
  /** The version directory (for a dry run: where it would be). */
  path: string
  target: Target
  precision: string
  /** The channel that points to the version now (null: not published). */
  channel: string | null
  published: boolean
  buildKey: string
  source: { kind: 'hub' | 'local'; repo?: string; revision?: string; commit?: string; dir: string; fromCache: boolean }
  artifacts: Artifact[]
  checksum?: string
  files?: number
  bytes?: number
  metrics: {
    validation?: ValidationMetrics
    performance?: PerformanceMetrics
    engine?: { gpu?: string; computeCapability?: string; tensorrt: string }
  }
  timings: { totalMs: number; steps: StepTiming[] }
  /** --dry-run: what would run and where it would go. */
  plan?: { steps: { id: StepId; action: string }[]; commands: string[]; paths: Record<string, string> }
  warnings: string[]
}

const secs = (ms: number): string => `${(ms / 1000).toFixed(1)} s`

/** The error of a failed step, said as that step's failure; its code, exit code, hint and details are kept. */
function failedAt(id: StepId, err: unknown): ModelforgeError {
  const title = STEPS.find((s) => s.id === id)!.title.toLowerCase()
  const e = err instanceof ModelforgeError ? err : systemError(err, { doing: title })
  if (!e) return new InternalError(`build-engine failed while ${title}: ${(err as Error)?.message ?? String(err)}`, { code: 'INTERNAL', cause: err, details: { step: id } })
  if (e.code === 'INTERRUPTED') return e
  return errorFromCode(e.code, `build-engine failed at ${id} (${title}): ${e.message}`, { hint: e.hint, cause: err, details: { ...e.details, step: id } })
}

class Run {
  readonly steps: StepTiming[] = []
  readonly log: string[] = []
  current: StepId | undefined
  constructor(readonly o: BuildEngineOptions) {}

  checkAbort(): void {
    if (this.o.signal?.aborted) throw interrupted('build-engine')
  }

  async step<T>(id: StepId, fn: (s: StepReporter) => Promise<T>, title: (r: T) => string): Promise<T> {
    this.checkAbort()
    this.current = id
    const t0 = performance.now()
    let final = ''
    try {
      const r = await runStep(this.o.progress, id, fn, { title: (r) => (final = `${title(r)} (${secs(performance.now() - t0)})`) })
      const ms = performance.now() - t0
      this.steps.push({ id, title: final, status: 'done', ms: Math.round(ms) })
      this.log.push(`${new Date().toISOString()} ${id}: ${final}`)
      return r
    } catch (err) {
      const ms = Math.round(performance.now() - t0)
      this.steps.push({ id, title: STEPS.find((s) => s.id === id)!.title, status: 'failed', ms, reason: (err as Error)?.message })
      throw err
    }
  }

  skip(id: StepId, reason: string): void {
    skipStep(this.o.progress, id, reason)
    this.steps.push({ id, title: STEPS.find((s) => s.id === id)!.title, status: 'skipped', ms: 0, reason })
    this.log.push(`${new Date().toISOString()} ${id}: skipped (${reason})`)
  }

  skipRest(reason: string): void {
    for (const s of STEPS) if (!this.steps.some((t) => t.id === s.id)) this.skip(s.id as StepId, reason)
  }
}

/** What the build makes from the fp32 export before TensorRT or onnxruntime gets it, if anything. */
function transformOf(target: Target, precision: string, trt: TrtVersion | undefined): 'int8' | 'fp16' | undefined {
  if (target === 'onnx') return precision === 'int8' ? 'int8' : precision === 'fp16' ? 'fp16' : undefined
  return transformFor(precision as never, undefined, trt!)
}

/** Transform options must be used: a --calib-data ignored would let a user believe the model was calibrated on it. */
function checkTransformUse(o: BuildEngineOptions, transform: 'int8' | 'fp16' | undefined, c: CheckedOptions, trt?: TrtVersion): void {
  const unused = unusedTransformFlags(o.transform ?? {}, transform)
  if (unused.length === 0) return
  const why = transform ? `this build makes an ${transform} model` : c.target === 'trt' && c.precision === 'fp16' ? `TensorRT ${trt?.text} builds fp16 from the fp32 model itself (trtexec --fp16)` : `a ${c.precision} ${c.target} build does not transform the model`
  throw new UsageError(`${unused.join(', ')}: not used, because ${why}`, {
    code: 'INVALID_OPTION',
    hint: 'Drop them, or ask for the precision they apply to (calibration flags: int8; --keep-fp32, --fp16-max-abs: fp16 on the onnx target or TensorRT 11).',
  })
}

async function findExisting(store: ModelStore, agent: string, key: string): Promise<string | undefined> {
  if (!store.resolve(agent) && !(await store.agents()).includes(agent)) return undefined
  const infos = await store.versionInfos(agent)
  for (const v of [...infos].reverse()) {
    // A version whose manifest cannot be read is no match (store verify reports it); it must not stop a build.
    const parsed = await readManifest(v.path).catch(() => undefined)
    if (parsed?.kind === 'v1' && (parsed.manifest.build as { key?: unknown } | undefined)?.key === key) return v.version
  }
  return undefined
}

/** Moves every entry of `from` into `to` (same filesystem) and removes `from`. */
async function moveUp(from: string, to: string): Promise<void> {
  for (const name of await readdir(from)) await rename(join(from, name), join(to, name))
  await rmdir(from)
}

function validationMetrics(v: ValidateResult, reference: string): ValidationMetrics {
  return {
    reference,
    precision: v.precision,
    passed: v.passed,
    outputs: v.outputs.map((m) => ({
      name: m.name, ...(v.datasets > 1 ? { dataset: m.dataset } : {}), maxAbsErr: m.maxAbsErr, maxRelErr: m.maxRelErr, meanAbsErr: m.meanAbsErr,
      cosine: m.cosine, passed: m.passed, ...(m.reason ? { reason: m.reason } : {}),
    })),
  }
}

/** A decoder's check as validation metrics: each step's logits as an output, the greedy tokens beside. */
function decoderMetrics(r: DecoderValidation, reference: string, precision: string): ValidationMetrics {
  return {
    reference,
    precision,
    passed: r.passed,
    outputs: r.steps.map((s) => ({ name: `logits (${s.name})`, maxAbsErr: s.maxAbsErr, maxRelErr: null, meanAbsErr: s.meanAbsErr, cosine: s.cosine, passed: s.passed })),
    greedy: r.greedy,
  }
}

/** The one plain number among --atol values, the tolerance of a decoder's logits (per-output values name encoder outputs). */
function decoderAtol(atol: BuildEngineOptions['atol']): number | undefined {
  const plain = (atol ?? []).map(String).filter((a) => !a.includes(':'))
  return plain.length ? Number(plain.at(-1)) : undefined
}

function snakeLatency(l: NonNullable<PerformanceMetrics['latencyMs']>): Record<string, number | undefined> {
  return { min: l.min, mean: l.mean, median: l.median, p90: l.p90, p95: l.p95, p99: l.p99, max: l.max }
}

function sourceOf(f: FetchResult): BuildEngineResult['source'] {
  return f.source === 'hub'
    ? { kind: 'hub', repo: f.repo, revision: f.revision, commit: f.commit, dir: f.snapshot, fromCache: f.fromCache }
    : { kind: 'local', dir: f.snapshot, fromCache: true }
}

export async function runBuildEngine(o: BuildEngineOptions): Promise<BuildEngineResult> {
  const started = performance.now()
  const c = checkOptions(o)
  const env = o.env ?? process.env
  const store = new ModelStore(o.store ?? storeRoot(undefined, env))
  const run = new Run(o)
  const warnings: string[] = []
  planSteps(o.progress, STEPS)
  let staging: string | undefined
  let finalized: FinalizeResult | undefined
  try {
    // ------------------------------------------------------------ source
    const fetched = await run.step('source', async (s) => {
      try {
        return await fetchModel(o.modelId, { revision: o.revision, offline: o.dryRun ? true : o.offline, cacheDir: o.cacheDir, progress: nestProgress(o.progress, s.id) })
      } catch (err) {
        if (o.dryRun && err instanceof NotFoundError) {
          throw new NotFoundError(`${err.message}; a dry run never downloads`, { code: err.code as never, hint: `Fetch it first (\`modelforge fetch ${o.modelId}\`), then plan the build again.`, details: err.details })
        }
        throw err
      }
    }, (f) => f.source === 'hub' ? `${f.repo}@${f.revision} (${f.commit?.slice(0, 12)}), ${f.files.length} files${f.fromCache ? ' from the cache' : ''}` : `${f.snapshot}, ${f.files.length} files`)
    warnings.push(...(fetched.warnings ?? []))
    const source = sourceOf(fetched)

    // ------------------------------------------------------------ key
    const keyed = await run.step('key', async () => {
      let trt: { path: string; version: TrtVersion } | undefined
      if (c.target === 'trt') {
        const found = await findTrtexec({ flag: o.trtexec, env })
        const probe = await probeTrtexec(found.path, { cacheDir: o.dryRun ? undefined : modelforgeCacheDir(env), env })
        trt = { path: found.path, version: probe.version }
      }
      const transform = transformOf(c.target, c.precision, trt?.version)
      checkTransformUse(o, transform, c, trt?.version)
      const inputs = await buildKeyInputs(o, c, fetched, { onnxruntime: runtimeInfo().version, trtexec: trt?.version })
      const key = buildKey(inputs)
      const existing = await findExisting(store, o.agent, key)
      return { trt, transform, inputs, key, existing }
    }, (k) => `${k.key.slice(0, 16)}${k.existing ? `: ${k.existing} has it${o.force ? ' (--force: building again)' : ''}` : ': new'}${k.trt ? `; TensorRT ${k.trt.version.text}` : ''}`)

    if (keyed.existing && !o.force) {
      run.skipRest(`${keyed.existing} was built with this build key`)
      const path = store.versionDir(o.agent, keyed.existing)
      const m = (await readManifest(path)).manifest as { artifacts?: Artifact[]; checksum?: string; files?: unknown[] }
      const channels = store.channels(o.agent)
      const channel = Object.entries(channels).find(([, v]) => v === keyed.existing)?.[0] ?? null
      const result: BuildEngineResult = {
        status: 'up-to-date', agent: o.agent, version: keyed.existing, store: store.root, path, target: c.target, precision: c.precision,
        channel, published: channel !== null, buildKey: keyed.key, source, artifacts: m.artifacts ?? [], checksum: m.checksum,
        files: m.files?.length, metrics: {}, timings: { totalMs: Math.round(performance.now() - started), steps: run.steps }, warnings,
      }
      if (o.stepSummary) await appendSummary(o.stepSummary, summaryMarkdown(result)).catch((err: unknown) => warnings.push(`GITHUB_STEP_SUMMARY not written: ${(err as Error).message}`))
      return result
    }

    run.current = 'stage'
    const taken = takenVersions(join(store.agentDir(o.agent), 'versions'))
    if (o.outputVersion && taken.has(o.outputVersion)) {
      throw new ConflictError(`Version ${o.outputVersion} of ${o.agent} exists already (or is being staged)`, {
        code: 'VERSION_EXISTS',
        hint: 'Versions are immutable: give a new --output-version, or leave it out for v<date> with a free .N suffix.',
        details: { agent: o.agent, version: o.outputVersion },
      })
    }
    let version = o.outputVersion ?? freeVersion(dateVersion(o.now ?? new Date()), taken)

    if (o.dryRun) return await planOnly(o, c, run, { store, version, source, fetched, keyed, warnings, started })

    // ------------------------------------------------------------ stage
    staging = await run.step('stage', async () => {
      for (let attempt = 0; ; attempt++) {
        try {
          return await store.stage(o.agent, version)
        } catch (err) {
          // Another build claimed the automatic name between our look and our mkdir: take the next one.
          const lost = err instanceof ConflictError && (err.code === 'VERSION_EXISTS' || err.code === 'STAGING_EXISTS')
          if (!lost || o.outputVersion || attempt >= 100) throw err
          version = freeVersion(dateVersion(o.now ?? new Date()), takenVersions(join(store.agentDir(o.agent), 'versions')))
        }
      }
    }, (dir) => `${o.agent}/${version} in ${dir}`)
    const dir = staging

    // ------------------------------------------------------------ export
    const exported: ExportResult = await run.step('export', (s) => exportModel({
      model: fetched.snapshot, out: dir, exporter: o.exporter, task: o.task, opset: o.opset, progress: nestProgress(o.progress, s.id),
    }), (e) => `model.onnx by the ${e.exporter} exporter (${e.task}, opset ${e.opset})`)
    warnings.push(...(exported.warnings ?? []))
    const fp32 = join(dir, 'model.onnx')
    const decoder = await isDecoderModel(fp32)
    if (decoder && c.precision === 'int8') {
      throw new UsageError('--precision int8 is not supported for decoders: calibrating a KV-cache model needs prefill and decode inputs, which modelforge does not make yet', {
        code: 'INVALID_OPTION',
        hint: 'Build the decoder in fp16 (or fp32); INT8 weight-only schemes are for TensorRT-LLM.',
      })
    }

    // ------------------------------------------------------------ quantize
    const transform = keyed.transform
    let quantized: QuantizeResult | undefined
    let reference = fp32
    if (c.target === 'onnx' && transform) {
      quantized = await run.step('quantize', async (s) => {
        // The fp32 export moves aside (its external data files with it: they are named relative to it).
        await mkdir(join(dir, 'fp32'))
        for (const f of ['model.onnx', ...exported.externalData]) await rename(join(dir, f), join(dir, 'fp32', f))
        // config.json beside it too: quantize and validate read a model's limits (max positions, vocabulary) there.
        if (exported.files.some((f) => f.path === 'config.json')) await copyFile(join(dir, 'config.json'), join(dir, 'fp32', 'config.json'))
        reference = join(dir, 'fp32', 'model.onnx')
        const t = o.transform ?? {}
        return quantizeModel({
          ...t, model: reference, precision: transform, out: fp32,
          // The tokenizer the export copied sits at the top, not beside fp32/model.onnx.
          ...(transform === 'int8' && t.calibData !== undefined ? { tokenizer: t.tokenizer ?? dir } : {}),
          atol: transform === 'fp16' ? o.atol : undefined, rtol: transform === 'fp16' ? o.rtol : undefined,
          progress: nestProgress(o.progress, s.id),
        })
      }, (q) => `model.onnx: ${q.precision}, ${(q.out.bytes / 2 ** 20).toFixed(1)} MiB; ${q.accuracy.outputs.map((m) => `${m.name} cosine ${m.cosine.toFixed(4)}`).join(', ')} on held-out data`)
      warnings.push(...quantized.warnings)
    } else if (c.target === 'trt' && transform) {
      run.skip('quantize', `the build makes model.${transform}.onnx from the fp32 export and TensorRT builds from it`)
    } else {
      run.skip('quantize', c.target === 'trt' ? `TensorRT ${keyed.trt!.version.text} builds ${c.precision} from the fp32 model` : 'the fp32 export is the artifact')
    }

    // ------------------------------------------------------------ build
    let built: BuildResult | undefined
    if (c.target === 'trt') {
      built = await run.step('build', async (s) => {
        const result = await buildEngine({
          onnx: fp32, out: join(dir, 'engine'), precision: c.precision, trtexec: keyed.trt!.path, env,
          batch: o.batch, seq: o.seq, past: o.past, dims: o.dims, workspaceMiB: o.workspaceMiB, builderOptimizationLevel: o.builderOptimizationLevel,
          hardwareCompatibilityLevel: o.hardwareCompatibilityLevel, timingCacheDir: o.timingCacheDir, atol: o.atol, rtol: o.rtol,
          ...(transform ? { transform: o.transform } : {}), signal: o.signal, progress: nestProgress(o.progress, s.id),
        })
        await moveUp(join(dir, 'engine'), dir)
        return result
      }, (b) => `engine.plan (${((b.engine?.bytes ?? 0) / 2 ** 20).toFixed(1)} MiB, ${b.precision}) with TensorRT ${b.tool.version.text} on ${(b.gpu.device ?? b.gpu.nvidiaSmi)?.name ?? 'an unnamed GPU'}`)
      warnings.push(...built.warnings)
    } else {
      run.skip('build', '--target onnx: onnxruntime serves model.onnx')
    }

    // ------------------------------------------------------------ validate
    const validation = await run.step('validate', async (s): Promise<{ metrics: ValidationMetrics; extra: Record<string, unknown> }> => {
      if (built) {
        // The engine was compared with onnxruntime on the fp32 export in the build step (trtexec ran it).
        const reference = 'model.onnx (fp32) in onnxruntime, engine run by trtexec'
        const r = built.validation!
        return { metrics: validationMetrics(r, reference), extra: { inputsFrom: r.inputsFrom, generated: r.generated, datasets: r.datasets } }
      }
      const given = o.reference ?? (!quantized && fetched.files.some((f) => f.path === 'reference.json') ? join(fetched.snapshot, 'reference.json') : undefined)
      const fp32Self = !quantized && given === undefined
      const what = given !== undefined ? (o.reference ? `${o.reference} (given)` : 'reference.json of the source')
        : fp32Self ? 'model.onnx in onnxruntime with graph optimizations off' : 'fp32/model.onnx (the fp32 export)'
      if (decoder) {
        // Prefill, one cached decode step and greedy generation (validate's decoder check).
        const r = await validateDecoder({
          candidate: fp32, reference: given ?? reference, precision: c.precision === 'fp16' ? 'fp16' : 'fp32', atol: decoderAtol(o.atol),
          ...(fp32Self ? { referenceSessionOptions: { graphOptimizationLevel: 'disabled' as const } } : {}),
        })
        if (!r.passed) throw decoderValidationError(r)
        return { metrics: decoderMetrics(r, what, c.precision), extra: { decoder: r } }
      }
      const result = await validateModel({
        candidate: fp32, reference: given ?? reference, precision: c.precision as 'fp32' | 'fp16' | 'int8', atol: o.atol, rtol: o.rtol,
        ...(fp32Self ? { referenceSessionOptions: { graphOptimizationLevel: 'disabled' as const } } : {}),
        progress: nestProgress(o.progress, s.id),
      })
      if (!result.passed) throw validationError(result, { subject: `validation of model.onnx against ${what}`, suggestPrecision: false })
      return { metrics: validationMetrics(result, what), extra: { inputsFrom: result.inputsFrom, generated: result.generated, datasets: result.datasets } }
    }, (v) => `${v.metrics.outputs.length} output${v.metrics.outputs.length === 1 ? '' : 's'}${v.metrics.greedy ? ' and greedy tokens' : ''} within ${v.metrics.precision} tolerance against ${v.metrics.reference}`)
    const metricsValidation = validation.metrics
    await writeFile(join(dir, 'validation.json'), JSON.stringify({ ...metricsValidation, ...validation.extra }, null, 2) + '\n')

    // ------------------------------------------------------------ measure
    let latency: LatencyResult | undefined
    if (c.target === 'onnx') {
      latency = await run.step('measure', async () => {
        const l = await measureLatency(fp32)
        await writeFile(join(dir, 'perf.json'), JSON.stringify(l, null, 2) + '\n')
        return l
      }, (l) => `median ${l.latencyMs.median} ms, p95 ${l.latencyMs.p95} ms over ${l.iterations} runs (onnxruntime cpu, ${Object.entries(l.shapes).map(([k, d]) => `${k} ${d.join('x')}`).join(', ')})`)
    } else {
      run.skip('measure', 'trtexec measured the engine in the build (perf.json)')
    }
    const performance_: PerformanceMetrics | undefined = latency
      ? { source: 'onnxruntime-node', throughputQps: latency.throughputQps, latencyMs: latency.latencyMs, shapes: latency.shapes }
      : built?.perf?.latency
        ? {
            source: 'trtexec', throughputQps: built.perf.throughputQps, shapes: built.inferenceShapes,
            latencyMs: { min: built.perf.latency.min, mean: built.perf.latency.mean, median: built.perf.latency.median, max: built.perf.latency.max, p90: built.perf.latency.percentiles['90'], p95: built.perf.latency.percentiles['95'], p99: built.perf.latency.percentiles['99'] },
          }
        : undefined

    // ------------------------------------------------------------ publish
    const device = built ? built.gpu.device ?? built.gpu.nvidiaSmi : undefined
    const artifacts: Artifact[] = built
      ? [
          {
            path: 'engine.plan', kind: 'tensorrt-engine', precision: c.precision, role: 'serve', record: 'engine.json',
            gpu: device ? { name: device.name, compute_capability: device.computeCapability } : null, tensorrt_version: built.tool.version.text,
            ...(o.hardwareCompatibilityLevel ? { hardware_compatibility_level: o.hardwareCompatibilityLevel } : {}),
          },
          { path: 'model.onnx', kind: 'onnx', precision: 'fp32', role: 'reference' },
          ...(built.transform ? [{ path: built.transform.file, kind: 'onnx' as const, precision: built.transform.precision, role: 'built-from' as const }] : []),
        ]
      : [
          { path: 'model.onnx', kind: 'onnx', precision: c.precision, role: 'serve' },
          ...(quantized ? [{ path: 'fp32/model.onnx', kind: 'onnx' as const, precision: 'fp32', role: 'reference' as const }] : []),
        ]
    const stepMs = Object.fromEntries(run.steps.filter((s) => s.status === 'done').map((s) => [s.id, s.ms]))
    if (!built) await writeFile(join(dir, 'build.log'), [`modelforge build-engine ${modelforgeVersion()}: ${o.agent}/${version} from ${o.modelId}`, ...run.log, ...warnings.map((w) => `warning: ${w}`)].join('\n') + '\n')
    const manifest = {
      artifacts,
      source: fetched.source === 'hub'
        ? { repo: fetched.repo, revision: fetched.revision, commit: fetched.commit, files: fetched.files.map((f) => ({ path: f.path, size: f.size, ...(f.sha256 ? { sha256: f.sha256 } : { blob: f.blob }) })) }
        : { path: fetched.snapshot, files: fetched.files.map((f) => ({ path: f.path, size: f.size, sha256: f.sha256 })) },
      build: {
        key: keyed.key,
        key_inputs: keyed.inputs,
        target: c.target,
        precision: c.precision,
        exporter: exported.exporter,
        task: exported.task,
        opset: exported.opset,
        tools: { modelforge: modelforgeVersion(), node: process.version, onnxruntime: runtimeInfo().version, ...(built ? { trtexec: built.tool.version.text } : {}) },
        ...(quantized ? { quantize: { precision: quantized.precision, calibration: quantized.calibration, placement: quantized.placement, accuracy: quantized.accuracy } } : {}),
        ...(built ? {
          gpu: device ? { name: device.name, compute_capability: device.computeCapability, memory_mib: device.memoryMiB } : null,
          compute_capability: device?.computeCapability ?? null,
          tensorrt_version: built.tool.version.text,
          trtexec: { path: built.tool.path, argv: built.argv.build, ...(built.argv.validation ? { validation_argv: built.argv.validation } : {}) },
          ...(built.transform ? { built_from: { file: built.transform.file, precision: built.transform.precision, sha256: built.transform.sha256 } } : {}),
          timing_cache: built.timingCache.file ?? null,
        } : {}),
        timings_ms: stepMs,
        created_by: 'modelforge build-engine',
      },
      validation: {
        reference: metricsValidation.reference,
        precision: metricsValidation.precision,
        passed: metricsValidation.passed,
        ...(o.atol ? { atol: o.atol } : {}),
        ...(o.rtol ? { rtol: o.rtol } : {}),
        outputs: metricsValidation.outputs.map((m) => ({ name: m.name, max_abs_err: m.maxAbsErr, max_rel_err: m.maxRelErr, mean_abs_err: m.meanAbsErr, cosine: m.cosine, passed: m.passed })),
        ...(metricsValidation.greedy ? {
          greedy: { prompt: metricsValidation.greedy.prompt, expected: metricsValidation.greedy.expected, actual: metricsValidation.greedy.actual, first_divergence: metricsValidation.greedy.firstDivergence, passed: metricsValidation.greedy.passed },
        } : {}),
      },
      performance: performance_
        ? { source: performance_.source, throughput_qps: performance_.throughputQps, ...(performance_.latencyMs ? { latency_ms: snakeLatency(performance_.latencyMs) } : {}), shapes: performance_.shapes }
        : { source: 'none', reason: 'the build ran no benchmark' },
      ...(o.capabilities && Object.keys(o.capabilities).length > 0 ? { capabilities: o.capabilities } : {}),
    }
    finalized = await run.step('publish', async (s) => {
      const publishCurrent = c.publish && c.channel === 'current'
      const f = await store.finalize(o.agent, version, { metadata: o.metadata, manifest, publish: publishCurrent, legacyChecksum: o.legacyChecksum, progress: nestProgress(o.progress, s.id) })
      staging = undefined
      if (c.publish && c.channel !== 'current') await store.promote(o.agent, version, c.channel)
      warnings.push(...(f.warnings ?? []))
      return f
    }, (f) => `${o.agent}/${f.version}: ${f.files} files, ${(f.bytes / 2 ** 20).toFixed(1)} MiB${c.publish ? `, ${c.channel} -> ${f.version}` : ', not published'}`)

    const result: BuildEngineResult = {
      status: 'built', agent: o.agent, version, store: store.root, path: finalized.path, target: c.target, precision: c.precision,
      channel: c.publish ? c.channel : null, published: c.publish, buildKey: keyed.key, source, artifacts,
      checksum: finalized.checksum, files: finalized.files, bytes: finalized.bytes,
      metrics: {
        validation: metricsValidation,
        ...(performance_ ? { performance: performance_ } : {}),
        ...(built ? { engine: { gpu: device?.name, computeCapability: device?.computeCapability, tensorrt: built.tool.version.text } } : {}),
      },
      timings: { totalMs: Math.round(performance.now() - started), steps: run.steps },
      warnings,
    }
    // The version stands: a summary that cannot be written is a warning, not a failed build.
    if (o.stepSummary) await appendSummary(o.stepSummary, summaryMarkdown(result)).catch((err: unknown) => warnings.push(`GITHUB_STEP_SUMMARY not written: ${(err as Error).message}`))
    return result
  } catch (err) {
    if (staging) await rm(staging, { recursive: true, force: true })
    // The engine is validated inside the build (trtexec runs it): its failure is the validation's, as on the onnx target.
    const step = run.current === 'build' && err instanceof ModelforgeError && err.code === 'VALIDATION_FAILED' ? 'validate' : run.current
    const e = step ? failedAt(step, o.signal?.aborted && !(err instanceof ModelforgeError && err.code === 'INTERRUPTED') ? interrupted('build-engine') : err) : err
    if (o.stepSummary) {
      const d = e instanceof ModelforgeError ? { step, code: e.code, message: e.message } : { step, code: 'INTERNAL', message: String(e) }
      await appendSummary(o.stepSummary, failureMarkdown(o.agent, run.steps, d)).catch(() => undefined)
    }
    throw e
  }
}

interface PlanContext {
  store: ModelStore
  version: string
  source: BuildEngineResult['source']
  fetched: FetchResult
  keyed: { trt?: { path: string; version: TrtVersion }; transform?: 'int8' | 'fp16'; key: string; existing?: string }
  warnings: string[]
  started: number
}

/**
 * --dry-run: what each step would do, the exact trtexec command lines and where the version would go;
 * nothing is written to the store or a cache. To know the model's inputs (and so the shape flags), the trt
 * target exports into a temporary directory that is removed again.
 */
async function planOnly(o: BuildEngineOptions, c: CheckedOptions, run: Run, p: PlanContext): Promise<BuildEngineResult> {
  const final = p.store.versionDir(o.agent, p.version)
  const stagingDir = p.store.stagingDir(o.agent, p.version)
  const commands: string[] = []
  if (c.target === 'trt') {
    const tmp = await mkdtemp(join(tmpdir(), 'modelforge-plan-'))
    try {
      await run.step('export', (s) => exportModel({ model: p.fetched.snapshot, out: tmp, exporter: o.exporter, task: o.task, opset: o.opset, progress: nestProgress(o.progress, s.id) }),
        (e) => `model.onnx by the ${e.exporter} exporter, into a temporary directory to read its inputs`)
      const planned = await buildEngine({
        onnx: join(tmp, 'model.onnx'), out: final, precision: c.precision, trtexec: p.keyed.trt!.path, env: o.env, batch: o.batch, seq: o.seq, past: o.past, dims: o.dims,
        workspaceMiB: o.workspaceMiB, builderOptimizationLevel: o.builderOptimizationLevel, hardwareCompatibilityLevel: o.hardwareCompatibilityLevel,
        timingCacheDir: o.timingCacheDir, ...(p.keyed.transform ? { transform: o.transform } : {}), dryRun: true,
      })
      const onnxArg = (cmd: string) => cmd.replaceAll(join(tmp, 'model.onnx'), join(final, 'model.onnx'))
      commands.push(onnxArg(planned.commands.build))
      if (planned.commands.validation) commands.push(onnxArg(planned.commands.validation))
    } finally {
      await rm(tmp, { recursive: true, force: true })
    }
  }
  run.skipRest('dry run')
  const steps: { id: StepId; action: string }[] = [
    { id: 'source', action: p.source.kind === 'hub' ? `${p.source.repo}@${p.source.revision} (${p.source.commit}) from the cache` : `the local directory ${p.source.dir}` },
    { id: 'key', action: `build key ${p.keyed.key}${p.keyed.existing ? ` (${p.keyed.existing} has it; --force builds again)` : ''}` },
    { id: 'stage', action: `create ${stagingDir}` },
    { id: 'export', action: `export with the ${o.exporter ?? 'auto'} exporter into ${stagingDir}` },
    { id: 'quantize', action: p.keyed.transform ? `make the ${p.keyed.transform} model ${c.target === 'trt' ? `model.${p.keyed.transform}.onnx (in the build)` : 'model.onnx (fp32/model.onnx keeps the export)'}` : 'none' },
    { id: 'build', action: c.target === 'trt' ? `trtexec ${p.keyed.trt!.version.text} (${p.keyed.trt!.path}): ${c.precision} engine` : 'none (--target onnx)' },
    { id: 'validate', action: c.target === 'trt' ? 'the engine against onnxruntime on model.onnx' : c.precision === 'fp32' ? 'model.onnx against its reference outputs, or onnxruntime with optimizations off' : 'model.onnx against fp32/model.onnx' },
    { id: 'measure', action: c.target === 'trt' ? 'trtexec\'s benchmark in the build' : 'onnxruntime latency of model.onnx' },
    { id: 'publish', action: `finalize ${final}${c.publish ? ` and point ${c.channel} at it` : ' (not published)'}` },
  ]
  return {
    status: 'planned', agent: o.agent, version: p.version, store: p.store.root, path: final, target: c.target, precision: c.precision,
    channel: c.publish ? c.channel : null, published: false, buildKey: p.keyed.key, source: p.source, artifacts: [], metrics: {},
    timings: { totalMs: Math.round(performance.now() - p.started), steps: run.steps },
    plan: { steps, commands, paths: { staging: stagingDir, version: final, ...(c.publish ? { [c.channel]: join(p.store.agentDir(o.agent), c.channel) } : {}) } },
    warnings: p.warnings,
  }
}
