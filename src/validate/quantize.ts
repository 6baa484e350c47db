/**
 * quantize: an fp32 ONNX model -> an INT8 Q/DQ model calibrated with onnxruntime, or an fp16 model with fp32
 * edges; the model TensorRT builds its engine from (explicit quantization, strongly typed networks).
 *
 *   int8   read -> place Q/DQ (src/onnx/qdq.ts) -> calibration data (calib-data.ts) -> activation ranges
 *          (calibrate.ts, or the --calib-cache of an earlier run) -> insert Q/DQ -> accuracy on held-out
 *          inputs -> write the model and its calibration cache (<out>.calib.json minus .onnx)
 *   fp16   read -> magnitude run on sample inputs + conversion (fp16-model.ts) -> accuracy -> write
 *
 * The accuracy check runs the fp32 model and the new one on inputs calibration did not see: the batches of
 * --calib-data after the calibration batches when there are any, else generated inputs (seeded, inside the
 * vocabulary). A model that fails it is not written (exit 4, with the table).
 *
 * Lives in src/validate because it runs onnxruntime over the transforms of src/onnx (validate may import
 * onnx, not the reverse); commands and the build call this one function.
 */
import { basename, dirname, extname, join, resolve } from 'node:path'
import { stat } from 'node:fs/promises'
import { ConflictError, errnoCode, IntegrityError, osFailure, UsageError } from '../lib/errors.js'
import { writeFileAtomic } from '../lib/fs.js'
import { sha256File } from '../lib/hash.js'
import { readJsonFile } from '../lib/json.js'
import { planSteps, runStep, skipStep, type Progress } from '../lib/progress.js'
import { modelforgeVersion } from '../lib/version.js'
import { inlineExternalData } from '../onnx/external-data.js'
import { encodeModel, readModel, type ModelProto } from '../onnx/proto.js'
import { applyQdq, planQdq, type QdqPlan } from '../onnx/qdq.js'
import { alreadyFp16Error, isFp16Model, nameNodes, type Fp16Report } from '../onnx/to-fp16.js'
import { loadCalibData, type CalibData } from './calib-data.js'
import { calibrateExposed, CALIB_METHODS, type CalibMethod, type TensorRange } from './calibrate.js'
import { compareOutputs, DEFAULT_TOLERANCES, INT8_MIN_COSINE, parseTolerance, type OutputMetrics } from './compare.js'
import { makeFp16Model, measureMagnitudes } from './fp16-model.js'
import { generateInputs, modelHints, type ModelHints } from './inputs.js'
import { exposeValues, nodeOutputs, typesOf, type ExposedModel } from './intermediates.js'
import type { ValidateResult } from './report.js'
import { validationError } from './report.js'
import { closeModel, loadModel, runModel, type LoadedModel, type ValueInfo } from './runtime.js'
import { concatRows, type TensorMap } from './tensors.js'

export type QuantizePrecision = 'int8' | 'fp16'
export const QUANTIZE_PRECISIONS: readonly QuantizePrecision[] = ['int8', 'fp16']

export const QUANTIZE_DEFAULTS = {
  method: 'entropy' as CalibMethod,
  percentile: 99.999,
  calibBatches: 16,
  evalBatches: 4,
  batchSize: 4,
  seqLen: 128,
  fp16MaxAbs: 512,
  /** Held-out classifier rows whose argmax must agree with fp32. */
  minArgmaxAgreement: 0.95,
  /** Generated held-out inputs use their own seed: never the inputs of a generated calibration. */
  evalSeed: 1009,
}

export const CALIBRATION_SCHEMA = 'modelforge.calibration/v1'

