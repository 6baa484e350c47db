/**
 * The native exporter: BERT, RoBERTa, XLM-RoBERTa and DistilBERT encoders written as ONNX graphs (opset 17+)
 * straight from config.json and safetensors, following transformers' modeling code op for op:
 * embeddings (RoBERTa's position ids from input_ids != padding_idx, offset by padding_idx + 1), eager
 * attention with the additive mask (1 - mask) * finfo(float32).min, post-LayerNorm blocks, erf GELU, the
 * pooler and the sequence-classification heads. Input and output names are Optimum's.
 */
import { IntegrityError, UsageError } from '../lib/errors.js'
import { DataType } from '../onnx/proto.js'
import { float } from '../onnx/graph-builder.js'
import { BATCH, checkNativeOpset, FLOAT32_MIN, GraphOps, irVersionFor, SEQUENCE } from './graph-ops.js'
import { type SafetensorsCheckpoint } from './safetensors.js'
import { encoderConfig, type EncoderConfig, type HfConfig, type NativeTask } from './model-config.js'
import { LazyWeights } from './weights.js'
import { addPooling, type SentenceTransformersConfig } from './sentence-transformers.js'
import { type LazyInitializer } from '../onnx/write-model.js'
import { type ModelProto } from '../onnx/proto.js'


export interface NativeGraph {
  model: ModelProto
  initializers: LazyInitializer[]
  encoder: EncoderConfig
  opset: number
  inputs: string[]
  outputs: { name: string; dims: (number | string)[] }[]
  /** Checkpoint tensors the graph does not read and config.json does not account for, sorted. */
  unused: string[]
}

export interface NativeOptions {
  task: NativeTask
  opset?: number
  sentenceTransformers?: SentenceTransformersConfig
}

export { BATCH, SEQUENCE, NATIVE_OPSETS } from './graph-ops.js'

class Encoder extends GraphOps {
  readonly w: LazyWeights

  constructor(
    readonly c: EncoderConfig,
    checkpoint: SafetensorsCheckpoint,
    opset: number,
  ) {
    super(opset)
    const summary = `model_type ${c.modelType}, hidden ${c.hidden}, ${c.layers} layers, intermediate ${c.intermediate}, vocab ${c.vocabSize}, ${c.maxPositions} positions`
    this.w = new LazyWeights(checkpoint, summary)
  }

  linear(x: string, prefix: string, out: number, inp: number): string {
    const weight = this.w.linear(`${prefix}.weight`, out, inp)
    const bias = this.w.tensor(`${prefix}.bias`, [out])
    return this.g.op('Add', [this.g.op('MatMul', [x, weight]), bias])
  }

  layerNorm(x: string, prefix: string, eps: number): string {
    // Checkpoints converted from TensorFlow name LayerNorm parameters gamma/beta (transformers renames them on load).
    const tf = !this.w.has(`${prefix}.weight`) && this.w.has(`${prefix}.gamma`)
    const scale = this.w.tensor(`${prefix}.${tf ? 'gamma' : 'weight'}`, [this.c.hidden])
    const bias = this.w.tensor(`${prefix}.${tf ? 'beta' : 'bias'}`, [this.c.hidden])
    return this.g.op('LayerNormalization', [x, scale, bias], { axis: -1, epsilon: float(eps) })
  }

  /** [B, S, H] -> [B, heads, S, head_dim] (or [B, heads, head_dim, S] for keys). */
  splitHeads(x: string, perm: number[]): string {
    const { heads, hidden } = this.c
    const r = this.g.op('Reshape', [x, this.ints([0, 0, heads, hidden / heads])])
    return this.g.op('Transpose', [r], { perm })
  }

  attention(x: string, mask: string, names: { q: string; k: string; v: string; o: string }): string {
    const { hidden, heads } = this.c
    const q = this.splitHeads(this.linear(x, names.q, hidden, hidden), [0, 2, 1, 3])
    const k = this.splitHeads(this.linear(x, names.k, hidden, hidden), [0, 2, 3, 1])
    const v = this.splitHeads(this.linear(x, names.v, hidden, hidden), [0, 2, 1, 3])
    const scores = this.g.op('Mul', [this.g.op('MatMul', [q, k]), this.scalar(1 / Math.sqrt(hidden / heads))])
    const probs = this.g.op('Softmax', [this.g.op('Add', [scores, mask])], { axis: -1 })
    const ctx = this.g.op('Transpose', [this.g.op('MatMul', [probs, v])], { perm: [0, 2, 1, 3] })
    return this.linear(this.g.op('Reshape', [ctx, this.ints([0, 0, hidden])]), names.o, hidden, hidden)
  }

  /** The additive mask [B, 1, 1, S]: 0 where attended, float32 min where padded. */
  extendedMask(attentionMask: string): string {
    const m = this.g.op('Cast', [attentionMask], { to: DataType.FLOAT })
    const inverted = this.g.op('Sub', [this.scalar(1), m])
    const additive = this.g.op('Mul', [inverted, this.scalar(FLOAT32_MIN)])
    return this.g.op('Unsqueeze', [additive, this.ints([1, 2])])
  }

