/**
 * The native decoder exporter's graphs: Llama, Mistral, Qwen2 and GPT-2 causal language models written as
 * ONNX (opset 17+) from config.json and safetensors, following transformers' modeling code op for op:
 * token (and for GPT-2 learned position) embeddings, RMSNorm or LayerNorm, rotary embeddings driven by
 * position_ids (default, linear, dynamic and llama3 frequencies), grouped-query attention over the past
 * keys/values and the new ones, the causal mask combined with attention_mask (so left padding is right),
 * the SiLU-gated or GELU MLP and a tied or untied lm_head.
 *
 * The interface is Optimum's (what transformers.js, ORTModelForCausalLM and onnxruntime-genai load):
 * inputs input_ids, attention_mask [batch, past + seq], position_ids and past_key_values.N.key / .value
 * [batch, kv_heads, past, head_dim]; outputs logits and present.N.key / .value. Without a cache
 * (text-generation) there are no past inputs or present outputs.
 */
import { IntegrityError } from '../lib/errors.js'
import { DataType, type ModelProto } from '../onnx/proto.js'
import { float } from '../onnx/graph-builder.js'
import { type LazyInitializer } from '../onnx/write-model.js'
import { decoderConfig, ropeInverseFrequencies, type DecoderConfig, type DecoderTask } from './decoder-config.js'
import { BATCH, checkNativeOpset, FLOAT32_MIN, GraphOps, irVersionFor, SEQUENCE } from './graph-ops.js'
import { type HfConfig } from './model-config.js'
import { type SafetensorsCheckpoint } from './safetensors.js'
import { LazyWeights } from './weights.js'

export const PAST = 'past_sequence_length'
export const TOTAL = 'past_sequence_length + sequence_length'

export interface DecoderGraph {
  model: ModelProto
  initializers: LazyInitializer[]
  decoder: DecoderConfig
  opset: number
  task: DecoderTask
  inputs: string[]
  outputs: { name: string; dims: (number | string)[] }[]
}

export interface DecoderOptions {
  task: DecoderTask
  opset?: number
}

interface Rotary {
  cos: string
  sin: string
}

class Decoder extends GraphOps {
  readonly w: LazyWeights
  /** Weight name prefix of the base model ("model." / "transformer." in *ForCausalLM checkpoints). */
  readonly p: string

  constructor(
    readonly c: DecoderConfig,
    checkpoint: SafetensorsCheckpoint,
    opset: number,
  ) {
    super(opset)
    const summary = `model_type ${c.modelType}, hidden ${c.hidden}, ${c.layers} layers, ${c.heads} heads, ${c.kvHeads} key/value heads, head size ${c.headDim}, intermediate ${c.intermediate}, vocab ${c.vocabSize}`
    this.w = new LazyWeights(checkpoint, summary)
    this.p = this.prefix()
  }

  private prefix(): string {
    const table = this.c.modelType === 'gpt2' ? 'wte.weight' : 'embed_tokens.weight'
    const candidates = this.c.modelType === 'gpt2' ? ['transformer.', ''] : ['model.', '']
    for (const p of candidates) if (this.w.has(`${p}${table}`)) return p
    throw new IntegrityError(`The checkpoint has no ${candidates.map((p) => `${p}${table}`).join(' or ')}: it is not a ${this.c.modelType} model`, {
      code: 'WEIGHTS_MISSING',
      hint: 'config.json and the weights do not match, or the checkpoint is of another architecture; try --exporter optimum.',
    })
  }

  /** A torch Linear: x @ W^T (+ b). */
  linear(x: string, name: string, out: number, inp: number, bias: boolean): string {
    const y = this.g.op('MatMul', [x, this.w.linear(`${name}.weight`, out, inp)])
    return bias ? this.g.op('Add', [y, this.w.tensor(`${name}.bias`, [out])]) : y
  }

  /** GPT-2's Conv1D: the weight is stored [in, out] already. */
  conv1d(x: string, name: string, out: number, inp: number): string {
    return this.g.op('Add', [this.g.op('MatMul', [x, this.w.tensor(`${name}.weight`, [inp, out])]), this.w.tensor(`${name}.bias`, [out])])
  }

  /** transformers' LlamaRMSNorm: x * rsqrt(mean(x^2) + eps) * weight, in float32. */
  rmsNorm(x: string, name: string): string {
    const g = this.g
    const variance = this.reduceMean(g.op('Mul', [x, x]), [-1])
    const normed = g.op('Div', [x, g.op('Sqrt', [g.op('Add', [variance, this.scalar(this.c.eps)])])])
    return g.op('Mul', [normed, this.w.tensor(`${name}.weight`, [this.c.hidden])])
  }