export interface QuantizeOptions {
  /** The fp32 ONNX model. */
  model: string
  precision: QuantizePrecision
  /** The output model (default <model>.int8.onnx / <model>.fp16.onnx next to it). */
  out?: string
  /** Replace an existing output. */
  force?: boolean
  /** int8: a text file, a .jsonl file with a "text" field, or a directory of ONNX test-data inputs. fp16: optional sample inputs. */
  calibData?: string
  /** tokenizer.json (or a directory holding one) for text data; default the one next to the model. */
  tokenizer?: string
  calibBatches?: number
  batchSize?: number
  seqLen?: number
  method?: CalibMethod
  percentile?: number
  /** Activation ranges saved by an earlier run (its <out>.calib.json): calibration is skipped. */
  calibCache?: string
  quantizeAttention?: boolean
  /** fp16: ops kept in fp32 (replaces the default block list). */
  keepFp32?: readonly string[]
  fp16MaxAbs?: number
  /** Held-out batches for the accuracy check. */
  evalBatches?: number
  /** int8: lowest cosine per output (default 0.99). */
  minCosine?: number
  /** fp16: --atol / --rtol values over the fp16 defaults (1e-2). */
  atol?: readonly (string | number)[]
  rtol?: readonly (string | number)[]
  progress?: Progress
}

export interface CalibrationCache {
  schema: typeof CALIBRATION_SCHEMA
  /** The fp32 model the ranges belong to. */
  model: { sha256: string; bytes: number }
  method: CalibMethod
  percentile?: number
  quantizeAttention: boolean
  data?: { kind: CalibData['kind']; source: string; batches: number; batchSize: number; seqLen: number }
  tensors: Record<string, TensorRange>
  tools: { modelforge: string }
}

export interface QuantizeResult {
  precision: QuantizePrecision
  source: { path: string; bytes: number; sha256: string }
  out: { path: string; bytes: number; sha256: string }
  /** int8: where the ranges came from and what they are. */
  calibration?: {
    from: 'data' | 'cache'
    method: CalibMethod
    percentile?: number
    cache: string
    data?: CalibrationCache['data']
    tensors: number
    ms: number
  }
  /** int8: what was quantized and what was left in float, and why. */
  placement?: { quantized: Record<string, number>; skipped: Record<string, number>; weights: number; activations: number }
  fp16?: Fp16Report
  accuracy: ValidateResult & { heldOut: { from: 'data' | 'generated'; batches: number; rows: number } }
  timings: { totalMs: number; calibrationMs?: number; transformMs: number; accuracyMs: number }
  warnings: string[]
}

const STEPS_INT8 = [
  { id: 'read', title: 'Reading the model' },
  { id: 'place', title: 'Placing Q/DQ' },
  { id: 'calibrate', title: 'Calibrating activation ranges' },
  { id: 'transform', title: 'Quantizing' },
  { id: 'check', title: 'Checking accuracy against fp32 on held-out inputs' },
  { id: 'write', title: 'Writing the model' },
]
const STEPS_FP16 = [
  { id: 'read', title: 'Reading the model' },
  { id: 'transform', title: 'Converting to fp16' },
  { id: 'check', title: 'Checking accuracy against fp32' },
  { id: 'write', title: 'Writing the model' },
]

function positiveInt(value: number | undefined, flag: string): void {
  if (value !== undefined && (!Number.isInteger(value) || value < 1)) {
    throw new UsageError(`--${flag} must be a whole number of at least 1, got ${value}`, { code: 'INVALID_OPTION', hint: `For example --${flag} ${flag === 'seq-len' ? 128 : 4}.` })
  }
}