  /** Position ids 0..S-1 as [S]. */
  rangePositions(inputIds: string): string {
    const shape = this.g.op('Shape', [inputIds])
    const seq = this.g.op('Gather', [shape, this.scalar(1, 'int64')], { axis: 0 })
    return this.g.op('Range', [this.scalar(0, 'int64'), seq, this.scalar(1, 'int64')])
  }

  /** transformers' create_position_ids_from_input_ids: cumsum(ids != pad) * (ids != pad) + pad, as [B, S]. */
  robertaPositions(inputIds: string): string {
    const notPad = this.g.op('Not', [this.g.op('Equal', [inputIds, this.scalar(this.c.padTokenId, 'int64')])])
    const mask = this.g.op('Cast', [notPad], { to: DataType.INT64 })
    const incremental = this.g.op('Mul', [this.g.op('CumSum', [mask, this.scalar(1, 'int64')]), mask])
    return this.g.op('Add', [incremental, this.scalar(this.c.padTokenId, 'int64')])
  }

  firstToken(x: string): string {
    return this.g.op('Gather', [x, this.scalar(0, 'int64')], { axis: 1 })
  }
}

/** The weight name prefix of the base model: "" for *Model checkpoints, "bert." etc. for heads. */
function basePrefix(w: LazyWeights, c: EncoderConfig): string {
  const candidates = c.modelType === 'distilbert' ? ['', 'distilbert.'] : c.modelType === 'bert' ? ['', 'bert.'] : ['', 'roberta.']
  for (const p of candidates) if (w.has(`${p}embeddings.word_embeddings.weight`)) return p
  throw new IntegrityError(`The checkpoint has no ${candidates.map((p) => `${p}embeddings.word_embeddings.weight`).join(' or ')}: it is not a ${c.modelType} model`, {
    code: 'WEIGHTS_MISSING',
    hint: 'config.json and the weights do not match, or the checkpoint is of another architecture; try --exporter optimum.',
  })
}

/** Saved by older transformers with the weights and skipped on load (non-persistent buffers): not weights. */
const BUFFER_RE = /(^|\.)embeddings\.(position_ids|token_type_ids)$/

/**
 * What the checkpoint holds beyond the graph: transformers' "weights of the model checkpoint were not
 * used". The pooler belongs to the base model config.json describes, used or not by the task's outputs.
 */
function unusedWeights(checkpoint: SafetensorsCheckpoint, w: LazyWeights, prefix: string): string[] {
  return [...checkpoint.tensors.keys()].filter((n) => !w.used.has(n) && !BUFFER_RE.test(n) && !n.startsWith(`${prefix}pooler.`)).sort()
}

function numLabels(config: HfConfig): number | undefined {
  if (config.id2label && typeof config.id2label === 'object') return Object.keys(config.id2label).length
  if (typeof config.num_labels === 'number') return config.num_labels
  return undefined
}

