/**
 * The tiny, real ONNX models of the demo store, built with the graph builder of src/onnx:
 *
 * - classifier: bag-of-words MLP. bow float32 [batch, vocab] -> MatMul+Add -> Relu -> MatMul+Add ->
 *   Softmax -> probabilities float32 [batch, labels]. Ships vocab.txt and labels.json.
 * - embedder: mean-pooled token embeddings. input_ids int64 [batch, seq] -> Gather -> ReduceMean(axis 1) ->
 *   MatMul -> Tanh -> LpNormalization -> embedding float32 [batch, dim] (unit length). Ships vocab.txt.
 *
 * Both come with config.json describing inputs, outputs and sizes. Weights are seeded by agent and version.
 */
import { DataType, encodeModel, GraphBuilder } from '../onnx/index.js'
import { seededRng, uniform } from '../lib/random.js'

export type ToyKind = 'classifier' | 'embedder'

export const VOCAB = [
  '[UNK]', 'the', 'a', 'model', 'market', 'rally', 'drop', 'report', 'error', 'alert', 'memory', 'recall',
  'plan', 'search', 'find', 'summary', 'good', 'bad', 'fast', 'slow', 'risk', 'gain', 'loss', 'news',
  'agent', 'task', 'data', 'signal', 'noise', 'trend', 'price', 'user',
]

const LABELS: Record<string, string[]> = {
  scout: ['relevant', 'irrelevant', 'spam'],
  analyst: ['positive', 'neutral', 'negative'],
}
const DEFAULT_LABELS = ['class_a', 'class_b', 'class_c']

/**
 * Words that push each label, planted into the random weights so that the demo's predictions make sense
 * (an untrained network would pick one label for everything). The middle label is the default.
 */
const KEYWORDS: Record<string, string[][]> = {
  scout: [['market', 'report', 'news', 'signal', 'data', 'trend', 'price'], [], ['fast', 'gain', 'alert']],
  analyst: [['good', 'gain', 'rally', 'fast'], [], ['bad', 'loss', 'drop', 'risk', 'error', 'slow']],
}

/** Which kind an agent gets: the demo's names are fixed, other names alternate by position. */
export function kindFor(agent: string, index: number): ToyKind {
  if (agent === 'scout' || agent === 'analyst') return 'classifier'
  if (agent === 'synthesizer' || agent === 'memory') return 'embedder'
  return index % 2 === 0 ? 'classifier' : 'embedder'
}

export interface ToyModel {
  kind: ToyKind
  /** File name -> content, written into the staging directory. */
  files: Record<string, string | Uint8Array>
  config: ToyConfig
}

export interface ToyConfig {
  model_type: 'bow-mlp-classifier' | 'mean-pool-embedder'
  agent: string
  version: string
  seed: string
  model_file: 'model.onnx'
  vocab_file: 'vocab.txt'
  labels_file?: 'labels.json'
  vocab_size: number
  hidden_size: number
  num_labels?: number
  embedding_dim?: number
  inputs: { name: string; dtype: 'float32' | 'int64'; shape: (number | string)[] }[]
  outputs: { name: string; dtype: 'float32'; shape: (number | string)[] }[]
  opset: number
}

const OPSET = 17

export function buildToyModel(agent: string, version: string, kind: ToyKind): ToyModel {
  return kind === 'classifier' ? buildClassifier(agent, version) : buildEmbedder(agent, version)
}