function checkOptions(o: QuantizeOptions): void {
  if (!QUANTIZE_PRECISIONS.includes(o.precision)) {
    throw new UsageError(`quantize makes int8 or fp16 models, not ${o.precision}`, { code: 'INVALID_PRECISION', hint: 'Pass --precision int8 or --precision fp16.' })
  }
  if (o.method !== undefined && !CALIB_METHODS.includes(o.method)) {
    throw new UsageError(`unknown calibration method ${o.method}`, { code: 'INVALID_OPTION', hint: `Use one of ${CALIB_METHODS.join(', ')}.` })
  }
  if (o.percentile !== undefined && !(o.percentile > 0 && o.percentile <= 100)) {
    throw new UsageError(`--percentile must be above 0 and at most 100, got ${o.percentile}`, { code: 'INVALID_OPTION', hint: 'For example --percentile 99.999.' })
  }
  if (o.fp16MaxAbs !== undefined && !(o.fp16MaxAbs > 0 && o.fp16MaxAbs <= 65504)) {
    throw new UsageError(`--fp16-max-abs must be above 0 and at most 65504 (the largest fp16), got ${o.fp16MaxAbs}`, { code: 'INVALID_OPTION', hint: 'For example --fp16-max-abs 512.' })
  }
  if (o.minCosine !== undefined && !(o.minCosine >= -1 && o.minCosine <= 1)) {
    throw new UsageError(`--min-cosine must be a number between -1 and 1, got ${o.minCosine}`, { code: 'INVALID_COSINE', hint: 'For example --min-cosine 0.99.' })
  }
  positiveInt(o.calibBatches, 'calib-batches')
  positiveInt(o.batchSize, 'batch-size')
  positiveInt(o.seqLen, 'seq-len')
  positiveInt(o.evalBatches, 'eval-batches')
  if (o.precision === 'fp16') {
    const int8Only = (['calibCache', 'method', 'percentile', 'quantizeAttention', 'calibBatches'] as const).filter((k) => o[k] !== undefined && o[k] !== false)
    if (int8Only.length) {
      throw new UsageError(`${int8Only.map(flagName).join(', ')} ${int8Only.length === 1 ? 'applies' : 'apply'} to --precision int8 only`, { code: 'INVALID_OPTION', hint: 'Drop them for fp16, or pass --precision int8.' })
    }
  } else if (o.keepFp32 !== undefined || o.fp16MaxAbs !== undefined) {
    throw new UsageError(`${o.keepFp32 !== undefined ? '--keep-fp32' : '--fp16-max-abs'} applies to --precision fp16 only`, { code: 'INVALID_OPTION', hint: 'Drop it for int8, or pass --precision fp16.' })
  }
  if (o.precision === 'int8' && o.calibData === undefined && o.calibCache === undefined) {
    throw new UsageError('--precision int8 needs calibration data: activation ranges are measured on inputs like the real ones', {
      code: 'CALIB_DATA_REQUIRED',
      hint: 'Pass --calib-data <file> (one text sample per line, or JSONL with a "text" field) or a directory of ONNX test-data inputs; or --calib-cache <file> from an earlier run.',
    })
  }
}

function flagName(key: string): string {
  return `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`
}

/** model.onnx -> model.int8.onnx next to it. */
export function defaultOutput(model: string, precision: QuantizePrecision): string {
  const ext = extname(model)
  return join(dirname(model), `${basename(model, ext || undefined)}.${precision}${ext || '.onnx'}`)
}

/** model.int8.onnx -> model.int8.calib.json beside it. */
export function cachePathFor(out: string): string {
  const ext = extname(out)
  return join(dirname(out), `${basename(out, ext || undefined)}.calib.json`)
}

async function checkOutput(out: string, source: string, force: boolean): Promise<void> {
  if (resolve(out) === resolve(source)) {
    throw new UsageError(`--out ${out} is the input model itself`, { code: 'INVALID_OPTION', hint: 'Write the transformed model to another file.' })
  }
  try {
    const s = await stat(out)
    if (s.isDirectory()) throw new UsageError(`--out ${out} is a directory`, { code: 'INVALID_OPTION', hint: 'Give the path of the .onnx file to write.' })
    if (!force) throw new ConflictError(`${out} exists already`, { code: 'OUTPUT_EXISTS', hint: 'Choose another --out, or pass --force to replace it.' })
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw osFailure(err, `checking the output ${out}`)
  }
}

