/**
 * config.json drives the graph: hidden_act (gelu as erf, gelu_new / gelu_pytorch_tanh / gelu_fast as the
 * tanh form, relu) and layer_norm_eps. The fixtures all use gelu and 1e-12, so the variants are checked
 * against a float64 BERT forward pass written here from transformers' modeling_bert, which is first shown
 * to reproduce the PyTorch reference.json of tiny-bert.
 */
import { readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { exportModel } from '../../src/export/index.js'
import { openCheckpoint, writeSafetensors, type TensorToWrite } from '../../src/export/safetensors.js'
import { copyFixture, FIXTURES, loadReference, maxAbsDiff, referenceFeeds, runOnnx, tempDir, type Reference } from './export-helpers.js'

/** erf by Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7), enough for 1e-4 comparisons. */
function erf(x: number): number {
  const s = Math.sign(x)
  const a = Math.abs(x)
  const t = 1 / (1 + 0.3275911 * a)
  const y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-a * a)
  return s * y
}

const ACTIVATIONS: Record<string, (x: number) => number> = {
  gelu: (x) => 0.5 * x * (1 + erf(x / Math.SQRT2)),
  gelu_new: (x) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3))),
  relu: (x) => Math.max(0, x),
}
ACTIVATIONS.gelu_pytorch_tanh = ACTIVATIONS.gelu_new!
ACTIVATIONS.gelu_fast = ACTIVATIONS.gelu_new!

type Weights = Map<string, Float32Array>

/** BertModel.forward in float64: last_hidden_state [B*S*H] and pooler_output [B*H]. */
function bertForward(config: Record<string, number | string>, w: Weights, ref: Reference): { hidden: number[]; pooled: number[] } {
  const H = config.hidden_size as number
  const heads = config.num_attention_heads as number
  const d = H / heads
  const I = config.intermediate_size as number
  const eps = config.layer_norm_eps as number
  const act = ACTIVATIONS[config.hidden_act as string]!
  const [B, S] = ref.inputs.input_ids!.dims as [number, number]
  const ids = ref.inputs.input_ids!.data
  const types = ref.inputs.token_type_ids!.data
  const mask = ref.inputs.attention_mask!.data
  const W = (n: string): Float32Array => w.get(n)!
  const linear = (x: number[], name: string, out: number, inp: number): number[] => {
    const wt = W(`${name}.weight`)
    const b = W(`${name}.bias`)
    return Array.from({ length: out }, (_, o) => x.reduce((acc, v, i) => acc + v * wt[o * inp + i]!, b[o]!))
  }
  const layerNorm = (x: number[], name: string): number[] => {
    const mean = x.reduce((a, v) => a + v, 0) / x.length
    const variance = x.reduce((a, v) => a + (v - mean) ** 2, 0) / x.length
    const g = W(`${name}.weight`)
    const b = W(`${name}.bias`)
    return x.map((v, i) => ((v - mean) / Math.sqrt(variance + eps)) * g[i]! + b[i]!)
  }
  const hidden: number[] = []
  const pooled: number[] = []
  for (let bi = 0; bi < B; bi++) {
    let x: number[][] = []
    for (let s = 0; s < S; s++) {
      const row = Array.from({ length: H }, (_, k) =>
        W('embeddings.word_embeddings.weight')[ids[bi * S + s]! * H + k]!
        + W('embeddings.position_embeddings.weight')[s * H + k]!
        + W('embeddings.token_type_embeddings.weight')[types[bi * S + s]! * H + k]!)
      x.push(layerNorm(row, 'embeddings.LayerNorm'))
    }
    for (let l = 0; l < (config.num_hidden_layers as number); l++) {
      const p = `encoder.layer.${l}`
      const q = x.map((r) => linear(r, `${p}.attention.self.query`, H, H))
      const k = x.map((r) => linear(r, `${p}.attention.self.key`, H, H))
      const v = x.map((r) => linear(r, `${p}.attention.self.value`, H, H))
      const ctx = x.map(() => new Array<number>(H).fill(0))
      for (let h = 0; h < heads; h++) {
        for (let i = 0; i < S; i++) {
          // (1 - mask) * finfo(float32).min, as transformers' eager attention adds it.
          const scores = Array.from({ length: S }, (_, j) => {
            let dot = 0
            for (let e = 0; e < d; e++) dot += q[i]![h * d + e]! * k[j]![h * d + e]!
            return dot / Math.sqrt(d) + (1 - mask[bi * S + j]!) * -3.4028234663852886e38
          })
          const m = Math.max(...scores)
          const ex = scores.map((sc) => Math.exp(sc - m))
          const z = ex.reduce((a, b) => a + b, 0)
          for (let j = 0; j < S; j++) for (let e = 0; e < d; e++) ctx[i]![h * d + e]! += (ex[j]! / z) * v[j]![h * d + e]!
        }
      }
      const attn = ctx.map((r, i) => layerNorm(linear(r, `${p}.attention.output.dense`, H, H).map((y, e) => y + x[i]![e]!), `${p}.attention.output.LayerNorm`))
      x = attn.map((r) => {
        const inter = linear(r, `${p}.intermediate.dense`, I, H).map(act)
        return layerNorm(linear(inter, `${p}.output.dense`, H, I).map((y, e) => y + r[e]!), `${p}.output.LayerNorm`)
      })
    }
    hidden.push(...x.flat())
    pooled.push(...linear(x[0]!, 'pooler.dense', H, H).map(Math.tanh))
  }
  return { hidden, pooled }
}