export function buildNativeGraph(config: HfConfig, checkpoint: SafetensorsCheckpoint, options: NativeOptions): NativeGraph {
  const c = encoderConfig(config)
  const opset = options.opset ?? 17
  checkNativeOpset(opset)
  const e = new Encoder(c, checkpoint, opset)
  const { g, w } = e
  const p = basePrefix(w, c)
  const distil = c.modelType === 'distilbert'
  const roberta = c.modelType === 'roberta' || c.modelType === 'xlm-roberta'

  const inputIds = g.input('input_ids', DataType.INT64, [BATCH, SEQUENCE])
  const attentionMask = g.input('attention_mask', DataType.INT64, [BATCH, SEQUENCE])
  const inputs = ['input_ids', 'attention_mask']
  let tokenTypeIds: string | undefined
  if (c.modelType === 'bert') {
    tokenTypeIds = g.input('token_type_ids', DataType.INT64, [BATCH, SEQUENCE])
    inputs.push('token_type_ids')
  }

  // Embeddings.
  const emb = `${p}embeddings`
  let x = g.op('Gather', [w.tensor(`${emb}.word_embeddings.weight`, [c.vocabSize, c.hidden]), inputIds])
  const positionTable = w.tensor(`${emb}.position_embeddings.weight`, [c.maxPositions, c.hidden])
  const positions = roberta ? e.robertaPositions(inputIds) : e.rangePositions(inputIds)
  x = g.op('Add', [x, g.op('Gather', [positionTable, positions])])
  if (tokenTypeIds) {
    x = g.op('Add', [x, g.op('Gather', [w.tensor(`${emb}.token_type_embeddings.weight`, [c.typeVocabSize, c.hidden]), tokenTypeIds])])
  } else if (roberta && w.has(`${emb}.token_type_embeddings.weight`)) {
    // RoBERTa without token_type_ids uses type 0 everywhere: a constant row.
    x = g.op('Add', [x, w.row(`${emb}.token_type_embeddings.weight`, [c.typeVocabSize, c.hidden], 0)])
  }
  x = e.layerNorm(x, `${emb}.LayerNorm`, c.layerNormEps)

  // Encoder layers.
  const mask = e.extendedMask(attentionMask)
  for (let i = 0; i < c.layers; i++) {
    if (distil) {
      const l = `${p}transformer.layer.${i}`
      const a = e.attention(x, mask, { q: `${l}.attention.q_lin`, k: `${l}.attention.k_lin`, v: `${l}.attention.v_lin`, o: `${l}.attention.out_lin` })
      const sa = e.layerNorm(g.op('Add', [a, x]), `${l}.sa_layer_norm`, c.layerNormEps)
      const ffn = e.linear(e.activation(e.linear(sa, `${l}.ffn.lin1`, c.intermediate, c.hidden), c.activation), `${l}.ffn.lin2`, c.hidden, c.intermediate)
      x = e.layerNorm(g.op('Add', [ffn, sa]), `${l}.output_layer_norm`, c.layerNormEps)
    } else {
      const l = `${p}encoder.layer.${i}`
      const a = e.attention(x, mask, {
        q: `${l}.attention.self.query`,
        k: `${l}.attention.self.key`,
        v: `${l}.attention.self.value`,
        o: `${l}.attention.output.dense`,
      })
      const h = e.layerNorm(g.op('Add', [a, x]), `${l}.attention.output.LayerNorm`, c.layerNormEps)
      const inter = e.activation(e.linear(h, `${l}.intermediate.dense`, c.intermediate, c.hidden), c.activation)
      const out = e.linear(inter, `${l}.output.dense`, c.hidden, c.intermediate)
      x = e.layerNorm(g.op('Add', [out, h]), `${l}.output.LayerNorm`, c.layerNormEps)
    }
  }

  const hasPooler = !distil && w.has(`${p}pooler.dense.weight`)
  const pooler = (): string => g.op('Tanh', [e.linear(e.firstToken(x), `${p}pooler.dense`, c.hidden, c.hidden)])
  const outputs: NativeGraph['outputs'] = []
  const out = (value: string, name: string, dims: (number | string)[]): void => {
    g.op('Identity', [value], {}, name)
    g.output(name, DataType.FLOAT, dims)
    outputs.push({ name, dims })
  }

  if (options.task === 'feature-extraction') {
    out(x, 'last_hidden_state', [BATCH, SEQUENCE, c.hidden])
    if (hasPooler) out(pooler(), 'pooler_output', [BATCH, c.hidden])
  } else if (options.task === 'text-classification') {
    const labels = numLabels(config)
    const head = distil ? 'classifier' : roberta ? 'classifier.out_proj' : 'classifier'
    if (!w.has(`${head}.weight`)) {
      throw new IntegrityError(`The checkpoint has no classification head (${head}.weight): text-classification needs a *ForSequenceClassification checkpoint`, {
        code: 'WEIGHTS_MISSING',
        hint: 'Export this checkpoint with --task feature-extraction, or point at a fine-tuned classifier.',
      })
    }
    const n = labels ?? checkpoint.info(`${head}.weight`).shape[0]!
    let logits: string
    if (distil) {
      const pre = g.op('Relu', [e.linear(e.firstToken(x), 'pre_classifier', c.hidden, c.hidden)])
      logits = e.linear(pre, 'classifier', n, c.hidden)
    } else if (roberta) {
      const dense = g.op('Tanh', [e.linear(e.firstToken(x), 'classifier.dense', c.hidden, c.hidden)])
      logits = e.linear(dense, 'classifier.out_proj', n, c.hidden)
    } else {
      if (!hasPooler) {
        throw new IntegrityError('BertForSequenceClassification needs the pooler weights (bert.pooler.dense.*), which the checkpoint lacks', {
          code: 'WEIGHTS_MISSING',
          hint: 'The checkpoint is incomplete; download it again.',
        })
      }
      logits = e.linear(pooler(), 'classifier', n, c.hidden)
    }
    out(logits, 'logits', [BATCH, n])
  } else {
    const st = options.sentenceTransformers
    if (!st) {
      throw new UsageError('sentence-embedding needs a sentence-transformers layout (modules.json and 1_Pooling/config.json)', {
        code: 'NOT_SENTENCE_TRANSFORMERS',
        hint: 'Use --task feature-extraction for plain transformers checkpoints.',
      })
    }
    out(x, 'token_embeddings', [BATCH, SEQUENCE, c.hidden])
    const embedding = addPooling(g, opset, x, attentionMask, c.hidden, st)
    out(embedding.value, 'sentence_embedding', [BATCH, embedding.dim])
  }

  const model = g.toModel({
    opset,
    irVersion: irVersionFor(opset),
    producerName: 'modelforge',
    docString: `modelforge native export of ${c.modelType} (${options.task})`,
  })
  return { model, initializers: w.initializers, encoder: c, opset, inputs, outputs, unused: unusedWeights(checkpoint, w, p) }
}