export async function quantizeModel(o: QuantizeOptions): Promise<QuantizeResult> {
  const started = performance.now()
  checkOptions(o)
  const progress = o.progress
  const source = resolve(o.model)
  const out = resolve(o.out ?? defaultOutput(source, o.precision))
  const warnings: string[] = []
  planSteps(progress, o.precision === 'int8' ? STEPS_INT8 : STEPS_FP16)

  const read = await runStep(progress, 'read', async () => {
    await checkOutput(out, source, o.force ?? false)
    const [model, digest, hints] = await Promise.all([readModel(source), sha256File(source, { followSymlinks: true }), modelHints(source)])
    await inlineExternalData(model, dirname(source))
    // One session of the fp32 model with every node output exposed: it gives the value types, runs the
    // calibration (or the fp16 magnitude check) and is the reference of the accuracy check, fetching each
    // time only what that step needs. Loading the model once instead of three times halves the wall time.
    const session = await exposeValues(model, source, nodeOutputs(model))
    return { model, digest, hints, types: typesOf(session), session, reference: session.loaded }
  }, { title: (r) => `${source}: ${r.model.graph?.node?.length ?? 0} nodes, ${(r.digest.size / 2 ** 20).toFixed(1)} MiB` })

  const { model, digest, hints, reference, session } = read
  let open = true
  const release = async (): Promise<void> => {
    if (open) await session.close()
    open = false
  }
  try {
    const ctx: Ctx = { o, source, out, model, digest, hints, reference, session, release, warnings }
    const made = o.precision === 'int8' ? await int8(ctx, read.types) : await fp16(ctx, read.types)
    const bytes = encodeModel(made.model)
    // Both models live on as bytes only: drop their weights (the fp32 file's buffer among them) before the
    // new model is loaded for the check, so that peak memory holds one copy of the weights, not four.
    for (const m of [made.model, model]) for (const t of m.graph?.initializer ?? []) t.rawData = undefined
    if (bytes.byteLength >= 2 ** 31 - 1) {
      throw new UsageError(`the ${o.precision} model would be ${(bytes.byteLength / 2 ** 30).toFixed(2)} GiB, beyond protobuf's 2 GiB limit for one file`, {
        code: 'MODEL_TOO_LARGE',
        hint: 'quantize writes single-file models; models this large need external data, which it does not write yet.',
      })
    }
    const accuracy = await runStep(progress, 'check', async (step) => checkAccuracy(ctx, bytes, made.heldOut, (t) => step.message(t)), {
      title: (a) => `Accuracy on ${a.heldOut.rows} held-out rows (${a.heldOut.from}): ${a.passed ? a.outputs.map((m) => `${m.name} ${o.precision === 'int8' ? `cosine ${m.cosine.toFixed(4)}${m.argmaxAgreement !== undefined ? `, argmax ${(m.argmaxAgreement * 100).toFixed(1)}%` : ''}` : `max abs err ${m.maxAbsErr.toExponential(2)}`}`).join('; ') : `${a.failed.length} FAILED`}`,
    })
    if (!accuracy.passed) {
      throw validationError(accuracy, { subject: `the ${o.precision} model's accuracy check`, suggestPrecision: false })
    }
    await runStep(progress, 'write', async () => {
      try {
        await writeFileAtomic(out, bytes)
        if (made.cache) await writeFileAtomic(made.cache.path, JSON.stringify(made.cache.content, null, 2) + '\n')
      } catch (err) {
        throw osFailure(err, `writing ${out}`)
      }
    }, { title: () => `Wrote ${out} (${(bytes.byteLength / 2 ** 20).toFixed(2)} MiB)${made.cache ? ` and ${made.cache.path}` : ''}` })
    const written = await sha256File(out)
    return {
      precision: o.precision,
      source: { path: source, bytes: digest.size, sha256: digest.sha256 },
      out: { path: out, bytes: written.size, sha256: written.sha256 },
      ...(made.calibration ? { calibration: made.calibration } : {}),
      ...(made.placement ? { placement: made.placement } : {}),
      ...(made.fp16 ? { fp16: made.fp16 } : {}),
      accuracy,
      timings: {
        totalMs: performance.now() - started,
        ...(made.calibration ? { calibrationMs: made.calibration.ms } : {}),
        transformMs: made.transformMs,
        accuracyMs: accuracy.ms,
      },
      warnings,
    }
  } finally {
    await release()
  }
}

