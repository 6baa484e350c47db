/**
 * config.json of a causal language model, read into the hyperparameters the native decoder exporter needs:
 * Llama, Mistral and Qwen2 (RMSNorm, rotary embeddings, grouped-query attention, SiLU-gated MLP) and GPT-2
 * (LayerNorm, learned positions, Conv1D weights). Rotary settings are read both as transformers 5 writes
 * them (`rope_parameters`) and as transformers 4 did (`rope_theta` and `rope_scaling`).
 */
import { IntegrityError, UsageError } from '../lib/errors.js'
import { type HfConfig } from './model-config.js'

export const DECODER_MODEL_TYPES = ['llama', 'mistral', 'qwen2', 'gpt2'] as const
export type DecoderModelType = (typeof DECODER_MODEL_TYPES)[number]
export const DECODER_TASKS = ['text-generation-with-past', 'text-generation'] as const
export type DecoderTask = (typeof DECODER_TASKS)[number]
/** The rotary embedding types transformers' ROPE_INIT_FUNCTIONS name that the exporter writes. */
export const ROPE_TYPES = ['default', 'linear', 'dynamic', 'llama3'] as const
export type RopeType = (typeof ROPE_TYPES)[number]

export interface RopeConfig {
  type: RopeType
  theta: number
  /** Rotated dimensions (the head size: partial rotary is not supported). */
  dim: number
  /** linear, dynamic, llama3. */
  factor?: number
  /** llama3. */
  lowFreqFactor?: number
  highFreqFactor?: number
  /** llama3: the context the frequencies were trained at; dynamic: where scaling starts. */
  originalMaxPositions?: number
}

export interface DecoderConfig {
  modelType: DecoderModelType
  vocabSize: number
  hidden: number
  layers: number
  heads: number
  kvHeads: number
  headDim: number
  intermediate: number
  maxPositions: number
  eps: number
  activation: string
  /** Llama family; absent for GPT-2 (learned positions). */
  rope?: RopeConfig
  /** Biases on q/k/v (Qwen2 always, Llama with attention_bias) and on o_proj (Llama with attention_bias). */
  qkvBias: boolean
  oBias: boolean
  mlpBias: boolean
  tiedEmbeddings: boolean
  /** Mistral: a key is seen only by the next `slidingWindow` queries. */
  slidingWindow?: number
  /** GPT-2's attention scaling switches. */
  scaleAttnWeights: boolean
  scaleByInverseLayerIdx: boolean
  eosTokenId?: number | number[]
  bosTokenId?: number
  padTokenId?: number
}

export function isDecoderModelType(t: unknown): t is DecoderModelType {
  return typeof t === 'string' && (DECODER_MODEL_TYPES as readonly string[]).includes(t)
}

export function isDecoderTask(t: string): t is DecoderTask {
  return (DECODER_TASKS as readonly string[]).includes(t)
}

const invalid = (message: string): IntegrityError => new IntegrityError(`config.json: ${message}`, {
  code: 'MODEL_CONFIG_INVALID',
  hint: 'The config does not describe a supported causal language model; check model_type and the size fields.',
})

const unsupported = (message: string, hint: string): UsageError => new UsageError(message, { code: 'UNSUPPORTED_CONFIG', hint })

function int(config: HfConfig, key: string, fallback?: number): number {
  const v = config[key] ?? fallback
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw invalid(`${key} must be a non-negative integer, got ${JSON.stringify(config[key])}`)
  return v
}

function positive(value: unknown, key: string): number {
  if (typeof value !== 'number' || !(value > 0) || !Number.isFinite(value)) throw invalid(`${key} must be a positive number, got ${JSON.stringify(value)}`)
  return value
}

function tokenIds(v: unknown): number | number[] | undefined {
  if (typeof v === 'number' && Number.isInteger(v)) return v
  if (Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'number' && Number.isInteger(x))) return v as number[]
  return undefined
}

