/**
 * `--exporter native`: the graph built in TypeScript from config.json and the safetensors checkpoint
 * (encoders in native-graph.ts, causal LMs in decoder-graph.ts), its weights streamed into model.onnx (or
 * external data past the threshold) one tensor at a time.
 */
import { join } from 'node:path'
import { UsageError } from '../../lib/errors.js'
import { formatBytes } from '../../lib/progress.js'
import { graphInterface } from '../../onnx/inspect.js'
import { lazyFp16 } from '../../onnx/lazy-fp16.js'
import { type ModelProto } from '../../onnx/proto.js'
import { type LazyInitializer, writeModelStreaming } from '../../onnx/write-model.js'
import { DECODER_TASKS, isDecoderModelType, isDecoderTask, unsupportedDecoderType } from '../decoder-config.js'
import { buildDecoderGraph } from '../decoder-graph.js'
import { writeDecoderLayout } from '../decoder-layout.js'
import { type ExporterOutput, type ModelExporter, type ProduceContext } from '../exporter.js'
import { isNativeModelType, isNativeTask, NATIVE_TASKS, unsupportedModelType } from '../model-config.js'
import { buildNativeGraph } from '../native-graph.js'
import { openCheckpoint } from '../safetensors.js'
import { type StepReporter } from '../../lib/progress.js'

const LISTED = 10

/** Worded after transformers' own warning for the same case. */
function unusedWarning(task: string, unused: string[]): string {
  const names = unused.length > LISTED ? `${unused.slice(0, LISTED).join(', ')} and ${unused.length - LISTED} more` : unused.join(', ')
  return `Some weights of the checkpoint were not used by the ${task} export (${unused.length}): ${names}. `
    + 'This is expected when the checkpoint carries a head for another task; otherwise config.json does not describe these weights '
    + '(an extra layer, a renamed or unknown tensor) and the export may not be the model you trained.'
}

function unsupportedTask(task: string, decoder: boolean): UsageError {
  const supported = decoder ? DECODER_TASKS : NATIVE_TASKS
  return new UsageError(`Task ${task} is not supported by the native exporter${decoder ? ' for causal LMs' : ''} (supported: ${supported.join(', ')})`, {
    code: 'UNSUPPORTED_TASK',
    hint: decoder ? 'A causal LM exports as text-generation-with-past (with its KV cache) or text-generation.' : 'Use --exporter optimum for other tasks, or pass --task feature-extraction.',
  })
}

const writing = (checkpoint: { totalBytes: number; files: unknown[] }, options: ProduceContext['options']): string =>
  `Writing model.onnx in ${options.dtype ?? 'fp32'} (${formatBytes(checkpoint.totalBytes)} of ${checkpoint.files.length > 1 ? `${checkpoint.files.length} shards` : 'safetensors'})`

/** The graph as it is written: fp32 as built, or fp16 converted from the weights' headers (lazy-fp16.ts). */
function inDtype(graph: { model: ModelProto; initializers: LazyInitializer[] }, options: ProduceContext['options']): { model: ModelProto; initializers: LazyInitializer[] } {
  if ((options.dtype ?? 'fp32') === 'fp32') return graph
  return lazyFp16(graph.model, graph.initializers)
}

async function produceDecoder({ config, task, sourceDir, staging, options }: ProduceContext, step: StepReporter): Promise<ExporterOutput> {
  if (!isDecoderTask(task)) throw unsupportedTask(task, true)
  const checkpoint = await openCheckpoint(sourceDir)
  try {
    const graph = buildDecoderGraph(config!, checkpoint, { task, opset: options.opset })
    const typed = inDtype(graph, options)
    step.title(writing(checkpoint, options))
    const written = await writeModelStreaming(join(staging, 'model.onnx'), typed.model, typed.initializers, {
      externalDataThreshold: options.externalDataThreshold,
    })
    const externalData = written.externalData ? [written.externalData] : []
    await writeDecoderLayout(staging, graph, externalData, sourceDir)
    return {
      opset: graph.opset,
      modelType: graph.decoder.modelType,
      externalData,
      weightBytes: written.weightBytes,
      smoke: { decoder: true, vocabSize: graph.decoder.vocabSize, expectedOutputs: graph.outputs },
      outputs: graph.outputs,
      declared: graphInterface(typed.model),
    }
  } finally {
    await checkpoint.close()
  }
}

export const nativeExporter: ModelExporter = {
  name: 'native',
  needsConfig: true,

  async fits({ config, task }) {
    const modelType = config?.model_type
    if (isNativeModelType(modelType) && isNativeTask(task)) return { fits: true, reason: `model_type ${modelType} and task ${task} are supported natively` }
    if (isDecoderModelType(modelType) && isDecoderTask(task)) return { fits: true, reason: `model_type ${modelType} and task ${task} are supported natively` }
    const known = isNativeModelType(modelType) || isDecoderModelType(modelType)
    return { fits: false, reason: known ? `task ${task} is not native for model_type ${modelType}` : `model_type ${String(modelType)} is not native` }
  },

  async produce(ctx, step) {
    const { config, task, sentenceTransformers, sourceDir, staging, options } = ctx
    if (isDecoderModelType(config!.model_type)) return produceDecoder(ctx, step)
    if (!isNativeModelType(config!.model_type)) {
      throw isDecoderTask(task) ? unsupportedDecoderType(config!.model_type) : unsupportedModelType(config!.model_type)
    }
    if (!isNativeTask(task)) throw unsupportedTask(task, false)
    const checkpoint = await openCheckpoint(sentenceTransformers?.transformerDir ?? sourceDir)
    try {
      const graph = buildNativeGraph(config!, checkpoint, { task, opset: options.opset, sentenceTransformers })
      const typed = inDtype(graph, options)
      step.title(writing(checkpoint, options))
      const written = await writeModelStreaming(join(staging, 'model.onnx'), typed.model, typed.initializers, {
        externalDataThreshold: options.externalDataThreshold,
      })
      return {
        opset: graph.opset,
        modelType: graph.encoder.modelType,
        externalData: written.externalData ? [written.externalData] : [],
        weightBytes: written.weightBytes,
        smoke: {
          vocabSize: graph.encoder.vocabSize,
          typeVocabSize: graph.encoder.typeVocabSize || undefined,
          maxSequence: graph.encoder.maxSequence,
          expectedOutputs: graph.outputs,
        },
        outputs: graph.outputs,
        declared: graphInterface(typed.model),
        ...(graph.unused.length > 0 ? { warnings: [unusedWarning(task, graph.unused)] } : {}),
      }
    } finally {
      await checkpoint.close()
    }
  },
}