interface Ctx {
  o: QuantizeOptions
  source: string
  out: string
  model: ModelProto
  digest: { size: number; sha256: string }
  hints: ModelHints
  reference: LoadedModel
  session: ExposedModel
  /** Closes the fp32 session (once; quantizeModel's finally calls it too). */
  release(): Promise<void>
  warnings: string[]
}

interface Made {
  model: ModelProto
  heldOut: HeldOut
  transformMs: number
  calibration?: QuantizeResult['calibration']
  placement?: QuantizeResult['placement']
  fp16?: Fp16Report
  cache?: { path: string; content: CalibrationCache }
}

interface HeldOut { from: 'data' | 'generated'; batches: TensorMap[]; expected: TensorMap[] }

/** The sequence length calibration uses: --seq-len, within the model's positions. */
function seqLenFor(c: Ctx): number {
  const want = c.o.seqLen ?? QUANTIZE_DEFAULTS.seqLen
  return c.hints.maxPositions ? Math.min(want, c.hints.maxPositions) : want
}

/**
 * Batches pulled one at a time from the calibration data: the first `calibBatches` feed calibration (and
 * are dropped as they are used), the next ones up to `evalBatches` are kept as held-out inputs.
 */
class BatchSource {
  private readonly it: Iterator<TensorMap> | AsyncIterator<TensorMap>
  constructor(data: CalibData) {
    const b = data.batches()
    this.it = Symbol.asyncIterator in b ? (b as AsyncIterable<TensorMap>)[Symbol.asyncIterator]() : (b as Iterable<TensorMap>)[Symbol.iterator]()
  }

  async next(): Promise<TensorMap | undefined> {
    const r = await this.it.next()
    return r.done ? undefined : r.value
  }

  async *take(n: number, counted: { n: number }): AsyncGenerator<TensorMap> {
    while (counted.n < n) {
      const batch = await this.next()
      if (!batch) return
      counted.n++
      yield batch
    }
  }

  async close(): Promise<void> {
    await this.it.return?.()
  }
}

async function heldOutFrom(c: Ctx, batches: BatchSource | undefined): Promise<HeldOut> {
  const want = c.o.evalBatches ?? QUANTIZE_DEFAULTS.evalBatches
  const fromData: TensorMap[] = []
  while (batches && fromData.length < want) {
    const b = await batches.next()
    if (!b) break
    fromData.push(b)
  }
  const held: Omit<HeldOut, 'expected'> = fromData.length
    ? { from: 'data', batches: fromData }
    : { from: 'generated', batches: generatedBatches(c, c.reference.inputs, want, QUANTIZE_DEFAULTS.evalSeed) }
  // The fp32 outputs now, while its session is open: it is released before the new model is made, so
  // that the two never take memory at the same time.
  const names = (c.model.graph?.output ?? []).map((x) => x.name)
  const expected: TensorMap[] = []
  for (const b of held.batches) expected.push(await c.session.run(b, names))
  await c.release()
  return { ...held, expected }
}

function generatedBatches(c: Ctx, inputs: readonly ValueInfo[], n: number, seed: number): TensorMap[] {
  return Array.from({ length: n }, (_, i) => generateInputs(inputs, {
    ...c.hints,
    samples: c.o.batchSize ?? QUANTIZE_DEFAULTS.batchSize,
    sequenceLength: seqLenFor(c),
    seed: seed + i,
  }))
}