  layerNorm(x: string, name: string): string {
    const scale = this.w.tensor(`${name}.weight`, [this.c.hidden])
    const bias = this.w.tensor(`${name}.bias`, [this.c.hidden])
    return this.g.op('LayerNormalization', [x, scale, bias], { axis: -1, epsilon: float(this.c.eps) })
  }

  /**
   * cos and sin [B, 1, S, head_dim] of transformers' rotary embedding: the inverse frequencies (twice, as
   * torch.cat((freqs, freqs))) times the position ids. Dynamic NTK grows the base from the largest
   * position of the run, as transformers' dynamic_rope_update does on every forward.
   */
  rotary(positionIds: string): Rotary {
    const g = this.g
    const rope = this.c.rope!
    const positions = g.op('Cast', [positionIds], { to: DataType.FLOAT })
    let inv: string
    if (rope.type === 'dynamic') {
      const half = rope.dim / 2
      const exponents = g.constant('rope_exponents', [rope.dim], Float32Array.from({ length: rope.dim }, (_, i) => Math.fround((2 * (i % half)) / rope.dim)))
      const max = rope.originalMaxPositions!
      const longest = g.op('Max', [g.op('Add', [g.op('ReduceMax', [positions], { keepdims: 0 }), this.scalar(1)]), this.scalar(max)])
      const growth = g.op('Sub', [g.op('Mul', [g.op('Div', [longest, this.scalar(max)]), this.scalar(rope.factor!)]), this.scalar(rope.factor! - 1)])
      const base = g.op('Mul', [this.scalar(rope.theta), g.op('Pow', [growth, this.scalar(rope.dim / (rope.dim - 2))])])
      inv = g.op('Reciprocal', [g.op('Pow', [base, exponents])])
    } else {
      const half = ropeInverseFrequencies(rope)
      const full = new Float32Array(rope.dim)
      full.set(half, 0)
      full.set(half, half.length)
      inv = g.constant('rope_inv_freq', [rope.dim], full)
    }
    const freqs = g.op('Mul', [g.op('Unsqueeze', [positions, this.ints([-1])]), inv])
    const heads = this.ints([1])
    return { cos: g.op('Unsqueeze', [g.op('Cos', [freqs]), heads]), sin: g.op('Unsqueeze', [g.op('Sin', [freqs]), heads]) }
  }

  /** x * cos + rotate_half(x) * sin, rotate_half(x) = cat(-x2, x1) over the last axis. */
  applyRotary(x: string, r: Rotary): string {
    const g = this.g
    const d = this.c.headDim
    const axis = this.ints([-1])
    const x1 = g.op('Slice', [x, this.ints([0]), this.ints([d / 2]), axis])
    const x2 = g.op('Slice', [x, this.ints([d / 2]), this.ints([d]), axis])
    const rotated = g.op('Concat', [g.op('Neg', [x2]), x1], { axis: -1 })
    return g.op('Add', [g.op('Mul', [x, r.cos]), g.op('Mul', [rotated, r.sin])])
  }

  /**
   * The additive mask [B, 1, S, T]: 0 where query i (at absolute index past + i) may see key j, that is
   * j <= past + i (and within the sliding window) and attention_mask[b, j] is 1; float32 min elsewhere,
   * as transformers' eager attention adds it.
   */
  mask(inputIds: string, attentionMask: string): string {
    const g = this.g
    const total = this.dim(attentionMask, 1)
    const past = g.op('Sub', [total, this.dim(inputIds, 1)])
    const rows = g.op('Unsqueeze', [g.op('Range', [past, total, this.scalar(1, 'int64')]), this.ints([1])])
    const cols = g.op('Unsqueeze', [g.op('Range', [this.scalar(0, 'int64'), total, this.scalar(1, 'int64')]), this.ints([0])])
    let allowed = g.op('LessOrEqual', [cols, rows])
    if (this.c.slidingWindow !== undefined) {
      allowed = g.op('And', [allowed, g.op('Greater', [cols, g.op('Sub', [rows, this.scalar(this.c.slidingWindow, 'int64')])])])
    }
    const padding = g.op('Unsqueeze', [g.op('Cast', [attentionMask], { to: DataType.BOOL }), this.ints([1, 2])])
    return g.op('Where', [g.op('And', [allowed, padding]), this.scalar(0), this.scalar(FLOAT32_MIN)])
  }

