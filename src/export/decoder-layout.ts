/**
 * The files around a decoder export that the ecosystem's loaders look for: `onnx/model.onnx` (where
 * transformers.js and Optimum's hub layout keep it; a hard link to the model.onnx modelforge reads, so the
 * weights are on disk once) and `genai_config.json` for onnxruntime-genai, in the shape its model builder
 * writes (../shared/material/tiny-random-gpt2-onnx-ortgenai holds a real one), with the search defaults
 * taken from generation_config.json.
 */
import { copyFile, link, mkdir, writeFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { errnoCode } from '../lib/errors.js'
import { readJsonFile } from '../lib/json.js'
import { type DecoderConfig } from './decoder-config.js'
import { type DecoderGraph } from './decoder-graph.js'

async function linkOrCopy(from: string, to: string): Promise<void> {
  try {
    await link(from, to)
  } catch (err) {
    // File systems without hard links (some network and FUSE mounts): a copy is as good, only bigger.
    if (!['EPERM', 'EXDEV', 'ENOTSUP', 'EOPNOTSUPP', 'EMLINK'].includes(errnoCode(err) ?? '')) throw err
    await copyFile(from, to)
  }
}

const firstId = (v: number | number[] | undefined): number | undefined => (Array.isArray(v) ? v[0] : v)

export function genaiConfig(c: DecoderConfig, withPast: boolean, generation: Record<string, unknown> = {}): Record<string, unknown> {
  const num = (k: string, fallback: number): number => (typeof generation[k] === 'number' ? (generation[k] as number) : fallback)
  const eos = generation.eos_token_id ?? c.eosTokenId
  return {
    model: {
      bos_token_id: generation.bos_token_id ?? c.bosTokenId ?? firstId(c.eosTokenId) ?? 0,
      context_length: c.maxPositions,
      decoder: {
        session_options: { log_id: 'onnxruntime-genai', provider_options: [] },
        filename: 'model.onnx',
        head_size: c.headDim,
        hidden_size: c.hidden,
        inputs: {
          input_ids: 'input_ids',
          attention_mask: 'attention_mask',
          position_ids: 'position_ids',
          ...(withPast ? { past_key_names: 'past_key_values.%d.key', past_value_names: 'past_key_values.%d.value' } : {}),
        },
        outputs: {
          logits: 'logits',
          ...(withPast ? { present_key_names: 'present.%d.key', present_value_names: 'present.%d.value' } : {}),
        },
        num_attention_heads: c.heads,
        num_hidden_layers: c.layers,
        num_key_value_heads: c.kvHeads,
      },
      eos_token_id: eos ?? 0,
      pad_token_id: generation.pad_token_id ?? c.padTokenId ?? firstId(c.eosTokenId) ?? 0,
      type: c.modelType,
      vocab_size: c.vocabSize,
    },
    search: {
      diversity_penalty: 0.0,
      do_sample: generation.do_sample === true,
      early_stopping: true,
      length_penalty: 1.0,
      max_length: num('max_length', c.maxPositions),
      min_length: 0,
      no_repeat_ngram_size: 0,
      num_beams: 1,
      num_return_sequences: 1,
      // The model concatenates past and new keys, so the past is not a preallocated shared buffer.
      past_present_share_buffer: false,
      repetition_penalty: num('repetition_penalty', 1.0),
      temperature: num('temperature', 1.0),
      top_k: num('top_k', 1),
      top_p: num('top_p', 1.0),
    },
  }
}

/** Writes onnx/model.onnx (+ its external data) as links and genai_config.json into `dir`. */
export async function writeDecoderLayout(dir: string, graph: DecoderGraph, externalData: string[], sourceDir?: string): Promise<string[]> {
  await mkdir(join(dir, 'onnx'), { recursive: true })
  for (const f of ['model.onnx', ...externalData]) await linkOrCopy(join(dir, f), join(dir, 'onnx', f))
  const genPath = sourceDir ? join(sourceDir, 'generation_config.json') : undefined
  const generation = genPath && existsSync(genPath) ? await readJsonFile<Record<string, unknown>>(genPath, { expect: 'object' }) : {}
  const config = genaiConfig(graph.decoder, graph.task === 'text-generation-with-past', generation)
  await writeFile(join(dir, 'genai_config.json'), `${JSON.stringify(config, null, 2)}\n`)
  return ['onnx/model.onnx', ...externalData.map((f) => `onnx/${f}`), 'genai_config.json']
}