async function openData(c: Ctx): Promise<CalibData | undefined> {
  if (c.o.calibData === undefined) return undefined
  return loadCalibData({
    data: c.o.calibData,
    inputs: c.reference.inputs,
    modelPath: c.source,
    ...(c.o.tokenizer !== undefined ? { tokenizer: c.o.tokenizer } : {}),
    batchSize: c.o.batchSize ?? QUANTIZE_DEFAULTS.batchSize,
    seqLen: seqLenFor(c),
  })
}

async function int8(c: Ctx, types: Map<string, string>): Promise<Made> {
  const { o, model } = c
  const progress = o.progress
  const plan = await runStep(progress, 'place', async () => planQdq(model, { quantizeAttention: o.quantizeAttention ?? false, valueTypes: types }), {
    title: (p) => `Q/DQ on ${countText(p.counts.quantized)}; left in float: ${countText(p.counts.skipped) || 'nothing'}`,
  })
  const method = o.method ?? QUANTIZE_DEFAULTS.method
  const cachePath = cachePathFor(c.out)
  const data = await openData(c)
  const batches = data ? new BatchSource(data) : undefined
  try {
    const calibBatches = o.calibBatches ?? QUANTIZE_DEFAULTS.calibBatches
    const t0 = performance.now()
    let cache: CalibrationCache
    let from: 'data' | 'cache'
    if (o.calibCache !== undefined) {
      cache = await readCalibrationCache(o.calibCache, c, plan)
      from = 'cache'
      if (o.method !== undefined && o.method !== cache.method) c.warnings.push(`--method ${o.method} ignored: the ranges of ${o.calibCache} were calibrated with ${cache.method}`)
      skipStep(progress, 'calibrate', `ranges from ${o.calibCache} (${cache.method})`)
      // The held-out inputs are those after the calibration batches, as in the run that made the cache.
      if (batches) for await (const b of batches.take(cache.data?.batches ?? calibBatches, { n: 0 })) void b
    } else {
      from = 'data'
      const counted = { n: 0 }
      const tensors = await runStep(progress, 'calibrate', async (step) => {
        const ranges = await calibrateExposed(c.session, c.source, plan.activations, batches!.take(calibBatches, counted), {
          method,
          ...(o.percentile !== undefined ? { percentile: o.percentile } : {}),
          onBatch: (done) => step.message(`batch ${done} of at most ${calibBatches}`),
        })
        if (counted.n === 0) {
          throw new UsageError(`${o.calibData} holds no calibration samples`, { code: 'CALIB_DATA_EMPTY', hint: 'Give a file with at least one sample (one per line, or JSONL with a "text" field).' })
        }
        return ranges
      }, { title: () => `${method} ranges of ${plan.activations.length} tensors from ${counted.n} batch${counted.n === 1 ? '' : 'es'} of ${o.calibData}` })
      cache = {
        schema: CALIBRATION_SCHEMA,
        model: { sha256: c.digest.sha256, bytes: c.digest.size },
        method,
        ...(method === 'percentile' ? { percentile: o.percentile ?? QUANTIZE_DEFAULTS.percentile } : {}),
        quantizeAttention: o.quantizeAttention ?? false,
        data: { kind: data!.kind, source: data!.source, batches: counted.n, batchSize: o.batchSize ?? QUANTIZE_DEFAULTS.batchSize, seqLen: seqLenFor(c) },
        tensors: Object.fromEntries(plan.activations.map((t) => [t, tensors[t]!])),
        tools: { modelforge: modelforgeVersion() },
      }
    }
    const calibrationMs = performance.now() - t0
    const heldOut = await heldOutFrom(c, batches)
    const t1 = performance.now()
    const quantized = await runStep(progress, 'transform', async () => applyQdq(model, plan, cache.tensors), {
      title: () => `${plan.weights.length} weights per channel, ${plan.activations.length} activations per tensor, int8 symmetric`,
    })
    quantized.metadataProps = [...(quantized.metadataProps ?? []).filter((p) => p.key !== 'modelforge.quantize'), {
      key: 'modelforge.quantize',
      // No path, time or cache name: the same model and ranges must give the same bytes.
      value: JSON.stringify({ precision: 'int8', method: cache.method, source_sha256: c.digest.sha256, quantize_attention: cache.quantizeAttention }),
    }]
    return {
      model: quantized,
      heldOut,
      transformMs: performance.now() - t1,
      calibration: {
        from, method: cache.method, ...(cache.percentile !== undefined ? { percentile: cache.percentile } : {}),
        cache: cachePath, ...(cache.data ? { data: cache.data } : {}), tensors: Object.keys(cache.tensors).length, ms: calibrationMs,
      },
      placement: { quantized: plan.counts.quantized, skipped: plan.counts.skipped, weights: plan.weights.length, activations: plan.activations.length },
      cache: { path: cachePath, content: cache },
    }
  } finally {
    await batches?.close()
  }
}