  /**
   * Attention with grouped heads: queries as [B, kv_heads, heads / kv_heads, S, d] against keys and values
   * [B, kv_heads, 1, T, d], so the shared key/value heads are broadcast instead of copied (the same heads
   * transformers' repeat_kv pairs). Returns the context [B, S, heads * d] and the present keys/values.
   */
  attention(q: string, k: string, v: string, layer: number, mask5: string, rotary: Rotary | undefined, past: boolean): { ctx: string; present: [string, string] } {
    const g = this.g
    const { heads, kvHeads, headDim: d } = this.c
    const rep = heads / kvHeads
    let q5 = g.op('Transpose', [g.op('Reshape', [q, this.ints([0, 0, kvHeads, rep, d])])], { perm: [0, 2, 3, 1, 4] })
    let k4 = g.op('Transpose', [g.op('Reshape', [k, this.ints([0, 0, kvHeads, d])])], { perm: [0, 2, 1, 3] })
    const v4 = g.op('Transpose', [g.op('Reshape', [v, this.ints([0, 0, kvHeads, d])])], { perm: [0, 2, 1, 3] })
    if (rotary) {
      q5 = this.applyRotary(q5, { cos: g.op('Unsqueeze', [rotary.cos, this.ints([1])]), sin: g.op('Unsqueeze', [rotary.sin, this.ints([1])]) })
      k4 = this.applyRotary(k4, rotary)
    }
    const names: [string, string] = [`present.${layer}.key`, `present.${layer}.value`]
    let keys = k4
    let values = v4
    if (past) {
      const pk = g.input(`past_key_values.${layer}.key`, DataType.FLOAT, [BATCH, kvHeads, PAST, d])
      const pv = g.input(`past_key_values.${layer}.value`, DataType.FLOAT, [BATCH, kvHeads, PAST, d])
      keys = g.op('Concat', [pk, k4], { axis: 2 }, names[0])
      values = g.op('Concat', [pv, v4], { axis: 2 }, names[1])
    }
    let scale = this.c.scaleAttnWeights ? 1 / Math.sqrt(d) : 1
    if (this.c.scaleByInverseLayerIdx) scale /= layer + 1
    const kT = g.op('Transpose', [g.op('Unsqueeze', [keys, this.ints([2])])], { perm: [0, 1, 2, 4, 3] })
    const scores = g.op('Add', [g.op('Mul', [g.op('MatMul', [q5, kT]), this.scalar(scale)]), mask5])
    const probs = g.op('Softmax', [scores], { axis: -1 })
    const ctx5 = g.op('MatMul', [probs, g.op('Unsqueeze', [values, this.ints([2])])])
    const ctx = g.op('Reshape', [g.op('Transpose', [ctx5], { perm: [0, 3, 1, 2, 4] }), this.ints([0, 0, heads * d])])
    return { ctx, present: names }
  }
}

/** Buffers some checkpoints carry that transformers does not load as weights. */
const BUFFER_RE = /(\.rotary_emb\.inv_freq|\.attn\.bias|\.attn\.masked_bias)$/

