/**
 * The native exporter against PyTorch: acceptance 1 (reference.json within 1e-4), 2 (batch 1..8, sequence
 * 1..max positions), F16/BF16/sharded weights, xlm-roberta, the RoBERTa classification head, and the
 * error cases of acceptance 6.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { exportModel } from '../../src/export/index.js'
import { openCheckpoint, writeSafetensors, type TensorToWrite } from '../../src/export/safetensors.js'
import { f16ToF32, f32ToBf16, f32ToF16, bf16ToF32 } from '../../src/onnx/float16.js'
import { type ModelforgeError } from '../../src/lib/errors.js'
import { copyFixture, FIXTURES, loadReference, maxAbsDiff, referenceFeeds, runOnnx, tempDir, TINY_MODELS } from './export-helpers.js'

let dir: string
beforeAll(async () => {
  dir = await tempDir('native')
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

async function exportNative(model: string, out: string, extra: Partial<Parameters<typeof exportModel>[0]> = {}) {
  return exportModel({ model, out, exporter: 'native', ...extra })
}

async function failure(p: Promise<unknown>): Promise<ModelforgeError> {
  const err = await p.then(() => undefined, (e: unknown) => e)
  expect(err, 'expected the export to fail').toBeDefined()
  return err as ModelforgeError
}

/** Rewrites a checkpoint's tensors through `convert` into a new model directory. */
async function rewriteCheckpoint(src: string, dst: string, convert: (name: string, data: Float32Array, shape: number[]) => TensorToWrite): Promise<void> {
  await mkdir(dst, { recursive: true })
  for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'vocab.txt']) {
    await writeFile(join(dst, f), await readFile(join(src, f)))
  }
  const ck = await openCheckpoint(src)
  const tensors: Record<string, TensorToWrite> = {}
  for (const [name, info] of ck.tensors) tensors[name] = convert(name, await ck.readFloat32(name), info.shape)
  await ck.close()
  await writeSafetensors(join(dst, 'model.safetensors'), tensors)
}

describe('acceptance 1: native export matches the PyTorch reference outputs', () => {
  for (const model of TINY_MODELS) {
    it(`${model} within atol 1e-4`, async () => {
      const out = join(dir, `a1-${model}`)
      const result = await exportNative(join(FIXTURES, model), out)
      expect(result.exporter).toBe('native')
      expect(result.opset).toBe(17)
      const ref = await loadReference(model)
      expect(result.inputs.map((i) => i.name)).toEqual(Object.keys(ref.inputs))
      expect(result.outputs.map((o) => o.name).sort()).toEqual(Object.keys(ref.outputs).sort())
      for (const i of result.inputs) expect(i).toMatchObject({ dtype: 'int64', shape: ['batch_size', 'sequence_length'] })
      const got = await runOnnx(join(out, 'model.onnx'), referenceFeeds(ref))
      for (const [name, expected] of Object.entries(ref.outputs)) {
        expect(got[name]!.dims).toEqual(expected.dims)
        expect(maxAbsDiff(got[name]!.data, expected.data), name).toBeLessThan(1e-4)
      }
      expect(result.files.map((f) => f.path)).toEqual(['config.json', 'model.onnx', 'tokenizer.json', 'tokenizer_config.json', 'vocab.txt'])
    })
  }
})