/** transformers 5 `rope_parameters`, else transformers 4 `rope_theta` + `rope_scaling` (whose type key was once `type`). */
function ropeConfig(config: HfConfig, headDim: number, maxPositions: number): RopeConfig {
  const params = (config.rope_parameters && typeof config.rope_parameters === 'object' ? config.rope_parameters : undefined) as Record<string, unknown> | undefined
  const scaling = (config.rope_scaling && typeof config.rope_scaling === 'object' ? config.rope_scaling : undefined) as Record<string, unknown> | undefined
  const p: Record<string, unknown> = { ...scaling, ...params }
  const type = String(p.rope_type ?? p.type ?? 'default')
  if (!(ROPE_TYPES as readonly string[]).includes(type)) {
    throw unsupported(`rope type ${JSON.stringify(type)} is not supported by the native exporter (supported: ${ROPE_TYPES.join(', ')})`,
      'Use --exporter optimum for this model (yarn, longrope and others are not written natively).')
  }
  const partial = p.partial_rotary_factor ?? config.partial_rotary_factor
  if (partial !== undefined && partial !== null && partial !== 1) {
    throw unsupported(`partial_rotary_factor ${JSON.stringify(partial)} is not supported by the native exporter (only 1)`, 'Use --exporter optimum for this model.')
  }
  const theta = positive(p.rope_theta ?? config.rope_theta ?? 10000, 'rope_theta')
  const rope: RopeConfig = { type: type as RopeType, theta, dim: headDim }
  if (type !== 'default') rope.factor = positive(p.factor, `rope ${type} factor`)
  if (type === 'llama3') {
    rope.lowFreqFactor = positive(p.low_freq_factor, 'rope llama3 low_freq_factor')
    rope.highFreqFactor = positive(p.high_freq_factor, 'rope llama3 high_freq_factor')
    rope.originalMaxPositions = positive(p.original_max_position_embeddings, 'rope llama3 original_max_position_embeddings')
    if (rope.highFreqFactor <= rope.lowFreqFactor) throw invalid(`rope llama3 high_freq_factor (${rope.highFreqFactor}) must exceed low_freq_factor (${rope.lowFreqFactor})`)
  }
  if (type === 'dynamic') rope.originalMaxPositions = maxPositions
  return rope
}

export function unsupportedDecoderType(modelType: unknown): UsageError {
  return new UsageError(
    `The native exporter does not support the causal language model_type ${JSON.stringify(modelType)} (supported: ${DECODER_MODEL_TYPES.join(', ')})`,
    {
      code: 'UNSUPPORTED_MODEL_TYPE',
      hint: 'Use --exporter optimum (needs `pip install "optimum[exporters]"`), or --exporter repo if the repository ships ONNX files.',
      details: { modelType, supported: [...DECODER_MODEL_TYPES] },
    },
  )
}

