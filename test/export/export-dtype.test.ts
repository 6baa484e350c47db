/**
 * `export --dtype fp16` (issue 13): the native exporter writes the weights in fp16 as they stream from the
 * checkpoint, the interface stays float32, and the result is held to 1e-2 of the fp32 export (decoders on
 * prefill, cached decode and greedy tokens; encoders on their outputs). Other exporters refuse it before
 * anything is written.
 */
import { readdir, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { exportModel } from '../../src/export/index.js'
import { inspectModel } from '../../src/onnx/inspect.js'
import { validateDecoder } from '../../src/validate/decoder-check.js'
import { repoRoot } from '../helpers/store-helpers.js'
import { copyFixture, expectFailure, loadReference, maxAbsDiff, referenceFeeds, runOnnx, tempDir } from './export-helpers.js'

const DECODERS = join(repoRoot, 'fixtures', 'hf-tiny-decoders')
let dir: string
beforeAll(async () => {
  dir = await tempDir('dtype')
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

/** The share of the model's floating-point weights stored as float16. */
async function fp16Share(model: string): Promise<number> {
  const { dtypes } = (await inspectModel(model)).parameters
  return (dtypes.float16 ?? 0) / ((dtypes.float16 ?? 0) + (dtypes.float32 ?? 0))
}

describe('export --dtype fp16, decoders', () => {
  it.each(['tiny-llama', 'tiny-qwen2', 'tiny-gpt2'])('%s: within 1e-2 of the fp32 export, same greedy tokens, weights stored in fp16', async (name) => {
    const fp32 = join(dir, `${name}-fp32`)
    const fp16 = join(dir, `${name}-fp16`)
    await exportModel({ model: join(DECODERS, name), out: fp32, exporter: 'native' })
    const result = await exportModel({ model: join(DECODERS, name), out: fp16, exporter: 'native', dtype: 'fp16' })
    expect(result.dtype).toBe('fp16')
    // The interface does not change: a caller feeds and reads float32 whatever the dtype.
    expect(result.inputs.find((i) => i.name === 'past_key_values.0.key')!.dtype).toBe('float32')
    expect(result.outputs.find((o) => o.name === 'logits')!.dtype).toBe('float32')
    expect(await fp16Share(join(fp16, 'model.onnx'))).toBeGreaterThan(0.99)
    const [big, small] = await Promise.all([stat(join(fp32, 'model.onnx')), stat(join(fp16, 'model.onnx'))])
    expect(small.size).toBeLessThan(0.6 * big.size)

    const r = await validateDecoder({ candidate: join(fp16, 'model.onnx'), reference: join(fp32, 'model.onnx'), precision: 'fp16' })
    for (const s of r.steps) {
      expect(s.maxAbsErr, s.name).toBeLessThan(1e-2)
      expect(s.maxAbsErr, `${s.name}: fp16 is not fp32`).toBeGreaterThan(1e-6)
    }
    expect(r.greedy.firstDivergence).toBeNull()
    expect((await validateDecoder({ candidate: join(fp16, 'model.onnx'), reference: join(DECODERS, name, 'reference.json'), precision: 'fp16' })).passed).toBe(true)
  })
})

describe('export --dtype fp16, encoders', () => {
  it('tiny-bert: every output within 1e-2 of PyTorch', async () => {
    const src = await copyFixture('tiny-bert', join(dir, 'src'))
    const out = join(dir, 'bert-fp16')
    const result = await exportModel({ model: src, out, exporter: 'native', dtype: 'fp16' })
    expect(result.dtype).toBe('fp16')
    expect(await fp16Share(join(out, 'model.onnx'))).toBeGreaterThan(0.99)
    const ref = await loadReference('tiny-bert')
    const got = await runOnnx(join(out, 'model.onnx'), referenceFeeds(ref))
    for (const [k, want] of Object.entries(ref.outputs)) {
      expect(got[k]!.dims, k).toEqual(want.dims)
      expect(maxAbsDiff(got[k]!.data, want.data), k).toBeLessThan(1e-2)
    }
  })
})

describe('export --dtype refusals', () => {
  it.each(['optimum', 'repo'] as const)('--exporter %s --dtype fp16: exit 2 before anything is written', async (exporter) => {
    const src = await copyFixture('tiny-bert', join(dir, `src-${exporter}`), true)
    const out = join(dir, `refused-${exporter}`)
    const err = await expectFailure(exportModel({ model: src, out, exporter, dtype: 'fp16', optimumCli: '/nonexistent/optimum-cli' }))
    expect(err).toMatchObject({ code: 'EXPORT_DTYPE_UNSUPPORTED', exitCode: 2 })
    expect(err.hint).toMatch(/quantize --precision fp16/)
    expect(await readdir(out).catch(() => [])).toEqual([])
  })
})