export function buildDecoderGraph(config: HfConfig, checkpoint: SafetensorsCheckpoint, options: DecoderOptions): DecoderGraph {
  const c = decoderConfig(config)
  const opset = options.opset ?? 17
  checkNativeOpset(opset)
  const withPast = options.task === 'text-generation-with-past'
  const e = new Decoder(c, checkpoint, opset)
  const { g, w, p } = e
  const gpt2 = c.modelType === 'gpt2'

  const inputIds = g.input('input_ids', DataType.INT64, [BATCH, SEQUENCE])
  const attentionMask = g.input('attention_mask', DataType.INT64, [BATCH, withPast ? TOTAL : SEQUENCE])
  const positionIds = g.input('position_ids', DataType.INT64, [BATCH, SEQUENCE])

  const table = gpt2 ? `${p}wte.weight` : `${p}embed_tokens.weight`
  const embeddings = w.tensor(table, [c.vocabSize, c.hidden])
  let x = g.op('Gather', [embeddings, inputIds])
  if (gpt2) x = g.op('Add', [x, g.op('Gather', [w.tensor(`${p}wpe.weight`, [c.maxPositions, c.hidden]), positionIds])])
  const rotary = c.rope ? e.rotary(positionIds) : undefined
  const mask5 = g.op('Unsqueeze', [e.mask(inputIds, attentionMask), e.ints([1])])

  const presents: string[] = []
  const { hidden, heads, kvHeads, headDim: d } = c
  for (let i = 0; i < c.layers; i++) {
    if (gpt2) {
      const l = `${p}h.${i}`
      const h = e.layerNorm(x, `${l}.ln_1`)
      const qkv = e.conv1d(h, `${l}.attn.c_attn`, 3 * hidden, hidden)
      const part = (n: number): string => g.op('Slice', [qkv, e.ints([n * hidden]), e.ints([(n + 1) * hidden]), e.ints([-1])])
      const a = e.attention(part(0), part(1), part(2), i, mask5, undefined, withPast)
      presents.push(...a.present)
      x = g.op('Add', [x, e.conv1d(a.ctx, `${l}.attn.c_proj`, hidden, hidden)])
      const m = e.conv1d(e.activation(e.conv1d(e.layerNorm(x, `${l}.ln_2`), `${l}.mlp.c_fc`, c.intermediate, hidden), c.activation), `${l}.mlp.c_proj`, hidden, c.intermediate)
      x = g.op('Add', [x, m])
    } else {
      const l = `${p}layers.${i}`
      const h = e.rmsNorm(x, `${l}.input_layernorm`)
      const q = e.linear(h, `${l}.self_attn.q_proj`, heads * d, hidden, c.qkvBias)
      const k = e.linear(h, `${l}.self_attn.k_proj`, kvHeads * d, hidden, c.qkvBias)
      const v = e.linear(h, `${l}.self_attn.v_proj`, kvHeads * d, hidden, c.qkvBias)
      const a = e.attention(q, k, v, i, mask5, rotary, withPast)
      presents.push(...a.present)
      x = g.op('Add', [x, e.linear(a.ctx, `${l}.self_attn.o_proj`, hidden, heads * d, c.oBias)])
      const h2 = e.rmsNorm(x, `${l}.post_attention_layernorm`)
      const gate = e.activation(e.linear(h2, `${l}.mlp.gate_proj`, c.intermediate, hidden, c.mlpBias), c.activation)
      const up = e.linear(h2, `${l}.mlp.up_proj`, c.intermediate, hidden, c.mlpBias)
      x = g.op('Add', [x, e.linear(g.op('Mul', [gate, up]), `${l}.mlp.down_proj`, hidden, c.intermediate, c.mlpBias)])
    }
  }
  x = gpt2 ? e.layerNorm(x, `${p}ln_f`) : e.rmsNorm(x, `${p}norm`)

  // lm_head as Gemm with transB over [B*S, hidden]: the [vocab, hidden] table is read as stored (and, tied,
  // shared with the embedding), so no transposed copy of the largest weight is made.
  const tied = c.tiedEmbeddings
  if (!tied && !w.has('lm_head.weight')) {
    throw new IntegrityError('The checkpoint has no lm_head.weight and config.json does not tie it to the embeddings', {
      code: 'WEIGHTS_MISSING',
      hint: 'A *ForCausalLM checkpoint is needed for text generation (a base *Model has no head), or set tie_word_embeddings if the head is the embedding.',
    })
  }
  if (c.tiedEmbeddings && w.has('lm_head.weight')) w.check('lm_head.weight', [c.vocabSize, c.hidden])
  const head = tied ? embeddings : w.tensor('lm_head.weight', [c.vocabSize, c.hidden])
  const flat = g.op('Reshape', [x, e.ints([-1, hidden])])
  const logits2d = g.op('Gemm', [flat, head], { transB: 1 })
  const logitsShape = g.op('Concat', [g.op('Shape', [inputIds]), e.ints([c.vocabSize])], { axis: 0 })
  g.op('Reshape', [logits2d, logitsShape], {}, 'logits')

  const outputs: DecoderGraph['outputs'] = [{ name: 'logits', dims: [BATCH, SEQUENCE, c.vocabSize] }]
  g.output('logits', DataType.FLOAT, outputs[0]!.dims)
  if (withPast) {
    for (const name of presents) {
      const dims = [BATCH, kvHeads, TOTAL, d]
      g.output(name, DataType.FLOAT, dims)
      outputs.push({ name, dims })
    }
  }

  const unused = [...checkpoint.tensors.keys()].filter((n) => !w.used.has(n) && !BUFFER_RE.test(n)).sort()
  if (unused.length > 0) {
    const listed = unused.slice(0, 8).join(', ') + (unused.length > 8 ? ` and ${unused.length - 8} more` : '')
    throw new IntegrityError(`The checkpoint holds ${unused.length} tensor(s) config.json does not describe (${c.layers} layers of ${c.modelType}): ${listed}`, {
      code: 'WEIGHTS_UNUSED',
      hint: 'config.json and the weights belong to different models (an extra layer, another architecture); use the config saved with these weights.',
      details: { unused },
    })
  }

  const model = g.toModel({
    opset,
    irVersion: irVersionFor(opset),
    producerName: 'modelforge',
    docString: `modelforge native export of ${c.modelType} (${options.task})`,
  })
  const inputs = ['input_ids', 'attention_mask', 'position_ids', ...(withPast ? presents.map((n) => n.replace('present.', 'past_key_values.')) : [])]
  return { model, initializers: w.initializers, decoder: c, opset, task: options.task, inputs, outputs }
}