async function fp16(c: Ctx, types: Map<string, string>): Promise<Made> {
  const { o } = c
  const data = await openData(c)
  const batches = data ? new BatchSource(data) : undefined
  try {
    if (isFp16Model(c.model)) throw alreadyFp16Error(c.source)
    // Measurement and rewrite know nodes by name.
    const named = nameNodes(c.model)
    // The magnitude run needs inputs like the real ones: the first batch of --calib-data, else generated.
    const samples: TensorMap[] = []
    const sampleBatches = 1
    let heldOut: HeldOut | undefined
    for await (const b of batches?.take(sampleBatches, { n: 0 }) ?? []) samples.push(b)
    if (!samples.length) samples.push(...generatedBatches(c, c.reference.inputs, sampleBatches, 0))
    const t1 = performance.now()
    const made = await runStep(o.progress, 'transform', async () => {
      const maxAbs = o.fp16MaxAbs ?? QUANTIZE_DEFAULTS.fp16MaxAbs
      const measured = await measureMagnitudes(named, c.source, samples, { maxAbs, session: c.session })
      heldOut = await heldOutFrom(c, batches)
      return makeFp16Model({
        model: named, path: c.source, samples, valueTypes: types, measured,
        ...(o.keepFp32 !== undefined ? { keepFp32Ops: o.keepFp32 } : {}),
        maxAbs,
      })
    }, { title: (m) => `${m.report.convertedNodes} nodes in fp16, ${m.report.kept.length} kept in fp32 (${countText(countBy(m.report.kept.map((k) => k.reason))) || 'none'})` })
    made.model.metadataProps = [...(made.model.metadataProps ?? []).filter((p) => p.key !== 'modelforge.quantize'), {
      key: 'modelforge.quantize',
      value: JSON.stringify({ precision: 'fp16', source_sha256: c.digest.sha256, max_abs: o.fp16MaxAbs ?? QUANTIZE_DEFAULTS.fp16MaxAbs }),
    }]
    return { model: made.model, heldOut: heldOut!, transformMs: performance.now() - t1, fp16: made.report }
  } finally {
    await batches?.close()
  }
}

function countBy(keys: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {}
  for (const k of keys) out[k] = (out[k] ?? 0) + 1
  return out
}

function countText(counts: Record<string, number>): string {
  return Object.entries(counts).map(([k, n]) => `${n} ${k}`).join(', ')
}

