/**
 * Acceptance 2 of the decoder issue: what the native exporter writes for a causal LM loads in
 * transformers.js (@huggingface/transformers, a real client with its own onnxruntime session, offline, from
 * onnx/model.onnx beside config.json and the tokenizer) as a text-generation pipeline, and greedy
 * generation there gives PyTorch's tokens.
 */
import { readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { env, pipeline, Tensor, type TextGenerationPipeline } from '@huggingface/transformers'
import { exportModel } from '../../src/export/index.js'
import { repoRoot } from '../helpers/store-helpers.js'
import { tempDir } from './export-helpers.js'

const FIXTURES = join(repoRoot, 'fixtures', 'hf-tiny-decoders')
let dir: string

beforeAll(async () => {
  dir = await tempDir('transformers-js')
  env.allowRemoteModels = false
  env.allowLocalModels = true
  env.localModelPath = dir
  env.useBrowserCache = false
  env.useFSCache = false
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

describe('transformers.js loads the native export', () => {
  it.each(['tiny-llama', 'tiny-qwen2', 'tiny-gpt2'])('%s: a text-generation pipeline whose greedy tokens are PyTorch\'s', async (name) => {
    await exportModel({ model: join(FIXTURES, name), out: join(dir, name), exporter: 'native' })
    const ref = JSON.parse(await readFile(join(FIXTURES, name, 'reference.json'), 'utf8')) as { greedy: { prompt: number[]; max_new_tokens: number; sequence: number[] } }
    const generator = (await pipeline('text-generation', name, { dtype: 'fp32', device: 'cpu' })) as TextGenerationPipeline
    try {
      const prompt = ref.greedy.prompt
      const ids = new Tensor('int64', BigInt64Array.from(prompt.map(BigInt)), [1, prompt.length])
      const out = (await generator.model.generate({ inputs: ids, max_new_tokens: ref.greedy.max_new_tokens, do_sample: false })) as Tensor
      expect(Array.from(out.data as BigInt64Array, Number)).toEqual(ref.greedy.sequence)
      // The pipeline end to end: text in, the prompt's text continued out.
      const text = generator.tokenizer.decode(prompt, { skip_special_tokens: true })
      const [result] = (await generator(text, { max_new_tokens: 4, do_sample: false })) as { generated_text: string }[]
      expect(result!.generated_text.startsWith(text)).toBe(true)
    } finally {
      await generator.dispose()
    }
  })
})
