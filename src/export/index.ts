/**
 * `modelforge export`: a model directory or cached repo id -> <out>/model.onnx (+ external data),
 * config.json and tokenizer files, through one of three exporters, ending with a smoke run in onnxruntime.
 *
 * Everything is written into a staging directory inside --out and moved into place only after the smoke
 * run passed, so a failed export leaves --out as it was.
 */
import { cp, mkdir, mkdtemp, rename, rm, rmdir } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { ConflictError, UsageError } from '../lib/errors.js'
import { formatBytes, planSteps, runStep, type Progress } from '../lib/progress.js'
import { listFiles as listTree } from '../lib/tree.js'
import { openCheckpoint } from './safetensors.js'
import { inferTask, isNativeModelType, isNativeTask, NATIVE_TASKS, readHfConfig, unsupportedModelType, type HfConfig } from './model-config.js'
import { buildNativeGraph, NATIVE_OPSETS } from './native.js'
import { isSentenceTransformers, readSentenceTransformers, type SentenceTransformersConfig } from './sentence-transformers.js'
import { writeModelStreaming } from '../onnx/write-model.js'
import { copyRepoOnnx, findRepoOnnx, requireRepoOnnx } from './repo.js'
import { runOptimum } from './optimum.js'
import { smokeRun, type SmokeHints } from './smoke.js'
import { resolveModelSource, type ModelSource } from './source.js'
import { readModel } from '../onnx/proto.js'
import { externalDataFiles } from '../onnx/external-data.js'
import { type ValueInfo } from '../validate/runtime.js'

export const EXPORTERS = ['auto', 'repo', 'native', 'optimum'] as const
export type Exporter = (typeof EXPORTERS)[number]

export interface ExportOptions {
  /** A model directory or a repo id. */
  model: string
  out: string
  exporter?: Exporter
  task?: string
  opset?: number
  /** Shipped ONNX variant for the repo exporter (fp32 = model.onnx, fp16 = model_fp16.onnx, ...). */
  variant?: string
  revision?: string
  cacheDir?: string
  /** Replace an existing model.onnx in --out. */
  force?: boolean
  /** Where the steps report progress (silent when absent). */
  progress?: Progress
  /** Native exporter: weight bytes above which initializers go to external data (default 2 GB). */
  externalDataThreshold?: number
  optimumCli?: string
}

export interface ExportedFile {
  path: string
  size: number
}

export interface ExportResult {
  source: ModelSource
  out: string
  exporter: Exclude<Exporter, 'auto'>
  /** Why auto picked that exporter. */
  reason?: string
  task: string
  modelType?: string
  opset: number
  inputs: ValueInfo[]
  outputs: ValueInfo[]
  files: ExportedFile[]
  externalData: string[]
  weightBytes?: number
  smoke: { batch: number; sequence: number; outputs: Record<string, number[]> }
  durationMs: number
}

/** Tokenizer and pipeline files copied next to the model when the source has them. */
const SIDE_FILES = [
  'config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json',
  'added_tokens.json', 'vocab.txt', 'vocab.json', 'merges.txt', 'sentencepiece.bpe.model', 'spiece.model',
  'tokenizer.model', 'modules.json', 'sentence_bert_config.json', 'config_sentence_transformers.json',
  '1_Pooling/config.json',
]

const TASK_OUTPUT: Record<string, string> = {
  'feature-extraction': 'last_hidden_state',
  'text-classification': 'logits',
  'sentence-embedding': 'sentence_embedding',
}

interface Ctx {
  source?: ModelSource
  config?: HfConfig
  task?: string
  exporter?: Exclude<Exporter, 'auto'>
  reason?: string
  st?: SentenceTransformersConfig
  staging?: string
  opset?: number
  modelType?: string
  externalData?: string[]
  weightBytes?: number
  hints?: SmokeHints
  smoke?: Awaited<ReturnType<typeof smokeRun>>
  files?: ExportedFile[]
}

async function hasTaskOutput(dir: string, relPath: string, task: string): Promise<boolean> {
  const want = TASK_OUTPUT[task]
  if (!want) return true
  const model = await readModel(join(dir, relPath))
  return (model.graph?.output ?? []).some((o) => o.name === want)
}