/** A deterministic PRNG for inputs (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = Math.imul(a ^ (a >>> 15), a | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

describe('acceptance 2: dynamic batch 1..8 and sequence 1..max positions', () => {
  const limits: Record<string, number> = {
    'tiny-bert': 64,
    'tiny-bert-classifier': 32,
    'tiny-roberta': 39, // 40 positions minus padding_idx + 1
    'tiny-distilbert-classifier': 48,
  }
  for (const model of TINY_MODELS) {
    it(`${model}: every batch size and sequence length runs, and rows do not depend on the batch`, async () => {
      const out = join(dir, `a2-${model}`)
      const result = await exportNative(join(FIXTURES, model), out)
      const ort = (await import('onnxruntime-node')).default
      const session = await ort.InferenceSession.create(join(out, 'model.onnx'))
      const rand = rng(7)
      const names = result.inputs.map((i) => i.name)
      const run = async (batch: number, seq: number, ids: bigint[], mask: bigint[]) => {
        const feeds: Record<string, InstanceType<typeof ort.Tensor>> = {
          input_ids: new ort.Tensor('int64', BigInt64Array.from(ids), [batch, seq]),
          attention_mask: new ort.Tensor('int64', BigInt64Array.from(mask), [batch, seq]),
        }
        if (names.includes('token_type_ids')) feeds.token_type_ids = new ort.Tensor('int64', new BigInt64Array(batch * seq), [batch, seq])
        return session.run(feeds)
      }
      const max = limits[model]!
      const lengths = [...new Set([1, 2, 3, 5, 8, 13, 21, max - 1, max])].filter((s) => s <= max)
      for (let batch = 1; batch <= 8; batch++) {
        for (const seq of lengths) {
          const ids: bigint[] = []
          const mask: bigint[] = []
          const reals: number[] = []
          for (let b = 0; b < batch; b++) {
            // Row b > 0 is padded to a random length; pad id 0 where the mask is 0, as tokenizers do.
            const real = b === 0 ? seq : 1 + Math.floor(rand() * seq)
            reals.push(real)
            for (let s = 0; s < seq; s++) {
              ids.push(s < real ? BigInt(2 + Math.floor(rand() * 41)) : 0n)
              mask.push(s < real ? 1n : 0n)
            }
          }
          const res = await run(batch, seq, ids, mask)
          for (const o of result.outputs) {
            const t = res[o.name]!
            const want = o.shape.map((d) => (d === 'batch_size' ? batch : d === 'sequence_length' ? seq : d))
            expect(t.dims.map(Number), `${o.name} at batch ${batch}, seq ${seq}`).toEqual(want)
            expect((t.data as Float32Array).every(Number.isFinite)).toBe(true)
          }
          if (batch > 1 && (seq === max || seq === 5)) {
            const single = await run(1, seq, ids.slice(0, seq), mask.slice(0, seq))
            for (const o of result.outputs) {
              const per = (res[o.name]!.data as Float32Array).length / batch
              expect(maxAbsDiff((res[o.name]!.data as Float32Array).slice(0, per), single[o.name]!.data as Float32Array)).toBeLessThan(1e-5)
            }
          }
          if (batch === 8 && seq === max) {
            // Padding must not leak into the real tokens: each padded row, at its real positions, equals the
            // same row run alone without padding (the additive mask at work; a missing mask fails here).
            for (let b = 1; b < batch; b++) {
              const real = reals[b]!
              if (real === seq) continue
              const alone = await run(1, real, ids.slice(b * seq, b * seq + real), mask.slice(b * seq, b * seq + real))
              for (const o of result.outputs) {
                const all = res[o.name]!.data as Float32Array
                const per = all.length / batch
                const row = all.slice(b * per, (b + 1) * per)
                const perToken = o.shape[1] === 'sequence_length' ? per / seq : 0
                const got = perToken ? row.slice(0, real * perToken) : row
                expect(maxAbsDiff(got, alone[o.name]!.data as Float32Array), `${o.name} row ${b} (${real} of ${seq} tokens)`).toBeLessThan(1e-5)
              }
            }
          }
        }
      }
      await session.release()
    })
  }
})

describe('weights in other formats', () => {
  it('F16 and BF16 checkpoints export to the same model as their float32 values', async () => {
    const src = join(FIXTURES, 'tiny-bert')
    const ref = await loadReference('tiny-bert')
    for (const [kind, encode, decode] of [['F16', f32ToF16, f16ToF32], ['BF16', f32ToBf16, bf16ToF32]] as const) {
      const low = join(dir, `w-${kind}`)
      const widened = join(dir, `w-${kind}-as-f32`)
      await rewriteCheckpoint(src, low, (_n, data, shape) => ({ dtype: kind, shape, data: encode(data) }))
      await rewriteCheckpoint(src, widened, (_n, data, shape) => ({ dtype: 'F32', shape, data: decode(encode(data)) }))
      await exportNative(low, join(low, 'out'))
      await exportNative(widened, join(widened, 'out'))
      const a = await runOnnx(join(low, 'out', 'model.onnx'), referenceFeeds(ref))
      const b = await runOnnx(join(widened, 'out', 'model.onnx'), referenceFeeds(ref))
      expect(maxAbsDiff(a.last_hidden_state!.data, b.last_hidden_state!.data)).toBe(0)
      // And still close to the float32 reference: the rounding of the weights is all that changed.
      expect(maxAbsDiff(a.last_hidden_state!.data, ref.outputs.last_hidden_state!.data)).toBeLessThan(kind === 'F16' ? 1e-2 : 1e-1)
    }
  })

  it('sharded checkpoints (model.safetensors.index.json) export like the single file', async () => {
    const src = join(FIXTURES, 'tiny-roberta')
    const d = await copyFixture('tiny-roberta', join(dir, 'sharded'))
    await rm(join(d, 'model.safetensors'))
    const ck = await openCheckpoint(src)
    const names = [...ck.tensors.keys()].sort()
    const shards: Record<string, TensorToWrite>[] = [{}, {}, {}]
    const weightMap: Record<string, string> = {}
    for (const [i, name] of names.entries()) {
      const info = ck.info(name)
      shards[i % 3]![name] = { dtype: 'F32', shape: info.shape, data: await ck.readFloat32(name) }
      weightMap[name] = `model-0000${(i % 3) + 1}-of-00003.safetensors`
    }
    await ck.close()
    for (const [i, tensors] of shards.entries()) await writeSafetensors(join(d, `model-0000${i + 1}-of-00003.safetensors`), tensors)
    await writeFile(join(d, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }))
    const result = await exportNative(d, join(d, 'out'))
    expect(result.exporter).toBe('native')
    const ref = await loadReference('tiny-roberta')
    const got = await runOnnx(join(d, 'out', 'model.onnx'), referenceFeeds(ref))
    expect(maxAbsDiff(got.last_hidden_state!.data, ref.outputs.last_hidden_state!.data)).toBeLessThan(1e-4)
  })

  it('TensorFlow-style LayerNorm names (gamma/beta) load like weight/bias', async () => {
    const d = join(dir, 'gamma')
    await rewriteCheckpoint(join(FIXTURES, 'tiny-bert'), d, (_n, data, shape) => ({ dtype: 'F32', shape, data }))
    const ck = await openCheckpoint(d)
    const tensors: Record<string, TensorToWrite> = {}
    for (const [name, info] of ck.tensors) {
      const renamed = name.replace(/LayerNorm\.weight$/, 'LayerNorm.gamma').replace(/LayerNorm\.bias$/, 'LayerNorm.beta')
      tensors[renamed] = { dtype: 'F32', shape: info.shape, data: await ck.readFloat32(name) }
    }
    await ck.close()
    await writeSafetensors(join(d, 'model.safetensors'), tensors)
    await exportNative(d, join(d, 'out'))
    const ref = await loadReference('tiny-bert')
    const got = await runOnnx(join(d, 'out', 'model.onnx'), referenceFeeds(ref))
    expect(maxAbsDiff(got.last_hidden_state!.data, ref.outputs.last_hidden_state!.data)).toBeLessThan(1e-4)
  })

  it('xlm-roberta uses the RoBERTa graph', async () => {
    const d = await copyFixture('tiny-roberta', join(dir, 'xlmr'))
    const config = JSON.parse(await readFile(join(d, 'config.json'), 'utf8'))
    await writeFile(join(d, 'config.json'), JSON.stringify({ ...config, model_type: 'xlm-roberta', architectures: ['XLMRobertaModel'] }))
    const result = await exportModel({ model: d, out: join(d, 'out') })
    expect(result).toMatchObject({ exporter: 'native', modelType: 'xlm-roberta', task: 'feature-extraction' })
    const ref = await loadReference('tiny-roberta')
    const got = await runOnnx(join(d, 'out', 'model.onnx'), referenceFeeds(ref))
    expect(maxAbsDiff(got.last_hidden_state!.data, ref.outputs.last_hidden_state!.data)).toBeLessThan(1e-4)
  })

  it('a RobertaForSequenceClassification head gives tanh(dense(h[:, 0])) projected, as transformers computes', async () => {
    const d = await copyFixture('tiny-roberta', join(dir, 'roberta-cls'))
    const ck = await openCheckpoint(join(FIXTURES, 'tiny-roberta'))
    const tensors: Record<string, TensorToWrite> = {}
    for (const [name, info] of ck.tensors) tensors[`roberta.${name}`] = { dtype: 'F32', shape: info.shape, data: await ck.readFloat32(name) }
    await ck.close()
    const rand = rng(3)
    const r = (n: number) => Float32Array.from({ length: n }, () => rand() - 0.5)
    const dense = r(32 * 32), denseB = r(32), proj = r(2 * 32), projB = r(2)
    Object.assign(tensors, {
      'classifier.dense.weight': { dtype: 'F32', shape: [32, 32], data: dense },
      'classifier.dense.bias': { dtype: 'F32', shape: [32], data: denseB },
      'classifier.out_proj.weight': { dtype: 'F32', shape: [2, 32], data: proj },
      'classifier.out_proj.bias': { dtype: 'F32', shape: [2], data: projB },
    })
    await writeSafetensors(join(d, 'model.safetensors'), tensors)
    const config = JSON.parse(await readFile(join(d, 'config.json'), 'utf8'))
    await writeFile(join(d, 'config.json'), JSON.stringify({ ...config, architectures: ['RobertaForSequenceClassification'], id2label: { 0: 'NEG', 1: 'POS' } }))
    const result = await exportModel({ model: d, out: join(d, 'out') })
    expect(result).toMatchObject({ exporter: 'native', task: 'text-classification' })
    const ref = await loadReference('tiny-roberta')
    const got = await runOnnx(join(d, 'out', 'model.onnx'), referenceFeeds(ref))
    expect(got.logits!.dims).toEqual([3, 2])
    const h = ref.outputs.last_hidden_state!
    const [batch, seq, hidden] = h.dims as [number, number, number]
    for (let b = 0; b < batch; b++) {
      const cls = h.data.slice(b * seq * hidden, b * seq * hidden + hidden)
      const t = Array.from({ length: hidden }, (_, o) => Math.tanh(denseB[o]! + cls.reduce((a, x, i) => a + x * dense[o * hidden + i]!, 0)))
      for (let k = 0; k < 2; k++) {
        const logit = projB[k]! + t.reduce((a, x, i) => a + x * proj[k * hidden + i]!, 0)
        expect(Math.abs(got.logits!.data[b * 2 + k]! - logit)).toBeLessThan(1e-4)
      }
    }
  })

  it('writes other opsets on request (18 moves reduce axes to inputs)', async () => {
    const out = join(dir, 'opset19')
    const result = await exportNative(join(FIXTURES, 'tiny-bert'), out, { opset: 19 })
    expect(result.opset).toBe(19)
    const ref = await loadReference('tiny-bert')
    const got = await runOnnx(join(out, 'model.onnx'), referenceFeeds(ref))
    expect(maxAbsDiff(got.pooler_output!.data, ref.outputs.pooler_output!.data)).toBeLessThan(1e-4)
    const err = await failure(exportNative(join(FIXTURES, 'tiny-bert'), join(dir, 'opset13'), { opset: 13 }))
    expect(err.message).toMatch(/--opset 13 is outside what the native exporter writes \(17 to 21\)/)
  })
})

describe('weights config.json does not use', () => {
  /** tiny-bert with `extra` tensors added to its checkpoint. */
  async function withExtra(name: string, extra: (shape: (n: string) => number[]) => Record<string, number[]>): Promise<string> {
    const d = join(dir, name)
    await rewriteCheckpoint(join(FIXTURES, 'tiny-bert'), d, (_n, data, shape) => ({ dtype: 'F32', shape, data }))
    const ck = await openCheckpoint(d)
    const tensors: Record<string, TensorToWrite> = {}
    for (const [n, info] of ck.tensors) tensors[n] = { dtype: 'F32', shape: info.shape, data: await ck.readFloat32(n) }
    const shapes = Object.fromEntries([...ck.tensors].map(([n, info]) => [n, info.shape]))
    await ck.close()
    for (const [n, shape] of Object.entries(extra((t) => shapes[t]!))) {
      tensors[n] = { dtype: n.endsWith('position_ids') ? 'I64' : 'F32', shape, data: n.endsWith('position_ids') ? new BigInt64Array(shape.reduce((a, b) => a * b, 1)) : new Float32Array(shape.reduce((a, b) => a * b, 1)) }
    }
    await writeSafetensors(join(d, 'model.safetensors'), tensors)
    return d
  }

  it('an extra layer and an unknown tensor export with a warning that lists them, as transformers warns', async () => {
    const d = await withExtra('extra-layer', (shape) => ({
      'encoder.layer.2.output.dense.weight': shape('encoder.layer.1.output.dense.weight'),
      'encoder.layer.2.output.dense.bias': shape('encoder.layer.1.output.dense.bias'),
      'mystery.scale': [4],
      // A buffer older transformers saved with the weights, which it skips on load: not reported.
      'embeddings.position_ids': [1, 64],
    }))
    const result = await exportNative(d, join(d, 'out'))
    expect(result.warnings).toEqual([
      'Some weights of the checkpoint were not used by the feature-extraction export (3): encoder.layer.2.output.dense.bias, encoder.layer.2.output.dense.weight, mystery.scale. '
      + 'This is expected when the checkpoint carries a head for another task; otherwise config.json does not describe these weights (an extra layer, a renamed or unknown tensor) and the export may not be the model you trained.',
    ])
    // The export itself is the model config.json describes.
    const ref = await loadReference('tiny-bert')
    const got = await runOnnx(join(d, 'out', 'model.onnx'), referenceFeeds(ref))
    expect(maxAbsDiff(got.last_hidden_state!.data, ref.outputs.last_hidden_state!.data)).toBeLessThan(1e-4)
  })

  it('a long list is cut after 10 names, with the count of the rest', async () => {
    const d = await withExtra('many-unknown', () => Object.fromEntries(Array.from({ length: 25 }, (_, i) => [`extra.t${String(i).padStart(2, '0')}`, [2]])))
    const result = await exportNative(d, join(d, 'out'))
    expect(result.warnings).toHaveLength(1)
    expect(result.warnings![0]).toMatch(/^Some weights of the checkpoint were not used by the feature-extraction export \(25\): extra\.t00, extra\.t01, .*, extra\.t09 and 15 more\. /)
  })

  it('a checkpoint config.json uses fully gives no warning; a head left out by the task is named', async () => {
    expect((await exportNative(join(FIXTURES, 'tiny-bert'), join(dir, 'no-warning'))).warnings).toBeUndefined()
    expect((await exportNative(join(FIXTURES, 'tiny-bert-classifier'), join(dir, 'cls-no-warning'))).warnings).toBeUndefined()
    const base = await exportNative(join(FIXTURES, 'tiny-bert-classifier'), join(dir, 'cls-as-base'), { task: 'feature-extraction' })
    expect(base.warnings![0]).toMatch(/^Some weights of the checkpoint were not used by the feature-extraction export \(2\): classifier\.bias, classifier\.weight\. This is expected when the checkpoint carries a head for another task/)
  })
})

