/**
 * config.json of a Hugging Face checkpoint: reading it, the encoder hyperparameters the native exporter
 * needs (BERT-style and DistilBERT-style key names), and the default task as Optimum infers it.
 */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { IntegrityError, osFailure, UsageError } from '../lib/errors.js'
import { readJsonFile } from '../lib/json.js'

export type HfConfig = Record<string, unknown> & { model_type?: string; architectures?: string[] }

export const NATIVE_MODEL_TYPES = ['bert', 'roberta', 'xlm-roberta', 'distilbert'] as const
export type NativeModelType = (typeof NATIVE_MODEL_TYPES)[number]
export const NATIVE_TASKS = ['feature-extraction', 'text-classification', 'sentence-embedding'] as const
export type NativeTask = (typeof NATIVE_TASKS)[number]

export async function readHfConfig(dir: string): Promise<HfConfig> {
  return readJsonFile<HfConfig>(join(dir, 'config.json'), {
    expect: 'object',
    onError: (f) => {
      if (f.kind === 'missing') {
        return new UsageError(`${dir} has no config.json, so it is not a Hugging Face model directory`, {
          code: 'CONFIG_NOT_FOUND',
          hint: 'Point at a Hugging Face model directory (save_pretrained output or a cache snapshot), which holds config.json next to the weights.',
        })
      }
      if (f.kind === 'unreadable') return osFailure(f.cause, `reading the model's config.json`, f.where)
      return new IntegrityError(f.message, {
        code: 'MODEL_CONFIG_INVALID',
        hint: f.kind === 'syntax' ? 'Download the model again; config.json is damaged.' : 'Download the model again.',
      })
    },
  })
}

/** Encoder hyperparameters under one set of names. */
export interface EncoderConfig {
  modelType: NativeModelType
  vocabSize: number
  hidden: number
  layers: number
  heads: number
  intermediate: number
  maxPositions: number
  typeVocabSize: number
  padTokenId: number
  layerNormEps: number
  activation: string
  /** Largest sequence the position table allows (RoBERTa loses padding_idx + 1 positions). */
  maxSequence: number
}

function intField(config: HfConfig, key: string, fallback?: number): number {
  const v = config[key] ?? fallback
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) {
    throw new IntegrityError(`config.json: ${key} must be a non-negative integer, got ${JSON.stringify(config[key])}`, {
      code: 'MODEL_CONFIG_INVALID',
      hint: 'The config does not describe a supported encoder; check model_type and the size fields.',
    })
  }
  return v
}

export function unsupportedModelType(modelType: unknown): UsageError {
  return new UsageError(
    `The native exporter does not support model_type ${JSON.stringify(modelType)} (supported: ${NATIVE_MODEL_TYPES.join(', ')})`,
    {
      code: 'UNSUPPORTED_MODEL_TYPE',
      hint: 'Use --exporter optimum (needs `pip install "optimum[exporters]"`), or --exporter repo if the repository ships ONNX files.',
      details: { modelType, supported: [...NATIVE_MODEL_TYPES] },
    },
  )
}

export function isNativeModelType(t: unknown): t is NativeModelType {
  return typeof t === 'string' && (NATIVE_MODEL_TYPES as readonly string[]).includes(t)
}

export function encoderConfig(config: HfConfig): EncoderConfig {
  const modelType = config.model_type
  if (!isNativeModelType(modelType)) throw unsupportedModelType(modelType)
  const positionType = config.position_embedding_type
  if (positionType !== undefined && positionType !== 'absolute') {
    throw new UsageError(`position_embedding_type ${JSON.stringify(positionType)} is not supported by the native exporter (only "absolute")`, {
      code: 'UNSUPPORTED_CONFIG',
      hint: 'Use --exporter optimum for relative position embeddings.',
    })
  }
  const distil = modelType === 'distilbert'
  const hidden = intField(config, distil ? 'dim' : 'hidden_size')
  const heads = intField(config, distil ? 'n_heads' : 'num_attention_heads')
  if (heads === 0 || hidden % heads !== 0) {
    throw new IntegrityError(`config.json: hidden size ${hidden} is not a multiple of the ${heads} attention heads`, {
      code: 'MODEL_CONFIG_INVALID',
      hint: 'Fix hidden_size / num_attention_heads in config.json.',
    })
  }
  const padTokenId = intField(config, 'pad_token_id', modelType === 'roberta' || modelType === 'xlm-roberta' ? 1 : 0)
  const maxPositions = intField(config, 'max_position_embeddings', 512)
  const roberta = modelType === 'roberta' || modelType === 'xlm-roberta'
  const activation = String((distil ? config.activation : config.hidden_act) ?? 'gelu')
  return {
    modelType,
    vocabSize: intField(config, 'vocab_size'),
    hidden,
    heads,
    layers: intField(config, distil ? 'n_layers' : 'num_hidden_layers'),
    intermediate: intField(config, distil ? 'hidden_dim' : 'intermediate_size'),
    maxPositions,
    typeVocabSize: distil ? 0 : intField(config, 'type_vocab_size', 2),
    padTokenId,
    layerNormEps: distil ? 1e-12 : Number(config.layer_norm_eps ?? 1e-12),
    activation,
    maxSequence: roberta ? maxPositions - padTokenId - 1 : maxPositions,
  }
}

/** How Optimum's TasksManager maps an architecture class name to a task (suffix match). */
const ARCHITECTURE_TASKS: [RegExp, string][] = [
  [/ForSequenceClassification$/, 'text-classification'],
  [/ForTokenClassification$/, 'token-classification'],
  [/ForQuestionAnswering$/, 'question-answering'],
  [/ForMultipleChoice$/, 'multiple-choice'],
  [/ForMaskedLM$/, 'fill-mask'],
  [/(ForCausalLM|LMHeadModel)$/, 'text-generation'],
  [/ForConditionalGeneration$/, 'text2text-generation'],
  [/ForImageClassification$/, 'image-classification'],
  [/Model$/, 'feature-extraction'],
]

/**
 * The default task: sentence-embedding for sentence-transformers layouts (modules.json), else from the
 * first architecture as Optimum infers it, else feature-extraction. A causal LM is exported with its KV
 * cache (text-generation-with-past) unless config.json turns the cache off, as Optimum's main_export does.
 */
export function inferTask(dir: string, config: HfConfig): string {
  if (existsSync(join(dir, 'modules.json'))) return 'sentence-embedding'
  const arch = Array.isArray(config.architectures) ? config.architectures[0] : undefined
  if (typeof arch === 'string') {
    for (const [re, task] of ARCHITECTURE_TASKS) {
      if (!re.test(arch)) continue
      return task === 'text-generation' && config.use_cache !== false ? 'text-generation-with-past' : task
    }
  }
  return 'feature-extraction'
}

export function isNativeTask(t: string): t is NativeTask {
  return (NATIVE_TASKS as readonly string[]).includes(t)
}
