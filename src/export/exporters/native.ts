/**
 * `--exporter native`: the encoder graph built in TypeScript (native-graph.ts) from config.json and the
 * safetensors checkpoint, its weights streamed into model.onnx (or external data past the threshold) one
 * tensor at a time.
 */
import { join } from 'node:path'
import { UsageError } from '../../lib/errors.js'
import { formatBytes } from '../../lib/progress.js'
import { writeModelStreaming } from '../../onnx/write-model.js'
import { type ModelExporter } from '../exporter.js'
import { isNativeModelType, isNativeTask, NATIVE_TASKS, unsupportedModelType } from '../model-config.js'
import { buildNativeGraph } from '../native-graph.js'
import { openCheckpoint } from '../safetensors.js'

const LISTED = 10

/** Worded after transformers' own warning for the same case. */
function unusedWarning(task: string, unused: string[]): string {
  const names = unused.length > LISTED ? `${unused.slice(0, LISTED).join(', ')} and ${unused.length - LISTED} more` : unused.join(', ')
  return `Some weights of the checkpoint were not used by the ${task} export (${unused.length}): ${names}. `
    + 'This is expected when the checkpoint carries a head for another task; otherwise config.json does not describe these weights '
    + '(an extra layer, a renamed or unknown tensor) and the export may not be the model you trained.'
}

export const nativeExporter: ModelExporter = {
  name: 'native',
  needsConfig: true,

  async fits({ config, task }) {
    const modelType = config?.model_type
    if (isNativeModelType(modelType) && isNativeTask(task)) return { fits: true, reason: `model_type ${modelType} and task ${task} are supported natively` }
    return { fits: false, reason: isNativeModelType(modelType) ? `task ${task} is not native` : `model_type ${String(modelType)} is not native` }
  },

  async produce({ config, task, sentenceTransformers, sourceDir, staging, options }, step) {
    if (!isNativeModelType(config!.model_type)) throw unsupportedModelType(config!.model_type)
    if (!isNativeTask(task)) {
      throw new UsageError(`Task ${task} is not supported by the native exporter (supported: ${NATIVE_TASKS.join(', ')})`, {
        code: 'UNSUPPORTED_TASK',
        hint: 'Use --exporter optimum for other tasks, or pass --task feature-extraction.',
      })
    }
    const checkpoint = await openCheckpoint(sentenceTransformers?.transformerDir ?? sourceDir)
    try {
      const graph = buildNativeGraph(config!, checkpoint, { task, opset: options.opset, sentenceTransformers })
      step.title(`Writing model.onnx (${formatBytes(checkpoint.totalBytes)} of ${checkpoint.files.length > 1 ? `${checkpoint.files.length} shards` : 'safetensors'})`)
      const written = await writeModelStreaming(join(staging, 'model.onnx'), graph.model, graph.initializers, {
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
        ...(graph.unused.length > 0 ? { warnings: [unusedWarning(task, graph.unused)] } : {}),
      }
    } finally {
      await checkpoint.close()
    }
  },
}
