/**
 * Acceptance 3: a sentence-transformers layout built from a tiny checkpoint exports a sentence_embedding
 * equal to the normalized masked mean of last_hidden_state (from a plain feature-extraction export of the
 * same weights), within 1e-5; plus CLS, max and concatenated pooling, and the layout errors.
 */
import { mkdir, rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { exportModel } from '../../src/export/index.js'
import { type ModelforgeError } from '../../src/lib/errors.js'
import { copyFixture, loadReference, maxAbsDiff, referenceFeeds, runOnnx, tempDir, type Reference } from './export-helpers.js'

let dir: string
let ref: Reference
let hidden: { dims: number[]; data: Float32Array }
beforeAll(async () => {
  dir = await tempDir('st')
  ref = await loadReference('tiny-bert')
  const plain = join(dir, 'plain')
  await exportModel({ model: await copyFixture('tiny-bert', join(dir, 'src')), out: plain, task: 'feature-extraction' })
  hidden = (await runOnnx(join(plain, 'model.onnx'), referenceFeeds(ref))).last_hidden_state!
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

const MODULES = [
  { idx: 0, name: '0', path: '', type: 'sentence_transformers.models.Transformer' },
  { idx: 1, name: '1', path: '1_Pooling', type: 'sentence_transformers.models.Pooling' },
  { idx: 2, name: '2', path: '2_Normalize', type: 'sentence_transformers.models.Normalize' },
]

async function stLayout(name: string, pooling: Record<string, boolean>, normalize: boolean, modules = MODULES): Promise<string> {
  const d = await copyFixture('tiny-bert', join(dir, name))
  await writeFile(join(d, 'modules.json'), JSON.stringify(normalize ? modules : modules.slice(0, 2)))
  await mkdir(join(d, '1_Pooling'))
  await writeFile(join(d, '1_Pooling', 'config.json'), JSON.stringify({
    word_embedding_dimension: 32,
    pooling_mode_cls_token: false,
    pooling_mode_mean_tokens: false,
    pooling_mode_max_tokens: false,
    pooling_mode_mean_sqrt_len_tokens: false,
    pooling_mode_weightedmean_tokens: false,
    pooling_mode_lasttoken: false,
    include_prompt: true,
    ...pooling,
  }))
  if (normalize) await mkdir(join(d, '2_Normalize'))
  await writeFile(join(d, 'sentence_bert_config.json'), JSON.stringify({ max_seq_length: 64, do_lower_case: false }))
  return d
}

/** sentence-transformers' Pooling on the reference batch, computed here in plain JS. */
function pool(mode: 'mean' | 'cls' | 'max', normalize: boolean): number[][] {
  const [batch, seq, h] = hidden.dims as [number, number, number]
  const mask = ref.inputs.attention_mask!.data
  const rows: number[][] = []
  for (let b = 0; b < batch; b++) {
    let v = new Array<number>(h).fill(mode === 'max' ? -Infinity : 0)
    let count = 0
    for (let s = 0; s < seq; s++) {
      const m = mask[b * seq + s]!
      count += m
      for (let k = 0; k < h; k++) {
        const x = hidden.data[(b * seq + s) * h + k]!
        if (mode === 'mean') v[k]! += x * m
        else if (mode === 'max') v[k] = Math.max(v[k]!, m ? x : -1e9)
        else if (s === 0) v[k] = x
      }
    }
    if (mode === 'mean') v = v.map((x) => x / Math.max(count, 1e-9))
    if (normalize) {
      const norm = Math.sqrt(v.reduce((a, x) => a + x * x, 0))
      v = v.map((x) => x / Math.max(norm, 1e-12))
    }
    rows.push(v)
  }
  return rows
}

describe('acceptance 3: sentence-transformers layouts', () => {
  it('mean pooling + Normalize: sentence_embedding == normalized masked mean of last_hidden_state (1e-5)', async () => {
    const d = await stLayout('mean', { pooling_mode_mean_tokens: true }, true)
    const result = await exportModel({ model: d, out: join(d, 'out') })
    expect(result).toMatchObject({ exporter: 'native', task: 'sentence-embedding' })
    expect(result.outputs.map((o) => [o.name, o.shape])).toEqual([
      ['token_embeddings', ['batch_size', 'sequence_length', 32]],
      ['sentence_embedding', ['batch_size', 32]],
    ])
    const got = await runOnnx(join(d, 'out', 'model.onnx'), referenceFeeds(ref))
    expect(got.sentence_embedding!.dims).toEqual([3, 32])
    expect(maxAbsDiff(got.sentence_embedding!.data, pool('mean', true).flat())).toBeLessThan(1e-5)
    expect(maxAbsDiff(got.token_embeddings!.data, hidden.data)).toBe(0)
    for (let b = 0; b < 3; b++) {
      const row = got.sentence_embedding!.data.slice(b * 32, b * 32 + 32)
      expect(Math.sqrt(row.reduce((a, x) => a + x * x, 0))).toBeCloseTo(1, 5)
    }
    expect(result.files.map((f) => f.path)).toEqual(expect.arrayContaining(['modules.json', '1_Pooling/config.json', 'sentence_bert_config.json']))
  })

  it('CLS pooling without Normalize, and max pooling', async () => {
    const cls = await stLayout('cls', { pooling_mode_cls_token: true }, false)
    await exportModel({ model: cls, out: join(cls, 'out') })
    const a = await runOnnx(join(cls, 'out', 'model.onnx'), referenceFeeds(ref))
    expect(maxAbsDiff(a.sentence_embedding!.data, pool('cls', false).flat())).toBeLessThan(1e-6)

    const max = await stLayout('max', { pooling_mode_max_tokens: true }, true)
    await exportModel({ model: max, out: join(max, 'out'), opset: 18 })
    const b = await runOnnx(join(max, 'out', 'model.onnx'), referenceFeeds(ref))
    expect(maxAbsDiff(b.sentence_embedding!.data, pool('max', true).flat())).toBeLessThan(1e-5)
  })

  it('several modes concatenate in sentence-transformers order (cls, max, mean)', async () => {
    const d = await stLayout('concat', { pooling_mode_mean_tokens: true, pooling_mode_cls_token: true }, false)
    const result = await exportModel({ model: d, out: join(d, 'out') })
    expect(result.outputs.find((o) => o.name === 'sentence_embedding')!.shape).toEqual(['batch_size', 64])
    const got = await runOnnx(join(d, 'out', 'model.onnx'), referenceFeeds(ref))
    const cls = pool('cls', false)
    const mean = pool('mean', false)
    expect(maxAbsDiff(got.sentence_embedding!.data, cls.flatMap((row, b) => [...row, ...mean[b]!]))).toBeLessThan(1e-5)
  })

  it('refuses modules the native exporter cannot write, pointing at optimum', async () => {
    const dense = [...MODULES.slice(0, 2), { idx: 2, name: '2', path: '2_Dense', type: 'sentence_transformers.models.Dense' }]
    const d = await stLayout('dense', { pooling_mode_mean_tokens: true }, true, dense)
    const err = (await exportModel({ model: d, out: join(d, 'out') }).catch((e: unknown) => e)) as ModelforgeError
    expect(err.exitCode).toBe(2)
    expect(err.message).toMatch(/module type\(s\) Dense are not supported/)
    expect(err.hint).toMatch(/--exporter optimum/)

    const last = await stLayout('lasttoken', { pooling_mode_lasttoken: true }, false)
    await expect(exportModel({ model: last, out: join(last, 'out') })).rejects.toThrow(/pooling_mode_lasttoken is not supported/)
  })

  it('old layouts with the transformer in 0_Transformer/ read config and weights from there', async () => {
    const d = join(dir, 'old-layout')
    await copyFixture('tiny-bert', join(d))
    await rename(join(d, 'tiny-bert'), join(d, '0_Transformer'))
    const modules = [{ ...MODULES[0], path: '0_Transformer' }, MODULES[1]]
    await writeFile(join(d, 'modules.json'), JSON.stringify(modules))
    await mkdir(join(d, '1_Pooling'))
    await writeFile(join(d, '1_Pooling', 'config.json'), JSON.stringify({ pooling_mode_mean_tokens: true }))
    const result = await exportModel({ model: d, out: join(d, 'out') })
    expect(result).toMatchObject({ exporter: 'native', task: 'sentence-embedding', modelType: 'bert' })
    expect(result.files.map((f) => f.path)).toEqual(expect.arrayContaining(['config.json', 'vocab.txt', 'modules.json', '1_Pooling/config.json']))
    const got = await runOnnx(join(d, 'out', 'model.onnx'), referenceFeeds(ref))
    expect(maxAbsDiff(got.sentence_embedding!.data, pool('mean', false).flat())).toBeLessThan(1e-5)
  })

  it('--task feature-extraction on a sentence-transformers repo exports the plain encoder', async () => {
    const d = await stLayout('plain-task', { pooling_mode_mean_tokens: true }, true)
    const result = await exportModel({ model: d, out: join(d, 'out'), task: 'feature-extraction' })
    expect(result.outputs.map((o) => o.name)).toEqual(['last_hidden_state', 'pooler_output'])
  })
})
