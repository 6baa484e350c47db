/**
 * What every exporter is to exportModel: it is told about the model (ModelContext), says whether
 * --exporter auto should pick it, and produces model.onnx in a staging directory (ExporterOutput). Choosing,
 * the smoke run and the commit into --out work on this shape only, so an exporter is added in one module
 * under exporters/ and one line of its registry.
 */
import { type Progress, type StepReporter } from '../lib/progress.js'
import { type ValueSummary } from '../onnx/inspect.js'
import { type HfConfig } from './model-config.js'
import { type SentenceTransformersConfig } from './sentence-transformers.js'
import { type SmokeHints } from './smoke.js'
import { type DeclaredOutput } from './task-outputs.js'

export const EXPORTERS = ['auto', 'repo', 'native', 'optimum'] as const
export type Exporter = (typeof EXPORTERS)[number]
export type ExporterName = Exclude<Exporter, 'auto'>
export const EXPORT_DTYPES = ['fp32', 'fp16'] as const
export type ExportDtype = (typeof EXPORT_DTYPES)[number]

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
  /** Do not run the model in onnxruntime after the export (it is skipped anyway above SMOKE_MAX_WEIGHT_BYTES). */
  skipSmoke?: boolean
  /**
   * Native exporter: fp16 writes the weights and the computation in fp16 as they stream (the fp16
   * transform's default block list keeps softmax, norms and the like in float32; inputs and outputs stay
   * float32). Default fp32.
   */
  dtype?: ExportDtype
  /** Native exporter: weight bytes above which initializers go to external data (default 2 GB). */
  externalDataThreshold?: number
  optimumCli?: string
}

/** The model as the exporters see it, read once before one is chosen. */
export interface ModelContext {
  /** The model directory: a local directory or a snapshot of the Hugging Face cache. */
  sourceDir: string
  /** config.json (of the Transformer module in sentence-transformers layouts); absent only when an exporter that can do without it was asked for and there is none. */
  config?: HfConfig
  task: string
  /** The sentence-transformers pipeline, when the task is sentence-embedding and the model has one. */
  sentenceTransformers?: SentenceTransformersConfig
  options: Readonly<ExportOptions>
}

export interface ProduceContext extends ModelContext {
  /** Where model.onnx and its external data go; moved into --out only after the smoke run passed. */
  staging: string
}

export interface ExporterOutput {
  opset: number
  modelType?: string
  /** External data files model.onnx names, relative to it. */
  externalData: string[]
  /** Bytes of weights written, when the exporter wrote them itself. */
  weightBytes?: number
  /** What the smoke run needs to make valid inputs and which outputs it should see. */
  smoke: SmokeHints
  /** The outputs of the model written, as it declares them; held to the task after produce (task-outputs.ts). */
  outputs: DeclaredOutput[]
  /**
   * Inputs and outputs of model.onnx when the exporter built its graph in memory (graphInterface), so an
   * export without a smoke run does not read a multi-gigabyte model back for them.
   */
  declared?: { inputs: ValueSummary[]; outputs: ValueSummary[] }
  /** The shipped file copied (repo exporter): outputs it lacks are that file's, not an export's. */
  shipped?: string
  /** What the caller should know that does not stop the export (e.g. checkpoint weights the graph does not use). */
  warnings?: string[]
}

/**
 * What --exporter auto makes of an exporter for this model. An exporter that fits without a reason of its
 * own (the fallback) is explained by why the one asked before it did not fit.
 */
export type AutoFit = { fits: true; reason?: string } | { fits: false; reason: string }

export interface ModelExporter {
  readonly name: ExporterName
  /** Needs config.json to produce anything (the others read it when it is there). */
  readonly needsConfig: boolean
  /** May throw when the request can only be met by this exporter and it cannot meet it. */
  fits(ctx: ModelContext): Promise<AutoFit>
  /** Writes <staging>/model.onnx (and any external data it names); the step's title says what it does. */
  produce(ctx: ProduceContext, step: StepReporter): Promise<ExporterOutput>
}
