/**
 * fp16 for decoders through the precision transform (issue 13, acceptance 4): the native export of every
 * fixture decoder converted by quantizeModel, held to 1e-2 of the fp32 model on prefill and cached decode,
 * with the same greedy tokens; the inputs the transform generates for a decoder are a prefill.
 */
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { exportModel } from '../../src/export/index.js'
import { validateDecoder } from '../../src/validate/decoder-check.js'
import { generateInputs } from '../../src/validate/inputs.js'
import { quantizeModel } from '../../src/validate/quantize.js'
import { repoRoot } from '../helpers/store-helpers.js'
import { tempDir } from '../export/export-helpers.js'

const FIXTURES = join(repoRoot, 'fixtures', 'hf-tiny-decoders')
let dir: string
beforeAll(async () => {
  dir = await tempDir('fp16-decoder')
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

describe('fp16 decoders', () => {
  it.each(['tiny-llama', 'tiny-qwen2', 'tiny-gpt2'])('%s: logits within 1e-2 of fp32, greedy tokens identical, most of the graph in fp16', async (name) => {
    const out = join(dir, name)
    await exportModel({ model: join(FIXTURES, name), out, exporter: 'native' })
    const q = await quantizeModel({ model: join(out, 'model.onnx'), precision: 'fp16', out: join(out, 'model.fp16.onnx') })
    expect(q.accuracy.passed).toBe(true)
    // Only the additive mask (float32 min) and what adds it to the scores stay in fp32.
    expect(q.fp16!.convertedNodes).toBeGreaterThan(0.9 * (q.fp16!.convertedNodes + q.fp16!.kept.length))
    for (const k of q.fp16!.kept) expect(['Where', 'Unsqueeze', 'Add', 'Softmax']).toContain(k.opType)
    const r = await validateDecoder({ candidate: join(out, 'model.fp16.onnx'), reference: join(out, 'model.onnx'), precision: 'fp16' })
    expect(r.atol).toBe(1e-2)
    for (const s of r.steps) {
      expect(s.maxAbsErr, s.name).toBeLessThan(1e-2)
      // fp16 is not fp32: the check would see a model that was left in fp32.
      expect(s.maxAbsErr, s.name).toBeGreaterThan(1e-6)
    }
    expect(r.greedy.firstDivergence).toBeNull()
    // And against PyTorch's own reference.
    expect((await validateDecoder({ candidate: join(out, 'model.fp16.onnx'), reference: join(FIXTURES, name, 'reference.json'), precision: 'fp16' })).passed).toBe(true)
  })

  it('generated inputs for a decoder are a prefill: an empty past, the mask as long as the sequence', () => {
    const inputs = generateInputs([
      { name: 'input_ids', dtype: 'int64', shape: ['batch_size', 'sequence_length'], isTensor: true },
      { name: 'attention_mask', dtype: 'int64', shape: ['batch_size', 'past_sequence_length + sequence_length'], isTensor: true },
      { name: 'position_ids', dtype: 'int64', shape: ['batch_size', 'sequence_length'], isTensor: true },
      { name: 'past_key_values.0.key', dtype: 'float32', shape: ['batch_size', 2, 'past_sequence_length', 8], isTensor: true },
      // torch.onnx names the past axis as it likes: the axis counts, not its name.
      { name: 'past_key_values.0.value', dtype: 'float32', shape: ['b', 2, 'p', 8], isTensor: true },
    ], { samples: 3, sequenceLength: 9 })
    expect(inputs.input_ids!.dims).toEqual([3, 9])
    expect(inputs.attention_mask!.dims).toEqual([3, 9])
    expect(inputs['past_key_values.0.key']!.dims).toEqual([3, 2, 0, 8])
    expect(inputs['past_key_values.0.value']!.dims).toEqual([3, 2, 0, 8])
    expect(Array.from(inputs.position_ids!.data as BigInt64Array, Number).slice(0, 9)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8])
  })
})
