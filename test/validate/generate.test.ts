/**
 * generate on the fixtures' decoders (independent torch.onnx exports of tiny Llama, Qwen2 and GPT-2 with
 * Optimum's past key/value names), against the greedy sequences PyTorch generated for them.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { generate } from '../../src/validate/generate.js'
import { closeModel, loadModel, type LoadedModel } from '../../src/validate/runtime.js'
import { repoRoot } from '../helpers/store-helpers.js'

const DECODERS = ['tiny-llama', 'tiny-qwen2', 'tiny-gpt2'] as const
const dirOf = (name: string) => join(repoRoot, 'fixtures', 'hf-tiny-decoders', name)
const greedyOf = (name: string) => JSON.parse(readFileSync(join(dirOf(name), 'reference.json'), 'utf8')).greedy as { prompt: number[]; max_new_tokens: number; sequence: number[] }

const models = new Map<string, LoadedModel>()
beforeAll(async () => {
  for (const name of DECODERS) models.set(name, await loadModel(join(dirOf(name), 'model.onnx')))
})
afterAll(async () => {
  for (const m of models.values()) await closeModel(m)
})

describe('generate', () => {
  it.each(DECODERS)('%s: greedy with the KV cache gives the tokens PyTorch generated', async (name) => {
    const ref = greedyOf(name)
    const r = await generate(models.get(name)!, [ref.prompt], { maxNewTokens: ref.max_new_tokens })
    expect(r.sequences[0]).toEqual(ref.sequence)
    expect(r).toMatchObject({ cached: true, steps: ref.max_new_tokens, finished: [false] })
    expect(r.newTokens[0]).toEqual(ref.sequence.slice(ref.prompt.length))
  })

  it.each(DECODERS)('%s: each row of a left-padded batch generates what it generates alone', async (name) => {
    const m = models.get(name)!
    const ref = greedyOf(name)
    const short = ref.prompt.slice(2)
    const batch = await generate(m, [ref.prompt, short, [ref.prompt[0]!]], { maxNewTokens: 6 })
    for (const [i, p] of [ref.prompt, short, [ref.prompt[0]!]].entries()) {
      expect(batch.sequences[i], `row ${i}`).toEqual((await generate(m, [p], { maxNewTokens: 6 })).sequences[0])
    }
  })

  it('without past inputs (text-generation, no cache) runs the whole sequence every step, same tokens', async () => {
    // The Llama export seen as a model without a cache: its past is always fed empty, its presents dropped.
    const m = models.get('tiny-llama')!
    const past = m.inputs.filter((i) => i.name.startsWith('past_key_values.'))
    const noCache = {
      inputs: m.inputs.filter((i) => !past.includes(i)),
      outputs: m.outputs.filter((o) => !o.name.startsWith('present.')),
      run: async (feeds: Record<string, import('../../src/validate/tensors.js').HostTensor>) => {
        const batch = feeds.input_ids!.dims[0]!
        const empty = Object.fromEntries(past.map((p) => [p.name, { dtype: 'float32' as const, dims: [batch, p.shape[1] as number, 0, p.shape[3] as number], data: new Float32Array(0) }]))
        const { runModel } = await import('../../src/validate/runtime.js')
        return runModel(m, { ...feeds, ...empty }, ['logits'])
      },
    }
    const ref = greedyOf('tiny-llama')
    const r = await generate(noCache, [ref.prompt], { maxNewTokens: ref.max_new_tokens })
    expect(r).toMatchObject({ cached: false, sequences: [ref.sequence] })
  })

  it('stops a row at its eos token and pads it while the others go on', async () => {
    const m = models.get('tiny-llama')!
    const ref = greedyOf('tiny-llama')
    const third = ref.sequence[ref.prompt.length + 2]!
    const r = await generate(m, [ref.prompt], { maxNewTokens: 12, eosTokenId: third })
    expect(r.newTokens[0]).toEqual(ref.sequence.slice(ref.prompt.length, ref.prompt.length + 3))
    expect(r).toMatchObject({ finished: [true], steps: 3 })
  })

  it('samples reproducibly by seed; topK 1 is greedy', async () => {
    const m = models.get('tiny-qwen2')!
    const ref = greedyOf('tiny-qwen2')
    const a = await generate(m, [ref.prompt], { maxNewTokens: 8, temperature: 1.5, topP: 0.95, seed: 7 })
    const b = await generate(m, [ref.prompt], { maxNewTokens: 8, temperature: 1.5, topP: 0.95, seed: 7 })
    expect(a.sequences).toEqual(b.sequences)
    const seeds = await Promise.all([1, 2, 3, 4].map((seed) => generate(m, [ref.prompt], { maxNewTokens: 8, temperature: 2, seed })))
    expect(new Set(seeds.map((s) => s.newTokens[0]!.join(','))).size).toBeGreaterThan(1)
    const k1 = await generate(m, [ref.prompt], { maxNewTokens: ref.max_new_tokens, topK: 1, seed: 3 })
    expect(k1.sequences[0]).toEqual(ref.sequence)
  })

  it('refuses what it cannot run or was not meant to do, exit 2', async () => {
    const m = models.get('tiny-gpt2')!
    const cases: [Parameters<typeof generate>[1], Parameters<typeof generate>[2]][] = [
      [[], {}], [[[]], {}], [[[1.5]], {}], [[[1]], { maxNewTokens: 0 }], [[[1]], { temperature: 0 }],
      [[[1]], { topK: 0 }], [[[1]], { topP: 1.5 }], [[[1]], { greedy: true, temperature: 0.7 }],
    ]
    for (const [prompts, o] of cases) await expect(generate(m, prompts, o), JSON.stringify([prompts, o])).rejects.toMatchObject({ code: 'INVALID_OPTION', exitCode: 2 })
    const encoder = await loadModel(join(repoRoot, 'fixtures', 'hf-tiny', 'tiny-bert', 'model.onnx'))
    try {
      await expect(generate(encoder, [[1, 2]])).rejects.toMatchObject({ code: 'DECODER_INTERFACE', exitCode: 2, message: expect.stringMatching(/^not a causal LM/) })
    } finally {
      await closeModel(encoder)
    }
  })
})