describe('acceptance 6: errors', () => {
  it('missing config.json: exit 2 naming the directory', async () => {
    const d = await copyFixture('tiny-bert', join(dir, 'noconfig'))
    await rm(join(d, 'config.json'))
    const err = await failure(exportNative(d, join(d, 'out')))
    expect(err.exitCode).toBe(2)
    expect(err.code).toBe('CONFIG_NOT_FOUND')
    expect(err.message).toMatch(/has no config.json/)
    expect(err.hint).toMatch(/Hugging Face model directory .* holds config.json/)
    expect(existsSync(join(d, 'out', 'model.onnx'))).toBe(false)
  })

  it('unsupported model_type lists the supported ones and suggests --exporter optimum', async () => {
    const d = await copyFixture('tiny-bert', join(dir, 'gpt2'))
    await writeFile(join(d, 'config.json'), JSON.stringify({ model_type: 'falcon', architectures: ['FalconModel'] }))
    const err = await failure(exportNative(d, join(d, 'out')))
    expect(err.exitCode).toBe(2)
    expect(err.message).toMatch(/model_type "falcon" \(supported: bert, roberta, xlm-roberta, distilbert\)/)
    expect(err.hint).toMatch(/--exporter optimum/)
  })

  it('only pytorch_model.bin: refused with the reason and a way out', async () => {
    const d = await copyFixture('tiny-bert', join(dir, 'pickle'))
    await rm(join(d, 'model.safetensors'))
    await writeFile(join(d, 'pytorch_model.bin'), 'pickle bytes are never read')
    const err = await failure(exportNative(d, join(d, 'out')))
    expect(err.exitCode).toBe(2)
    expect(err.message).toMatch(/weights only as pytorch_model.bin/)
    expect(err.code).toBe('NO_SAFETENSORS')
    expect(err.hint).toMatch(/reads only safetensors.*--exporter optimum/)
    expect(existsSync(join(d, 'out'))).toBe(false)
  })

  it('a corrupt safetensors file fails the export with the reader\'s message and leaves --out empty', async () => {
    const d = await copyFixture('tiny-bert', join(dir, 'corrupt'))
    const bytes = await readFile(join(d, 'model.safetensors'))
    await writeFile(join(d, 'model.safetensors'), bytes.subarray(0, bytes.length - 100))
    const err = await failure(exportNative(d, join(d, 'out')))
    expect(err.code).toBe('SAFETENSORS_INVALID')
    expect(err.exitCode).toBe(4)
    expect(err.hint).toMatch(/Download it again/)
    expect(err.message).toMatch(/beyond the .* bytes of data \(out of range\)|belong to no tensor/)
    expect(existsSync(join(d, 'out'))).toBe(false)
  })

  it('weights whose shapes disagree with config.json name the tensor and both shapes (exit 4: the files disagree)', async () => {
    const d = await copyFixture('tiny-bert', join(dir, 'mismatch'))
    const config = JSON.parse(await readFile(join(d, 'config.json'), 'utf8'))
    await writeFile(join(d, 'config.json'), JSON.stringify({ ...config, intermediate_size: 36 }))
    const err = await failure(exportNative(d, join(d, 'out')))
    expect(err.exitCode).toBe(4)
    expect(err.code).toBe('WEIGHTS_SHAPE_MISMATCH')
    expect(err.message).toMatch(/Weight encoder.layer.0.intermediate.dense.weight has shape \[37, 32\] but config.json \(.*intermediate 36.*\) implies \[36, 32\]/)
    expect(err.hint).toMatch(/config.json and the weights belong to different models/)
    expect(existsSync(join(d, 'out'))).toBe(false)

    await writeFile(join(d, 'config.json'), JSON.stringify({ ...config, vocab_size: 50 }))
    const err2 = await failure(exportNative(d, join(d, 'out')))
    expect(err2.message).toMatch(/word_embeddings.weight has shape \[43, 32\] but .* implies \[50, 32\]/)
  })

  it('text-classification on a checkpoint without a head says so', async () => {
    const err = await failure(exportNative(join(FIXTURES, 'tiny-bert'), join(dir, 'nohead'), { task: 'text-classification' }))
    expect(err.message).toMatch(/no classification head \(classifier.weight\)/)
    const err2 = await failure(exportNative(join(FIXTURES, 'tiny-bert'), join(dir, 'qa'), { task: 'question-answering' }))
    expect(err2.message).toMatch(/Task question-answering is not supported by the native exporter \(supported: feature-extraction, text-classification, sentence-embedding\)/)
  })

  it('an unsupported activation is refused', async () => {
    const d = await copyFixture('tiny-bert', join(dir, 'act'))
    const config = JSON.parse(await readFile(join(d, 'config.json'), 'utf8'))
    await writeFile(join(d, 'config.json'), JSON.stringify({ ...config, hidden_act: 'quick_gelu' }))
    const err = await failure(exportNative(d, join(d, 'out')))
    expect(err.message).toMatch(/Activation "quick_gelu" is not supported/)
  })
})
