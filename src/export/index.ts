/**
 * `modelforge export`: a model directory or cached repo id -> <out>/model.onnx (+ external data),
 * config.json and tokenizer files, through one of three exporters (exporters/), ending with a smoke run in
 * onnxruntime. The steps: check the options, resolve the model, choose the exporter, let it produce the
 * model in a staging directory inside --out, smoke-run it, and only then move it into place, so a failed
 * export leaves --out as it was. From the first write to --out to the end of the move, the export holds the
 * lock of --out, so of two exports into one --out only one commits (the other exits 5).
 */
import { existsSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { ConflictError, UsageError } from '../lib/errors.js'
import { formatBytes, planSteps, runStep, skipStep } from '../lib/progress.js'
import { inspectModel, type ValueSummary } from '../onnx/inspect.js'
import { type ValueInfo } from '../validate/runtime.js'
import { chooseExporter, readModelContext } from './choose.js'
import { EXPORTERS, type ExporterName, type ExportDtype, type ExporterOutput, type ExportOptions } from './exporter.js'
import { NATIVE_OPSETS } from './native-graph.js'
import { smokeRun, type SmokeResult } from './smoke.js'
import { checkTaskOutputs } from './task-outputs.js'
import { resolveModelSource, type ModelSource } from './source.js'
import { type FileLock } from '../lib/lock.js'
import { checkOutDirectory, commitStaging, discardStaging, lockOut, openStaging, stageSideFiles, type ExportedFile } from './staging.js'

export { EXPORT_DTYPES, EXPORTERS, type ExportDtype, type Exporter, type ExportOptions } from './exporter.js'
export { type ExportedFile } from './staging.js'

export interface ExportResult {
  source: ModelSource
  out: string
  exporter: ExporterName
  /** Why auto picked that exporter. */
  reason?: string
  task: string
  modelType?: string
  opset: number
  /** What the native exporter wrote the weights and computation in (other exporters write what they write). */
  dtype?: ExportDtype
  inputs: ValueInfo[]
  outputs: ValueInfo[]
  files: ExportedFile[]
  externalData: string[]
  weightBytes?: number
  /** The smoke run's shapes, or why it was skipped (then inputs and outputs are as the model declares them). */
  smoke: { batch: number; sequence: number; outputs: Record<string, number[]> } | { skipped: string }
  durationMs: number
  /** What did not stop the export but should be known: unused checkpoint weights, unchecked task outputs. */
  warnings?: string[]
}

function outputExists(out: string): ConflictError {
  return new ConflictError(`${join(out, 'model.onnx')} already exists`, {
    code: 'OUTPUT_EXISTS',
    hint: 'Choose another --out directory, or pass --force to replace the export there.',
  })
}

async function checkOptions(options: ExportOptions, out: string): Promise<void> {
  if (options.exporter && !(EXPORTERS as readonly string[]).includes(options.exporter)) {
    throw new UsageError(`--exporter ${options.exporter} is not one of ${EXPORTERS.join(', ')}`, { code: 'INVALID_EXPORTER', hint: 'Pick auto, repo, native or optimum.' })
  }
  if (options.opset !== undefined && (!Number.isInteger(options.opset) || options.opset < 7)) {
    throw new UsageError(`--opset ${options.opset} is not a valid opset`, { code: 'UNSUPPORTED_OPSET', hint: `The native exporter writes opsets ${NATIVE_OPSETS.min} to ${NATIVE_OPSETS.max}.` })
  }
  await checkOutDirectory(out)
  // A first look, to fail before any work; the look that counts is taken again under the lock of --out.
  if (existsSync(join(out, 'model.onnx')) && !options.force) throw outputExists(out)
}

/**
 * The smoke run loads the whole model into onnxruntime, which takes about twice its weights in memory:
 * above this many bytes of weights (an 8B model in fp16 or fp32) it is skipped and the result says so.
 */
export const SMOKE_MAX_WEIGHT_BYTES = 8 * 2 ** 30

function smokeSkipReason(options: ExportOptions, weightBytes: number | undefined): string | undefined {
  if (options.skipSmoke) return 'skipped: --skip-smoke'
  if (weightBytes !== undefined && weightBytes > SMOKE_MAX_WEIGHT_BYTES) {
    return `skipped: the weights (${formatBytes(weightBytes)}) are over the ${formatBytes(SMOKE_MAX_WEIGHT_BYTES)} onnxruntime is given here; validate or build the model on a machine that holds it`
  }
  return undefined
}

function dtypeUnsupported(dtype: string, exporter: string): UsageError {
  return new UsageError(`--dtype ${dtype} is written by the native exporter only, and this export uses the ${exporter} exporter`, {
    code: 'EXPORT_DTYPE_UNSUPPORTED',
    hint: 'Export in fp32 and convert with modelforge quantize --precision fp16 (which also measures what must stay fp32), or pass --exporter native for a model it supports.',
  })
}

/** Inputs and outputs as model.onnx declares them, for an export whose smoke run was skipped. */
async function declaredInterface(path: string, known: ExporterOutput['declared']): Promise<{ inputs: ValueInfo[]; outputs: ValueInfo[] }> {
  const info = known ?? await inspectModel(path)
  const view = (v: ValueSummary): ValueInfo => ({ name: v.name, dtype: v.dtype, shape: v.shape ?? [], isTensor: !/^(sequence|map|optional)</.test(v.dtype) })
  return { inputs: info.inputs.map(view), outputs: info.outputs.map(view) }
}

export async function exportModel(options: ExportOptions): Promise<ExportResult> {
  const started = performance.now()
  const out = resolve(options.out)
  await checkOptions(options, out)
  const outExisted = existsSync(out)
  const progress = options.progress
  planSteps(progress, [
    { id: 'resolve', title: `Resolving ${options.model}` },
    { id: 'choose', title: 'Reading config and choosing the exporter' },
    { id: 'export', title: 'Exporting' },
    { id: 'smoke', title: 'Smoke run in onnxruntime' },
    { id: 'write', title: `Writing ${out}` },
  ])
  let staging: string | undefined
  let lock: FileLock | undefined
  const warnings: string[] = []
  try {
    const source = await runStep(progress, 'resolve', async () => {
      const s = await resolveModelSource(options.model, { revision: options.revision, cacheDir: options.cacheDir })
      if (resolve(s.dir) === out) {
        throw new UsageError('--out is the model directory itself', { code: 'OUT_IS_SOURCE', hint: 'Export into a separate directory.' })
      }
      return s
    }, { title: (s) => `Model: ${s.repo ? `${s.repo}@${s.revision}` : s.dir}` })
    const { model, choice } = await runStep(progress, 'choose', async () => {
      const m = await readModelContext(source.dir, options)
      const c = await chooseExporter(m)
      if ((options.dtype ?? 'fp32') !== 'fp32' && c.exporter.name !== 'native') throw dtypeUnsupported(options.dtype!, c.exporter.name)
      return { model: m, choice: c }
    }, { title: ({ model: m, choice: c }) => `Exporter ${c.exporter.name}${c.reason ? ` (${c.reason})` : ''}, task ${m.task}` })
    const produced = await runStep(progress, 'export', async (step) => {
      // Nothing is written to --out before this point (the model is resolved and read first).
      lock = lockOut(out)
      if (existsSync(join(out, 'model.onnx')) && !options.force) throw outputExists(out)
      staging = await openStaging(out)
      const output = await choice.exporter.produce({ ...model, staging }, step)
      warnings.push(...(output.warnings ?? []))
      warnings.push(...checkTaskOutputs(model.task, options.task !== undefined, { ...output, exporter: choice.exporter.name }))
      await stageSideFiles(model, staging)
      return output
    })
    const skipped = smokeSkipReason(options, produced.weightBytes)
    let smoke: SmokeResult | undefined
    if (skipped) skipStep(progress, 'smoke', skipped)
    else {
      smoke = await runStep(progress, 'smoke', () => smokeRun(join(staging!, 'model.onnx'), produced.smoke), {
        title: (r) => `Smoke run in onnxruntime: ${Object.entries(r.ran).map(([k, v]) => `${k} [${v.join(', ')}]`).join(', ')}`,
      })
    }
    const declared = smoke ?? await declaredInterface(join(staging!, 'model.onnx'), produced.declared)
    const files = await runStep(progress, 'write', () => commitStaging(staging!, out, options.force))
    lock!.release()
    return {
      source,
      out,
      exporter: choice.exporter.name,
      reason: choice.reason,
      task: model.task,
      modelType: produced.modelType,
      opset: produced.opset,
      ...(choice.exporter.name === 'native' ? { dtype: options.dtype ?? 'fp32' } : {}),
      inputs: declared.inputs,
      outputs: declared.outputs,
      files,
      externalData: produced.externalData,
      weightBytes: produced.weightBytes,
      smoke: smoke ? { batch: smoke.batch, sequence: smoke.sequence, outputs: smoke.ran } : { skipped: skipped! },
      durationMs: Math.round(performance.now() - started),
      ...(warnings.length > 0 ? { warnings } : {}),
    }
  } catch (err) {
    await discardStaging(staging, out, outExisted, lock)
    throw err
  }
}

export { resolveModelSource, type ModelSource } from './source.js'
export { inferTask, readHfConfig, encoderConfig, NATIVE_MODEL_TYPES, NATIVE_TASKS } from './model-config.js'
export { buildNativeGraph } from './native-graph.js'
export { writeModelStreaming, type LazyInitializer } from '../onnx/write-model.js'
export { smokeRun } from './smoke.js'
export { readSentenceTransformers } from './sentence-transformers.js'
export { listRepoOnnx, findRepoOnnx } from './exporters/repo.js'
export { optimumArgs } from './exporters/optimum.js'