async function readCalibrationCache(path: string, c: Ctx, plan: QdqPlan): Promise<CalibrationCache> {
  const cache = await readJsonFile<CalibrationCache>(path, { expect: 'object' })
  if (cache.schema !== CALIBRATION_SCHEMA || typeof cache.tensors !== 'object' || cache.tensors === null || !CALIB_METHODS.includes(cache.method)) {
    throw new IntegrityError(`${path} is not a modelforge calibration cache (schema ${JSON.stringify(cache.schema)})`, {
      code: 'CALIB_CACHE_INVALID',
      hint: `Give the .calib.json an earlier \`quantize --precision int8\` wrote next to its model (schema ${CALIBRATION_SCHEMA}), or calibrate again with --calib-data.`,
    })
  }
  if (cache.model?.sha256 !== c.digest.sha256) {
    throw new IntegrityError(`${path} holds the ranges of another model (sha256 ${String(cache.model?.sha256).slice(0, 12)}…, this one is ${c.digest.sha256.slice(0, 12)}…)`, {
      code: 'CALIB_CACHE_MISMATCH',
      hint: 'Ranges belong to the exact model they were measured on: calibrate this model with --calib-data (it writes a new cache).',
    })
  }
  const missing = plan.activations.filter((t) => !(t in cache.tensors))
  const bad = plan.activations.filter((t) => t in cache.tensors && !(cache.tensors[t]!.amax > 0 && Number.isFinite(cache.tensors[t]!.amax)))
  if (missing.length || bad.length) {
    throw new IntegrityError(`${path} lacks usable ranges for ${missing.length + bad.length} of the ${plan.activations.length} tensors this placement quantizes (${[...missing, ...bad].slice(0, 3).join(', ')}${missing.length + bad.length > 3 ? ', ...' : ''})`, {
      code: 'CALIB_CACHE_MISMATCH',
      hint: `The cache was made with ${cache.quantizeAttention ? '' : 'no '}--quantize-attention; use the same placement, or calibrate again with --calib-data.`,
    })
  }
  return cache
}

async function checkAccuracy(c: Ctx, bytes: Uint8Array, heldOut: HeldOut, message: (text: string) => void): Promise<QuantizeResult['accuracy'] & { ms: number }> {
  const t0 = performance.now()
  const { o } = c
  const candidate = await loadModel(bytes, { label: c.out })
  try {
    const names = (c.model.graph?.output ?? []).map((x) => x.name)
    const actual: Record<string, TensorMap[string][]> = {}
    const expected: Record<string, TensorMap[string][]> = {}
    let rows = 0
    for (const [i, batch] of heldOut.batches.entries()) {
      message(`held-out batch ${i + 1} of ${heldOut.batches.length}`)
      const a = await runModel(candidate, batch, names)
      const e = heldOut.expected[i]!
      for (const n of names) {
        ;(actual[n] ??= []).push(a[n]!)
        ;(expected[n] ??= []).push(e[n]!)
      }
      rows += Object.values(batch)[0]?.dims[0] ?? 1
    }
    const joined = (m: Record<string, TensorMap[string][]>): TensorMap => Object.fromEntries(names.map((n) => [n, concatRows(m[n]!)]))
    const precision = o.precision
    const outputs: OutputMetrics[] = compareOutputs(joined(actual), joined(expected), names, `held-out (${heldOut.from})`, {
      precision,
      atol: parseTolerance(o.atol, 'atol'),
      rtol: parseTolerance(o.rtol, 'rtol'),
      fallback: DEFAULT_TOLERANCES[precision],
      ...(precision === 'int8' ? { minCosine: o.minCosine ?? INT8_MIN_COSINE, minArgmaxAgreement: QUANTIZE_DEFAULTS.minArgmaxAgreement } : o.minCosine !== undefined ? { minCosine: o.minCosine } : {}),
    })
    const failed = outputs.filter((m) => !m.passed).map((m) => `${m.dataset}/${m.name}`)
    return {
      candidate: c.out,
      reference: c.source,
      referenceKind: 'onnx',
      precision,
      inputsFrom: heldOut.from === 'data' ? 'inputs' : 'generated',
      datasets: 1,
      outputs,
      passed: failed.length === 0,
      failed,
      heldOut: { from: heldOut.from, batches: heldOut.batches.length, rows },
      ms: performance.now() - t0,
    }
  } finally {
    await closeModel(candidate)
  }
}