async function readWeights(dir: string): Promise<Weights> {
  const ck = await openCheckpoint(dir)
  const w: Weights = new Map()
  for (const name of ck.tensors.keys()) w.set(name, await ck.readFloat32(name))
  await ck.close()
  return w
}

let dir: string
let ref: Reference
let baseConfig: Record<string, number | string>
/** tiny-bert with its intermediate weights scaled up, so activations reach where the GELU forms differ. */
let loud: string
let loudWeights: Weights
beforeAll(async () => {
  dir = await tempDir('variants')
  ref = await loadReference('tiny-bert')
  baseConfig = JSON.parse(await readFile(join(FIXTURES, 'tiny-bert', 'config.json'), 'utf8')) as Record<string, number | string>
  loud = await copyFixture('tiny-bert', join(dir, 'loud'))
  const ck = await openCheckpoint(loud)
  const tensors: Record<string, TensorToWrite> = {}
  for (const [name, info] of ck.tensors) {
    const data = await ck.readFloat32(name)
    tensors[name] = { dtype: 'F32', shape: info.shape, data: /intermediate\.dense\.weight$/.test(name) ? data.map((v) => v * 25) : data }
  }
  await ck.close()
  await writeSafetensors(join(loud, 'model.safetensors'), tensors)
  loudWeights = await readWeights(loud)
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

async function exportWith(name: string, overrides: Record<string, number | string>): Promise<{ hidden: Float32Array; pooled: Float32Array; config: Record<string, number | string> }> {
  const d = join(dir, name)
  await copyFixture('tiny-bert', d)
  const src = join(d, 'tiny-bert')
  await writeFile(join(src, 'model.safetensors'), await readFile(join(loud, 'model.safetensors')))
  const config = { ...baseConfig, ...overrides }
  await writeFile(join(src, 'config.json'), JSON.stringify(config))
  await exportModel({ model: src, out: join(d, 'out'), exporter: 'native' })
  const got = await runOnnx(join(d, 'out', 'model.onnx'), referenceFeeds(ref))
  return { hidden: got.last_hidden_state!.data, pooled: got.pooler_output!.data, config }
}

describe('config-driven activation and LayerNorm epsilon', () => {
  it('the float64 forward pass used as the oracle reproduces the PyTorch reference.json', async () => {
    const w = await readWeights(join(FIXTURES, 'tiny-bert'))
    const js = bertForward(baseConfig, w, ref)
    expect(maxAbsDiff(js.hidden, ref.outputs.last_hidden_state!.data)).toBeLessThan(1e-4)
    expect(maxAbsDiff(js.pooled, ref.outputs.pooler_output!.data)).toBeLessThan(1e-4)
  })

  const variants: [string, Record<string, number | string>][] = [
    ['gelu', {}],
    ['gelu_new', { hidden_act: 'gelu_new' }],
    ['gelu_pytorch_tanh', { hidden_act: 'gelu_pytorch_tanh' }],
    ['gelu_fast', { hidden_act: 'gelu_fast' }],
    ['relu', { hidden_act: 'relu' }],
    ['layer_norm_eps 1e-2', { layer_norm_eps: 1e-2 }],
  ]
  for (const [name, overrides] of variants) {
    it(`${name}: the export follows config.json (and differs measurably from the other settings)`, async () => {
      const { hidden, pooled, config } = await exportWith(name.replace(/\W+/g, '-'), overrides)
      const want = bertForward(config, loudWeights, ref)
      // The export agrees with the oracle to ~1e-6 (float32 vs float64).
      expect(maxAbsDiff(hidden, want.hidden), 'last_hidden_state').toBeLessThan(1e-5)
      expect(maxAbsDiff(pooled, want.pooled), 'pooler_output').toBeLessThan(1e-5)
      // Sensitivity: had the exporter ignored the setting (plain gelu, eps 1e-12), it would be off by more
      // than 5e-5 (the tanh form is the closest: ~1.2e-4 on these weights).
      if (Object.keys(overrides).length > 0) {
        const plain = bertForward(baseConfig, loudWeights, ref)
        expect(maxAbsDiff(plain.hidden, want.hidden)).toBeGreaterThan(5e-5)
      }
    })
  }
})
