/**
 * The MiniLM-L6-sized BERT checkpoint the export and quantize benches share (hidden 384, 6 layers, 12
 * heads, intermediate 1536, vocabulary 30522; random float32 weights, about 91 MB of safetensors).
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { writeSafetensors, type TensorToWrite } from '../src/export/safetensors.js'
import { prng, uniform } from '../src/lib/random.js'

export const MINILM = { hidden: 384, layers: 6, heads: 12, ff: 1536, vocab: 30522, positions: 512 }

/** Writes config.json and model.safetensors into dir; returns the weight bytes. */
export async function makeMiniLmCheckpoint(dir: string): Promise<number> {
  const { hidden: H, layers: LAYERS, heads: HEADS, ff: FF, vocab: VOCAB, positions: POSITIONS } = MINILM
  let seed = 1
  const t = (shape: number[]): TensorToWrite => ({ dtype: 'F32', shape, data: uniform(prng(seed++), shape.reduce((a, b) => a * b, 1), 0.05) })
  const ones = (n: number): TensorToWrite => ({ dtype: 'F32', shape: [n], data: new Float32Array(n).fill(1) })
  const tensors: Record<string, TensorToWrite> = {
    'embeddings.word_embeddings.weight': t([VOCAB, H]),
    'embeddings.position_embeddings.weight': t([POSITIONS, H]),
    'embeddings.token_type_embeddings.weight': t([2, H]),
    'embeddings.LayerNorm.weight': ones(H),
    'embeddings.LayerNorm.bias': t([H]),
    'pooler.dense.weight': t([H, H]),
    'pooler.dense.bias': t([H]),
  }
  for (let i = 0; i < LAYERS; i++) {
    const l = `encoder.layer.${i}`
    for (const p of ['attention.self.query', 'attention.self.key', 'attention.self.value', 'attention.output.dense']) {
      tensors[`${l}.${p}.weight`] = t([H, H])
      tensors[`${l}.${p}.bias`] = t([H])
    }
    tensors[`${l}.intermediate.dense.weight`] = t([FF, H])
    tensors[`${l}.intermediate.dense.bias`] = t([FF])
    tensors[`${l}.output.dense.weight`] = t([H, FF])
    tensors[`${l}.output.dense.bias`] = t([H])
    for (const ln of ['attention.output.LayerNorm', 'output.LayerNorm']) {
      tensors[`${l}.${ln}.weight`] = ones(H)
      tensors[`${l}.${ln}.bias`] = t([H])
    }
  }
  const config = {
    architectures: ['BertModel'], model_type: 'bert', hidden_size: H, num_hidden_layers: LAYERS, num_attention_heads: HEADS,
    intermediate_size: FF, vocab_size: VOCAB, max_position_embeddings: POSITIONS, type_vocab_size: 2, hidden_act: 'gelu',
    layer_norm_eps: 1e-12, pad_token_id: 0,
  }
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 2))
  return writeSafetensors(join(dir, 'model.safetensors'), tensors)
}