async function chooseExporter(ctx: Ctx, options: ExportOptions): Promise<void> {
  const dir = ctx.source!.dir
  const requested = options.exporter ?? 'auto'
  if (requested !== 'auto') {
    ctx.exporter = requested
    return
  }
  const shipped = findRepoOnnx(dir, options.variant)
  if (shipped && (await hasTaskOutput(dir, shipped, ctx.task!))) {
    ctx.exporter = 'repo'
    ctx.reason = `the repository ships ${shipped}`
    return
  }
  if (options.variant && options.variant !== 'fp32') {
    // A non-fp32 variant can only come from the repository: exporting fp32 natively instead would hand back
    // something else than what was asked for.
    const rel = await requireRepoOnnx(dir, options.variant)
    throw new UsageError(`${rel} has no ${TASK_OUTPUT[ctx.task!]} output, which task ${ctx.task} needs`, {
      code: 'VARIANT_TASK_MISMATCH',
      hint: `Pass the task this file was exported for (--task), or drop --variant to export ${ctx.task} with another exporter.`,
    })
  }
  const modelType = ctx.config?.model_type
  if (isNativeModelType(modelType) && isNativeTask(ctx.task!)) {
    ctx.exporter = 'native'
    ctx.reason = `model_type ${modelType} and task ${ctx.task} are supported natively`
    return
  }
  ctx.exporter = 'optimum'
  ctx.reason = isNativeModelType(modelType) ? `task ${ctx.task} is not native` : `model_type ${String(modelType)} is not native`
}

/** The staging dir holds only what export wrote (copies, never links), so nothing needs following. */
async function listFiles(dir: string): Promise<ExportedFile[]> {
  return (await listTree(dir)).map((f) => ({ path: f.rel, size: f.size }))
}

async function copySideFiles(from: string, to: string, also: string[] = []): Promise<void> {
  for (const rel of [...SIDE_FILES, ...also]) {
    const src = join(from, rel)
    const dst = join(to, rel)
    if (!existsSync(src) || existsSync(dst)) continue
    await mkdir(join(dst, '..'), { recursive: true })
    await cp(src, dst, { dereference: true })
  }
}

/** --force: the old model.onnx and the external data files it names go, so no stale weights remain. */
async function removePreviousExport(out: string): Promise<void> {
  const old = join(out, 'model.onnx')
  if (!existsSync(old)) return
  let external: string[] = []
  try {
    external = externalDataFiles(await readModel(old))
  } catch {
    // A broken previous export: only model.onnx itself is known to be ours.
  }
  for (const f of ['model.onnx', ...external]) await rm(join(out, f), { force: true })
}

async function exportNative(ctx: Ctx, options: ExportOptions, report: (title: string) => void): Promise<void> {
  const { config, task } = ctx
  if (!isNativeModelType(config!.model_type)) throw unsupportedModelType(config!.model_type)
  if (!isNativeTask(task!)) {
    throw new UsageError(`Task ${task} is not supported by the native exporter (supported: ${NATIVE_TASKS.join(', ')})`, {
      code: 'UNSUPPORTED_TASK',
      hint: 'Use --exporter optimum for other tasks, or pass --task feature-extraction.',
    })
  }
  const weightsDir = ctx.st?.transformerDir ?? ctx.source!.dir
  const checkpoint = await openCheckpoint(weightsDir)
  try {
    const graph = buildNativeGraph(config!, checkpoint, { task, opset: options.opset, sentenceTransformers: ctx.st })
    report(`Writing model.onnx (${formatBytes(checkpoint.totalBytes)} of ${checkpoint.files.length > 1 ? `${checkpoint.files.length} shards` : 'safetensors'})`)
    const written = await writeModelStreaming(join(ctx.staging!, 'model.onnx'), graph.model, graph.initializers, {
      externalDataThreshold: options.externalDataThreshold,
    })
    ctx.opset = options.opset ?? 17
    ctx.modelType = graph.encoder.modelType
    ctx.externalData = written.externalData ? [written.externalData] : []
    ctx.weightBytes = written.weightBytes
    ctx.hints = {
      vocabSize: graph.encoder.vocabSize,
      typeVocabSize: graph.encoder.typeVocabSize || undefined,
      maxSequence: graph.encoder.maxSequence,
      expectedOutputs: graph.outputs,
    }
  } finally {
    await checkpoint.close()
  }
}