function buildClassifier(agent: string, version: string): ToyModel {
  const seed = `${agent}/${version}`
  const rng = seededRng(seed)
  const labels = LABELS[agent] ?? DEFAULT_LABELS
  const V = VOCAB.length
  const H = 16
  const C = labels.length
  const g = new GraphBuilder(`${agent}_classifier`)
  const bow = g.input('bow', DataType.FLOAT, ['batch', V])
  const fc1 = uniform(rng, V * H, 0.1)
  const fc2 = uniform(rng, H * C, 0.1)
  const bias2 = uniform(rng, C, 0.05)
  const keywords = KEYWORDS[agent] ?? []
  for (let j = 0; j < H; j++) {
    const c = j % C
    fc2[j * C + c]! += 1.5
    for (const w of keywords[c] ?? []) fc1[VOCAB.indexOf(w) * H + j]! += 1
  }
  bias2[1]! += 0.5
  const w1 = g.initializer('fc1.weight', [V, H], fc1)
  const b1 = g.initializer('fc1.bias', [H], uniform(rng, H, 0.05))
  const w2 = g.initializer('fc2.weight', [H, C], fc2)
  const b2 = g.initializer('fc2.bias', [C], bias2)
  const h = g.op('Relu', [g.op('Add', [g.op('MatMul', [bow, w1]), b1])])
  const logits = g.op('Add', [g.op('MatMul', [h, w2]), b2], {}, 'logits')
  g.op('Softmax', [logits], { axis: -1 }, 'probabilities')
  g.output('probabilities', DataType.FLOAT, ['batch', C])
  const config: ToyConfig = {
    model_type: 'bow-mlp-classifier', agent, version, seed, model_file: 'model.onnx', vocab_file: 'vocab.txt', labels_file: 'labels.json',
    vocab_size: V, hidden_size: H, num_labels: C,
    inputs: [{ name: 'bow', dtype: 'float32', shape: ['batch', V] }],
    outputs: [{ name: 'probabilities', dtype: 'float32', shape: ['batch', C] }],
    opset: OPSET,
  }
  return packToy('classifier', g, config, `toy bag-of-words classifier for ${agent} ${version}`, {
    'labels.json': JSON.stringify(labels, null, 2) + '\n',
  })
}

function buildEmbedder(agent: string, version: string): ToyModel {
  const seed = `${agent}/${version}`
  const rng = seededRng(seed)
  const V = VOCAB.length
  const D = 24
  const g = new GraphBuilder(`${agent}_embedder`)
  const ids = g.input('input_ids', DataType.INT64, ['batch', 'sequence'])
  const table = g.initializer('embeddings.weight', [V, D], uniform(rng, V * D, 1))
  const proj = g.initializer('proj.weight', [D, D], uniform(rng, D * D, Math.sqrt(6 / (2 * D))))
  const tokens = g.op('Gather', [table, ids], { axis: 0 })
  const pooled = g.op('ReduceMean', [tokens], { axes: [1], keepdims: 0 })
  const h = g.op('Tanh', [g.op('MatMul', [pooled, proj])])
  g.op('LpNormalization', [h], { axis: -1, p: 2 }, 'embedding')
  g.output('embedding', DataType.FLOAT, ['batch', D])
  const config: ToyConfig = {
    model_type: 'mean-pool-embedder', agent, version, seed, model_file: 'model.onnx', vocab_file: 'vocab.txt',
    vocab_size: V, hidden_size: D, embedding_dim: D,
    inputs: [{ name: 'input_ids', dtype: 'int64', shape: ['batch', 'sequence'] }],
    outputs: [{ name: 'embedding', dtype: 'float32', shape: ['batch', D] }],
    opset: OPSET,
  }
  return packToy('embedder', g, config, `toy mean-pool embedder for ${agent} ${version}`)
}

/** The files of a toy version: the model, its config.json, the vocabulary, and any extra files. */
function packToy(kind: ToyKind, g: GraphBuilder, config: ToyConfig, docString: string, extra: Record<string, string> = {}): ToyModel {
  const { agent, version } = config
  return {
    kind,
    config,
    files: {
      'model.onnx': encodeModel(g.toModel({ opset: OPSET, docString, metadata: { agent, version } })),
      'config.json': JSON.stringify(config, null, 2) + '\n',
      'vocab.txt': VOCAB.join('\n') + '\n',
      ...extra,
    },
  }
}

/** Token ids of a text by the toy vocabulary (unknown words -> [UNK]). */
export function tokenize(text: string, vocab: string[] = VOCAB): number[] {
  return text.toLowerCase().split(/\W+/).filter(Boolean).map((w) => Math.max(0, vocab.indexOf(w)))
}

/** The bag-of-words vector of a text. */
export function bagOfWords(text: string, vocab: string[] = VOCAB): Float32Array {
  const v = new Float32Array(vocab.length)
  for (const id of tokenize(text, vocab)) v[id]! += 1
  return v
}
