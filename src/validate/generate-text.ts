/**
 * Text in, text out over a decoder: the prompts tokenized with the model's tokenizer.json (tokenizer.ts,
 * @huggingface/tokenizers), generated with the KV cache (generate.ts), the new tokens decoded without
 * special tokens. eos and pad default from generation_config.json / config.json beside the tokenizer.
 */
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { readJsonFile } from '../lib/json.js'
import { generate, type DecoderModel, type GenerationOptions } from './generate.js'
import { type LoadedModel } from './runtime.js'
import { loadTokenizer } from './tokenizer.js'

export interface TextGenerationOptions extends GenerationOptions {
  /** tokenizer.json, or the directory holding it with generation_config.json and config.json. */
  tokenizer: string
}

export interface TextGenerationResult {
  /** What each prompt was continued with. */
  texts: string[]
  /** Each row's prompt and new token ids. */
  sequences: number[][]
  newTokens: number[][]
  finished: boolean[]
}

const ids = (v: unknown): number | number[] | undefined =>
  typeof v === 'number' ? v : Array.isArray(v) && v.every((x) => typeof x === 'number') ? (v as number[]) : undefined

/** eos and pad ids as transformers' generate takes them: generation_config.json first, then config.json. */
async function generationDefaults(dir: string): Promise<{ eosTokenId?: number | number[]; padTokenId?: number }> {
  const out: { eosTokenId?: number | number[]; padTokenId?: number } = {}
  for (const file of ['generation_config.json', 'config.json']) {
    const path = join(dir, file)
    if (!existsSync(path)) continue
    const c = await readJsonFile<Record<string, unknown>>(path, { expect: 'object' })
    out.eosTokenId ??= ids(c.eos_token_id)
    if (out.padTokenId === undefined && typeof c.pad_token_id === 'number') out.padTokenId = c.pad_token_id
  }
  return out
}

export async function generateText(model: DecoderModel | LoadedModel, prompts: readonly string[], options: TextGenerationOptions): Promise<TextGenerationResult> {
  const dir = options.tokenizer.endsWith('.json') ? dirname(options.tokenizer) : options.tokenizer
  const tok = await loadTokenizer(join(dir, 'model.onnx'), options.tokenizer, 'text generation')
  const defaults = await generationDefaults(dir)
  const encoded = prompts.map((p) => tok.tokenizer.encode(p).ids)
  const r = await generate(model, encoded, { ...defaults, ...options })
  return {
    texts: r.newTokens.map((t) => tok.tokenizer.decode(t, { skip_special_tokens: true })),
    sequences: r.sequences,
    newTokens: r.newTokens,
    finished: r.finished,
  }
}