function hintsFromConfig(config: HfConfig | undefined): SmokeHints {
  if (!config) return {}
  const int = (k: string): number | undefined => (typeof config[k] === 'number' ? (config[k] as number) : undefined)
  let maxSequence = int('max_position_embeddings')
  if (maxSequence && /roberta/.test(String(config.model_type)) && typeof config.pad_token_id === 'number') maxSequence -= config.pad_token_id + 1
  return { vocabSize: int('vocab_size'), typeVocabSize: int('type_vocab_size'), maxSequence }
}

export async function exportModel(options: ExportOptions): Promise<ExportResult> {
  const started = performance.now()
  const out = resolve(options.out)
  if (options.exporter && !(EXPORTERS as readonly string[]).includes(options.exporter)) {
    throw new UsageError(`--exporter ${options.exporter} is not one of ${EXPORTERS.join(', ')}`, { code: 'INVALID_EXPORTER', hint: 'Pick auto, repo, native or optimum.' })
  }
  if (options.opset !== undefined && (!Number.isInteger(options.opset) || options.opset < 7)) {
    throw new UsageError(`--opset ${options.opset} is not a valid opset`, { code: 'UNSUPPORTED_OPSET', hint: `The native exporter writes opsets ${NATIVE_OPSETS.min} to ${NATIVE_OPSETS.max}.` })
  }
  if (existsSync(join(out, 'model.onnx')) && !options.force) {
    throw new ConflictError(`${join(out, 'model.onnx')} already exists`, {
      code: 'OUTPUT_EXISTS',
      hint: 'Choose another --out directory, or pass --force to replace the export there.',
    })
  }
  const ctx: Ctx = {}
  const outExisted = existsSync(out)
  const progress = options.progress
  planSteps(progress, [
    { id: 'resolve', title: `Resolving ${options.model}` },
    { id: 'choose', title: 'Reading config and choosing the exporter' },
    { id: 'export', title: 'Exporting' },
    { id: 'smoke', title: 'Smoke run in onnxruntime' },
    { id: 'write', title: `Writing ${out}` },
  ])
  const steps = async (): Promise<void> => {
    await runStep(progress, 'resolve', async (t) => {
      const c = ctx
      c.source = await resolveModelSource(options.model, { revision: options.revision, cacheDir: options.cacheDir })
      if (resolve(c.source.dir) === out) {
        throw new UsageError('--out is the model directory itself', { code: 'OUT_IS_SOURCE', hint: 'Export into a separate directory.' })
      }
      t.title(`Model: ${c.source.repo ? `${c.source.repo}@${c.source.revision}` : c.source.dir}`)
    })
    await runStep(progress, 'choose', async (t) => {
      const c = ctx
      const dir = c.source!.dir
      const requested = options.exporter ?? 'auto'
      const st = isSentenceTransformers(dir) ? await readSentenceTransformers(dir) : undefined
      const configDir = st?.transformerDir ?? dir
      // The repo and optimum exporters can work without config.json; native and auto need it to decide.
      if (requested === 'native' || requested === 'auto' || existsSync(join(configDir, 'config.json'))) {
        c.config = await readHfConfig(configDir)
      }
      c.task = options.task ?? inferTask(dir, c.config ?? {})
      if (c.task === 'sentence-embedding') c.st = st
      await chooseExporter(c, options)
      t.title(`Exporter ${c.exporter}${c.reason ? ` (${c.reason})` : ''}, task ${c.task}`)
    })
    await runStep(progress, 'export', async (t) => {
      const c = ctx
      await mkdir(out, { recursive: true })
      c.staging = await mkdtemp(join(out, '.modelforge-export-'))
      const dir = c.source!.dir
      if (c.exporter === 'native') {
        await exportNative(c, options, (title) => t.title(title))
      } else if (c.exporter === 'repo') {
        const rel = await requireRepoOnnx(dir, options.variant)
        t.title(`Copying ${rel}`)
        const copied = await copyRepoOnnx(dir, rel, c.staging)
        if (options.opset !== undefined && options.opset !== copied.opset) {
          throw new UsageError(`${rel} is opset ${copied.opset}, not the requested --opset ${options.opset}; the repo exporter copies models as they are`, {
            code: 'OPSET_MISMATCH',
            hint: 'Drop --opset, or use --exporter native / optimum to export at another opset.',
          })
        }
        const want = TASK_OUTPUT[c.task!]
        if (options.task && want && !(copied.model.graph?.output ?? []).some((o) => o.name === want)) {
          // An explicit --task is a promise about the outputs; a copied model that cannot keep it is refused.
          throw new UsageError(`${rel} has no ${want} output, which --task ${c.task} needs (it has ${(copied.model.graph?.output ?? []).map((o) => o.name).join(', ')})`, {
            code: 'VARIANT_TASK_MISMATCH',
            hint: 'Drop --task to copy the model as it is, or use --exporter native / optimum to export that task.',
          })
        }
        c.opset = copied.opset
        c.externalData = copied.externalData
        c.modelType = c.config?.model_type
        c.hints = hintsFromConfig(c.config)
      } else {
        t.title('Running optimum-cli export onnx')
        await runOptimum(dir, c.staging, {
          task: c.task,
          opset: options.opset,
          optimumCli: options.optimumCli,
          onLine: (line) => t.message(line),
        })
        const model = join(c.staging, 'model.onnx')
        if (!existsSync(model)) {
          const made = (await listFiles(c.staging)).map((f) => f.path)
          throw new UsageError(`optimum-cli wrote no model.onnx (it wrote: ${made.join(', ') || 'nothing'})`, {
            code: 'OPTIMUM_NO_MODEL',
            hint: 'Encoder-decoder models export to several files, which modelforge does not handle; pick an encoder-only model.',
          })
        }
        const proto = await readModel(model)
        c.opset = Number(proto.opsetImport?.find((o) => !o.domain)?.version ?? 0)
        c.externalData = externalDataFiles(proto)
        c.modelType = c.config?.model_type
        c.hints = hintsFromConfig(c.config)
      }
      await copySideFiles(c.st?.transformerDir ?? dir, c.staging)
      if (c.st && c.st.transformerDir !== dir) await copySideFiles(dir, c.staging)
    })
    await runStep(progress, 'smoke', async (t) => {
      const c = ctx
      c.smoke = await smokeRun(join(c.staging!, 'model.onnx'), c.hints)
      t.title(`Smoke run in onnxruntime: ${Object.entries(c.smoke.ran).map(([k, v]) => `${k} [${v.join(', ')}]`).join(', ')}`)
    })
    await runStep(progress, 'write', async () => {
      const c = ctx
      const staged = await listFiles(c.staging!)
      if (options.force) await removePreviousExport(out)
      for (const f of staged) {
        const dst = join(out, f.path)
        await mkdir(join(dst, '..'), { recursive: true })
        await rename(join(c.staging!, f.path), dst)
      }
      c.files = staged
    })
  }
  try {
    await steps()
  } catch (err) {
    if (ctx.staging) await rm(ctx.staging, { recursive: true, force: true })
    // Leave no trace of a failed export: an --out we created goes too (rmdir: only when still empty).
    if (!outExisted) await rmdir(out).catch(() => undefined)
    throw err
  }
  if (ctx.staging) await rm(ctx.staging, { recursive: true, force: true })
  return {
    source: ctx.source!,
    out,
    exporter: ctx.exporter!,
    reason: ctx.reason,
    task: ctx.task!,
    modelType: ctx.modelType,
    opset: ctx.opset!,
    inputs: ctx.smoke!.inputs,
    outputs: ctx.smoke!.outputs,
    files: ctx.files!,
    externalData: ctx.externalData ?? [],
    weightBytes: ctx.weightBytes,
    smoke: { batch: ctx.smoke!.batch, sequence: ctx.smoke!.sequence, outputs: ctx.smoke!.ran },
    durationMs: Math.round(performance.now() - started),
  }
}

export { resolveModelSource, type ModelSource } from './source.js'
export { inferTask, readHfConfig, encoderConfig, NATIVE_MODEL_TYPES, NATIVE_TASKS } from './model-config.js'
export { buildNativeGraph } from './native.js'
export { writeModelStreaming, type LazyInitializer } from '../onnx/write-model.js'
export { smokeRun } from './smoke.js'
export { readSentenceTransformers } from './sentence-transformers.js'
export { listRepoOnnx, findRepoOnnx } from './repo.js'
export { optimumArgs } from './optimum.js'
