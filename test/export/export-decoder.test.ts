/**
 * The native decoder exporter against PyTorch (issue 13's acceptance 1 and 3): every fixture decoder and
 * rope/sliding-window variant within 1e-4 on prefill and cached decode with the same greedy tokens, left
 * padding that does not change a row, the layout the ecosystem loads, and the refusals that leave --out as
 * it was.
 */
import { cp, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { exportModel } from '../../src/export/index.js'
import { inferTask } from '../../src/export/model-config.js'
import { genaiConfig } from '../../src/export/decoder-layout.js'
import { decoderConfig } from '../../src/export/decoder-config.js'
import { validateDecoder } from '../../src/validate/decoder-check.js'
import { generate } from '../../src/validate/generate.js'
import { inspectModel } from '../../src/onnx/inspect.js'
import { closeModel, loadModel, runModel } from '../../src/validate/runtime.js'
import { type ModelforgeError } from '../../src/lib/errors.js'
import { repoRoot } from '../helpers/store-helpers.js'
import { tempDir } from './export-helpers.js'

const FIXTURES = join(repoRoot, 'fixtures', 'hf-tiny-decoders')
const VARIANTS = join(repoRoot, 'fixtures', 'hf-tiny-decoder-variants')
const DECODERS = [
  join(FIXTURES, 'tiny-llama'), join(FIXTURES, 'tiny-qwen2'), join(FIXTURES, 'tiny-gpt2'),
  join(VARIANTS, 'tiny-llama-rope-linear'), join(VARIANTS, 'tiny-llama-rope-dynamic'), join(VARIANTS, 'tiny-llama-rope-llama3'),
  join(VARIANTS, 'tiny-mistral'),
]
const nameOf = (p: string): string => p.split('/').pop()!

let dir: string
beforeAll(async () => {
  dir = await tempDir('decoder')
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

async function failure(p: Promise<unknown>): Promise<ModelforgeError> {
  const err = await p.then(() => undefined, (e: unknown) => e)
  expect(err, 'expected the export to fail').toBeDefined()
  return err as ModelforgeError
}

/** A copy of a fixture decoder without its torch model.onnx, config.json edited by `edit`. */
async function variant(src: string, name: string, edit: (config: Record<string, unknown>) => void): Promise<string> {
  const dst = join(dir, 'src', name)
  await cp(src, dst, { recursive: true, filter: (f) => !f.endsWith('.onnx') })
  const config = JSON.parse(await readFile(join(dst, 'config.json'), 'utf8')) as Record<string, unknown>
  edit(config)
  await writeFile(join(dst, 'config.json'), JSON.stringify(config))
  return dst
}

describe('acceptance 1: every fixture decoder against PyTorch', () => {
  it.each(DECODERS.map((d) => [nameOf(d), d]))('%s: prefill and decode logits within 1e-4, greedy tokens identical', async (name, src) => {
    const out = join(dir, `a1-${name}`)
    const result = await exportModel({ model: src, out, exporter: 'native' })
    expect(result).toMatchObject({ exporter: 'native', task: 'text-generation-with-past', opset: 17 })
    const config = decoderConfig(JSON.parse(await readFile(join(src, 'config.json'), 'utf8')))
    expect(result.inputs.map((i) => i.name)).toEqual([
      'input_ids', 'attention_mask', 'position_ids',
      ...Array.from({ length: config.layers }, (_, l) => [`past_key_values.${l}.key`, `past_key_values.${l}.value`]).flat(),
    ])
    expect(result.inputs.find((i) => i.name === 'past_key_values.0.key')!.shape).toEqual(['batch_size', config.kvHeads, 'past_sequence_length', config.headDim])
    expect(result.outputs.map((o) => o.name)).toEqual([
      'logits', ...Array.from({ length: config.layers }, (_, l) => [`present.${l}.key`, `present.${l}.value`]).flat(),
    ])
    const r = await validateDecoder({ candidate: join(out, 'model.onnx'), reference: join(src, 'reference.json') })
    for (const s of r.steps) expect(s.maxAbsErr, `${name} ${s.name}`).toBeLessThan(1e-4)
    expect(r.greedy.firstDivergence).toBeNull()
    expect(r.passed).toBe(true)
  })

  it.each(DECODERS.slice(0, 3).map((d) => [nameOf(d), d]))('%s: each row of a left-padded batch equals the row run alone', async (name, src) => {
    const out = join(dir, `pad-${name}`)
    await exportModel({ model: src, out, exporter: 'native' })
    const model = await loadModel(join(out, 'model.onnx'))
    try {
      const prompts = [[5, 17, 42, 99, 7, 23, 61], [8, 9], [120, 3, 44, 5]]
      const batched = await generate(model, prompts, { maxNewTokens: 8, eosTokenId: [] })
      for (const [i, p] of prompts.entries()) {
        const alone = await generate(model, [p], { maxNewTokens: 8, eosTokenId: [] })
        expect(batched.sequences[i], `row ${i}`).toEqual(alone.sequences[0])
      }
      // The logits themselves: the short row's prefill, padded to 7 on the left, against the row alone.
      const feeds = (ids: number[], width: number) => {
        const pad = width - ids.length
        const i64 = (v: number[]) => ({ dtype: 'int64' as const, dims: [1, v.length], data: BigInt64Array.from(v.map(BigInt)) })
        const past = Object.fromEntries(model.inputs.filter((x) => x.name.startsWith('past_key_values.')).map((x) => [x.name, { dtype: 'float32' as const, dims: [1, x.shape[1] as number, 0, x.shape[3] as number], data: new Float32Array(0) }]))
        return {
          input_ids: i64([...Array<number>(pad).fill(0), ...ids]),
          attention_mask: i64([...Array<number>(pad).fill(0), ...Array<number>(ids.length).fill(1)]),
          position_ids: i64([...Array<number>(pad).fill(0), ...ids.map((_, k) => k)]),
          ...past,
        }
      }
      const padded = (await runModel(model, feeds(prompts[1]!, 7), ['logits'])).logits!.data as Float32Array
      const alone = (await runModel(model, feeds(prompts[1]!, 2), ['logits'])).logits!.data as Float32Array
      const tail = padded.subarray(padded.length - alone.length)
      let max = 0
      for (let k = 0; k < alone.length; k++) max = Math.max(max, Math.abs(tail[k]! - alone[k]!))
      expect(max).toBeLessThan(1e-5)
    } finally {
      await closeModel(model)
    }
  })

  it('the rope variants are not the default: a dynamic or llama3 checkpoint exported as default diverges from PyTorch', async () => {
    for (const name of ['tiny-llama-rope-dynamic', 'tiny-llama-rope-llama3', 'tiny-llama-rope-linear']) {
      const src = await variant(join(VARIANTS, name), `${name}-as-default`, (c) => {
        c.rope_parameters = { rope_type: 'default', rope_theta: 10000.0 }
      })
      const out = join(dir, `wrong-${name}`)
      await exportModel({ model: src, out, exporter: 'native' })
      const r = await validateDecoder({ candidate: join(out, 'model.onnx'), reference: join(VARIANTS, name, 'reference.json') })
      expect(r.passed, name).toBe(false)
    }
  })

  it("Mistral's sliding window matters: the same weights without it diverge", async () => {
    const src = await variant(join(VARIANTS, 'tiny-mistral'), 'mistral-no-window', (c) => {
      c.sliding_window = null
    })
    const out = join(dir, 'mistral-no-window')
    await exportModel({ model: src, out, exporter: 'native' })
    const r = await validateDecoder({ candidate: join(out, 'model.onnx'), reference: join(VARIANTS, 'tiny-mistral', 'reference.json') })
    expect(r.steps.find((s) => s.name === 'prefill')!.passed).toBe(false)
  })

  it('transformers 4 config keys (rope_theta, rope_scaling with "type") read the same as rope_parameters', async () => {
    const src = await variant(join(VARIANTS, 'tiny-llama-rope-llama3'), 'llama3-v4-keys', (c) => {
      const p = c.rope_parameters as Record<string, unknown>
      delete c.rope_parameters
      c.rope_theta = p.rope_theta
      c.rope_scaling = { type: 'llama3', factor: p.factor, low_freq_factor: p.low_freq_factor, high_freq_factor: p.high_freq_factor, original_max_position_embeddings: p.original_max_position_embeddings }
    })
    const out = join(dir, 'llama3-v4')
    await exportModel({ model: src, out, exporter: 'native' })
    const r = await validateDecoder({ candidate: join(out, 'model.onnx'), reference: join(VARIANTS, 'tiny-llama-rope-llama3', 'reference.json') })
    expect(r.passed).toBe(true)
  })

  it.each([18, 21])('opset %i (ReduceMean takes its axes as an input) gives the same logits', async (opset) => {
    const out = join(dir, `opset-${opset}`)
    const result = await exportModel({ model: join(FIXTURES, 'tiny-llama'), out, exporter: 'native', opset })
    expect(result.opset).toBe(opset)
    const r = await validateDecoder({ candidate: join(out, 'model.onnx'), reference: join(FIXTURES, 'tiny-llama', 'reference.json') })
    expect(r.passed).toBe(true)
  })
})

describe('tasks and layout', () => {
  it('the task is inferred as Optimum does: a causal LM with its cache, without when config.json turns use_cache off', () => {
    expect(inferTask(join(FIXTURES, 'tiny-llama'), { architectures: ['LlamaForCausalLM'] })).toBe('text-generation-with-past')
    expect(inferTask(join(FIXTURES, 'tiny-gpt2'), { architectures: ['GPT2LMHeadModel'] })).toBe('text-generation-with-past')
    expect(inferTask(join(FIXTURES, 'tiny-gpt2'), { architectures: ['GPT2LMHeadModel'], use_cache: false })).toBe('text-generation')
  })

  it('text-generation (no cache): logits only, and generation over the whole sequence gives the same tokens', async () => {
    const out = join(dir, 'no-cache')
    const result = await exportModel({ model: join(FIXTURES, 'tiny-qwen2'), out, exporter: 'native', task: 'text-generation' })
    expect(result.inputs.map((i) => i.name)).toEqual(['input_ids', 'attention_mask', 'position_ids'])
    expect(result.outputs.map((o) => o.name)).toEqual(['logits'])
    expect(result.smoke).toMatchObject({ outputs: { logits: [2, 7, 320] } })
    const ref = JSON.parse(await readFile(join(FIXTURES, 'tiny-qwen2', 'reference.json'), 'utf8'))
    const model = await loadModel(join(out, 'model.onnx'))
    try {
      const g = await generate(model, [ref.greedy.prompt], { maxNewTokens: ref.greedy.max_new_tokens, eosTokenId: 0 })
      expect(g.cached).toBe(false)
      expect(g.sequences[0]).toEqual(ref.greedy.sequence)
    } finally {
      await closeModel(model)
    }
  })

  it('the folder: model.onnx, onnx/model.onnx (the same file), genai_config.json, configs and tokenizer files', async () => {
    const out = join(dir, 'layout')
    const result = await exportModel({ model: join(FIXTURES, 'tiny-llama'), out, exporter: 'native' })
    expect(result.files.map((f) => f.path).sort()).toEqual([
      'config.json', 'genai_config.json', 'generation_config.json', 'model.onnx', 'onnx/model.onnx', 'tokenizer.json', 'tokenizer_config.json',
    ])
    expect(await readFile(join(out, 'onnx', 'model.onnx'))).toEqual(await readFile(join(out, 'model.onnx')))
    const genai = JSON.parse(await readFile(join(out, 'genai_config.json'), 'utf8'))
    // The keys onnxruntime-genai's own (../shared/material/tiny-random-gpt2-onnx-ortgenai) has, and the names our model uses.
    const real = JSON.parse(await readFile(join(repoRoot, '..', 'shared', 'material', 'tiny-random-gpt2-onnx-ortgenai', 'genai_config.json'), 'utf8'))
    for (const key of Object.keys(real.model)) expect(genai.model, key).toHaveProperty(key)
    for (const key of ['filename', 'head_size', 'num_hidden_layers', 'num_key_value_heads', 'inputs', 'outputs']) expect(genai.model.decoder, key).toHaveProperty(key)
    expect(genai.model).toMatchObject({ type: 'llama', vocab_size: 300, context_length: 128, eos_token_id: 0, pad_token_id: 1, bos_token_id: 1 })
    expect(genai.model.decoder).toMatchObject({
      filename: 'model.onnx', head_size: 8, hidden_size: 32, num_attention_heads: 4, num_key_value_heads: 2, num_hidden_layers: 2,
      inputs: { past_key_names: 'past_key_values.%d.key', past_value_names: 'past_key_values.%d.value' },
      outputs: { logits: 'logits', present_key_names: 'present.%d.key', present_value_names: 'present.%d.value' },
    })
    expect(genai.search).toMatchObject({ do_sample: false, num_beams: 1, past_present_share_buffer: false })
  })

  it('genai_config.json takes sampling defaults from generation_config.json', () => {
    const c = decoderConfig({ model_type: 'qwen2', vocab_size: 10, hidden_size: 8, num_attention_heads: 2, num_key_value_heads: 1, num_hidden_layers: 1, intermediate_size: 16, eos_token_id: [3, 4] })
    const g = genaiConfig(c, true, { do_sample: true, temperature: 0.7, top_k: 20, top_p: 0.8, eos_token_id: [3, 4] }) as { model: Record<string, unknown>; search: Record<string, unknown> }
    expect(g.search).toMatchObject({ do_sample: true, temperature: 0.7, top_k: 20, top_p: 0.8 })
    expect(g.model.eos_token_id).toEqual([3, 4])
  })

  it('--skip-smoke: nothing runs in onnxruntime, the result says so and declares the interface', async () => {
    const out = join(dir, 'skip')
    const result = await exportModel({ model: join(FIXTURES, 'tiny-gpt2'), out, exporter: 'native', skipSmoke: true })
    expect(result.smoke).toEqual({ skipped: 'skipped: --skip-smoke' })
    expect(result.outputs[0]).toMatchObject({ name: 'logits', dtype: 'float32', shape: ['batch_size', 'sequence_length', 280] })
    expect(existsSync(join(out, 'model.onnx'))).toBe(true)
    // Declared from the graph the exporter built, without reading the weights back: the same as the file says.
    const file = await inspectModel(join(out, 'model.onnx'))
    const view = (v: { name: string; dtype: string; shape?: (number | string)[] | null }) => ({ name: v.name, dtype: v.dtype, shape: v.shape ?? [] })
    expect(result.inputs.map(view)).toEqual(file.inputs.map(view))
    expect(result.outputs.map(view)).toEqual(file.outputs.map(view))
  })
})

describe('acceptance 3: refusals, --out untouched', () => {
  async function refused(src: string, expected: { exitCode: number; code: string; message: RegExp }, task?: string) {
    const out = join(dir, `refused-${nameOf(src)}`)
    await mkdir(out, { recursive: true })
    await writeFile(join(out, 'keep.txt'), 'mine')
    const err = await failure(exportModel({ model: src, out, exporter: 'native', task }))
    expect(err).toMatchObject({ exitCode: expected.exitCode, code: expected.code })
    expect(err.message).toMatch(expected.message)
    expect((await readdir(out)).sort()).toEqual(['keep.txt'])
  }

  it('an architecture the exporter does not know (exit 2, with the supported list)', async () => {
    const src = await variant(join(FIXTURES, 'tiny-llama'), 'falcon', (c) => {
      c.model_type = 'falcon'
    })
    await refused(src, { exitCode: 2, code: 'UNSUPPORTED_MODEL_TYPE', message: /"falcon".*llama, mistral, qwen2, gpt2/ }, 'text-generation-with-past')
  })

  it('a rope type it does not write (exit 2, with the list)', async () => {
    const src = await variant(join(FIXTURES, 'tiny-llama'), 'yarn', (c) => {
      c.rope_parameters = { rope_type: 'yarn', rope_theta: 10000, factor: 4 }
    })
    await refused(src, { exitCode: 2, code: 'UNSUPPORTED_CONFIG', message: /rope type "yarn".*default, linear, dynamic, llama3/ })
  })

  it('Qwen2 with sliding-window layers (exit 2)', async () => {
    const src = await variant(join(FIXTURES, 'tiny-qwen2'), 'qwen-window', (c) => {
      c.use_sliding_window = true
      c.sliding_window = 4
    })
    await refused(src, { exitCode: 2, code: 'UNSUPPORTED_CONFIG', message: /sliding-window/ })
  })

  it('weights of another shape than config.json says (exit 4, both shapes named)', async () => {
    const src = await variant(join(FIXTURES, 'tiny-llama'), 'wide', (c) => {
      c.intermediate_size = 128
    })
    await refused(src, { exitCode: 4, code: 'WEIGHTS_SHAPE_MISMATCH', message: /mlp\.gate_proj\.weight has shape \[64, 32\].*implies \[128, 32\]/ })
  })

  it('fewer layers in config.json than in the weights (exit 4, the extra tensors named)', async () => {
    const src = await variant(join(FIXTURES, 'tiny-qwen2'), 'short', (c) => {
      c.num_hidden_layers = 1
      c.layer_types = ['full_attention']
    })
    await refused(src, { exitCode: 4, code: 'WEIGHTS_UNUSED', message: /model\.layers\.1\./ })
  })

  it('more layers in config.json than in the weights (exit 4)', async () => {
    const src = await variant(join(FIXTURES, 'tiny-gpt2'), 'deep', (c) => {
      c.n_layer = 3
    })
    await refused(src, { exitCode: 4, code: 'WEIGHTS_MISSING', message: /transformer\.h\.2\./ })
  })

  it('an untied head that the checkpoint lacks (exit 4)', async () => {
    const src = await variant(join(FIXTURES, 'tiny-qwen2'), 'untied', (c) => {
      c.tie_word_embeddings = false
    })
    await refused(src, { exitCode: 4, code: 'WEIGHTS_MISSING', message: /lm_head\.weight/ })
  })

  it('grouped heads that do not divide (exit 4, config invalid)', async () => {
    const src = await variant(join(FIXTURES, 'tiny-llama'), 'heads', (c) => {
      c.num_key_value_heads = 3
    })
    await refused(src, { exitCode: 4, code: 'MODEL_CONFIG_INVALID', message: /num_key_value_heads 3/ })
  })

  it('an encoder task for a decoder (exit 2)', async () => {
    await refused(await variant(join(FIXTURES, 'tiny-llama'), 'fe', () => undefined), { exitCode: 2, code: 'UNSUPPORTED_TASK', message: /text-generation-with-past, text-generation/ }, 'feature-extraction')
  })
})