export function decoderConfig(config: HfConfig): DecoderConfig {
  const modelType = config.model_type
  if (!isDecoderModelType(modelType)) throw unsupportedDecoderType(modelType)
  const common = {
    eosTokenId: tokenIds(config.eos_token_id),
    bosTokenId: typeof config.bos_token_id === 'number' ? config.bos_token_id : undefined,
    padTokenId: typeof config.pad_token_id === 'number' ? config.pad_token_id : undefined,
  }
  if (config.add_cross_attention === true) throw unsupported('add_cross_attention is not supported by the native exporter (a decoder with cross-attention is half of an encoder-decoder)', 'Use --exporter optimum.')
  if (modelType === 'gpt2') {
    const hidden = int(config, 'n_embd')
    const heads = int(config, 'n_head')
    if (heads === 0 || hidden % heads !== 0) throw invalid(`n_embd ${hidden} is not a multiple of the ${heads} attention heads`)
    const inner = config.n_inner === null || config.n_inner === undefined ? 4 * hidden : int(config, 'n_inner')
    return {
      modelType, vocabSize: int(config, 'vocab_size'), hidden, layers: int(config, 'n_layer'), heads, kvHeads: heads, headDim: hidden / heads,
      intermediate: inner, maxPositions: int(config, 'n_positions'), eps: Number(config.layer_norm_epsilon ?? 1e-5),
      activation: String(config.activation_function ?? 'gelu_new'), qkvBias: true, oBias: true, mlpBias: true,
      tiedEmbeddings: config.tie_word_embeddings !== false,
      scaleAttnWeights: config.scale_attn_weights !== false, scaleByInverseLayerIdx: config.scale_attn_by_inverse_layer_idx === true,
      ...common,
    }
  }
  const hidden = int(config, 'hidden_size')
  const heads = int(config, 'num_attention_heads')
  if (heads === 0) throw invalid('num_attention_heads must be at least 1')
  const kvHeads = int(config, 'num_key_value_heads', heads)
  if (kvHeads === 0 || heads % kvHeads !== 0) throw invalid(`num_attention_heads ${heads} is not a multiple of num_key_value_heads ${kvHeads}`)
  const headDim = config.head_dim === null || config.head_dim === undefined ? hidden / heads : int(config, 'head_dim')
  if (!Number.isInteger(headDim) || headDim % 2 !== 0) throw invalid(`the head size ${headDim} (head_dim, or hidden_size / num_attention_heads) must be an even integer`)
  const maxPositions = int(config, 'max_position_embeddings', 2048)
  let slidingWindow: number | undefined
  if (modelType === 'mistral' && config.sliding_window !== null && config.sliding_window !== undefined) slidingWindow = int(config, 'sliding_window')
  if (modelType === 'qwen2') {
    const layerTypes = Array.isArray(config.layer_types) ? config.layer_types : []
    if (config.use_sliding_window === true || layerTypes.some((t) => t !== 'full_attention')) {
      throw unsupported('Qwen2 with sliding-window layers (use_sliding_window, layer_types) is not supported by the native exporter', 'Use --exporter optimum, or a config with use_sliding_window false.')
    }
  }
  const attentionBias = modelType === 'qwen2' || config.attention_bias === true
  return {
    modelType, vocabSize: int(config, 'vocab_size'), hidden, layers: int(config, 'num_hidden_layers'), heads, kvHeads, headDim,
    intermediate: int(config, 'intermediate_size'), maxPositions, eps: Number(config.rms_norm_eps ?? 1e-6),
    activation: String(config.hidden_act ?? 'silu'), rope: ropeConfig(config, headDim, maxPositions),
    qkvBias: attentionBias, oBias: modelType !== 'qwen2' && attentionBias, mlpBias: modelType === 'llama' && config.mlp_bias === true,
    tiedEmbeddings: config.tie_word_embeddings === true, slidingWindow, scaleAttnWeights: true, scaleByInverseLayerIdx: false,
    ...common,
  }
}

/**
 * The rotary inverse frequencies [dim / 2] of the static rope types, as transformers' ROPE_INIT_FUNCTIONS
 * compute them in float32 (dynamic is computed in the graph from the positions of each run).
 */
export function ropeInverseFrequencies(rope: RopeConfig): Float32Array {
  const f = Math.fround
  const half = rope.dim / 2
  const inv = new Float32Array(half)
  for (let i = 0; i < half; i++) inv[i] = f(1 / f(Math.pow(rope.theta, f((2 * i) / rope.dim))))
  if (rope.type === 'linear') for (let i = 0; i < half; i++) inv[i] = f(inv[i]! / rope.factor!)
  if (rope.type === 'llama3') {
    // transformers' _compute_llama3_parameters: long wavelengths scaled by the factor, short ones kept,
    // the band between blended.
    const { factor, lowFreqFactor, highFreqFactor, originalMaxPositions } = rope as Required<RopeConfig>
    const lowWavelen = originalMaxPositions / lowFreqFactor
    const highWavelen = originalMaxPositions / highFreqFactor
    for (let i = 0; i < half; i++) {
      const freq = inv[i]!
      const wavelen = (2 * Math.PI) / freq
      let scaled = wavelen > lowWavelen ? freq / factor : freq
      if (!(wavelen < highWavelen) && !(wavelen > lowWavelen)) {
        const smooth = (originalMaxPositions / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor)
        scaled = (1 - smooth) * (scaled / factor) + smooth * scaled
      }
      inv[i] = f(scaled)
    }
  }
  return inv
}
