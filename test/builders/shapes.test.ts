/**
 * planShapes: the optimization profile from a model's inputs. The models are real fixtures, read through
 * onnxruntime (src/validate) as the build reads them, with their config.json limits (modelHints).
 */
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { planShapes, type ModelInput } from '../../src/builders/shapes.js'
import { modelHints } from '../../src/validate/inputs.js'
import { withModel } from '../../src/validate/runtime.js'
import { repoRoot } from '../helpers/store-helpers.js'

const fixture = (p: string): string => join(repoRoot, 'fixtures', p)
const inputsOf = (p: string): Promise<ModelInput[]> => withModel(fixture(p), async (m) => m.inputs)

function usageError(fn: () => unknown): { exitCode: number; code: string; message: string; hint: string } {
  try {
    fn()
  } catch (err) {
    return err as { exitCode: number; code: string; message: string; hint: string }
  }
  throw new Error('expected an error')
}

describe('planShapes', () => {
  it('a BERT export: batch 1:8:32 and sequence 1:min(128, max positions):max positions, the same for every input', async () => {
    const inputs = await inputsOf('hf-tiny/tiny-bert/model.onnx')
    const { maxPositions } = await modelHints(fixture('hf-tiny/tiny-bert/model.onnx'))
    expect(maxPositions).toBe(64)
    const plan = planShapes(inputs, { maxPositions })
    const range = { min: [1, 1], opt: [8, 64], max: [32, 64] }
    expect(plan.profile).toEqual({ input_ids: range, attention_mask: range, token_type_ids: range })
    expect(plan.inference).toEqual({ input_ids: [8, 64], attention_mask: [8, 64], token_type_ids: [8, 64] })
  })

  it('the opt sequence is 128 when the model takes more, and --batch/--seq replace the defaults', async () => {
    const inputs = await inputsOf('hf-tiny/tiny-roberta/model.onnx')
    expect(planShapes(inputs, { maxPositions: 512 }).profile.input_ids).toEqual({ min: [1, 1], opt: [8, 128], max: [32, 512] })
    const plan = planShapes(inputs, { batch: '2:4:16', seq: '8:16:32', maxPositions: 39 })
    expect(plan.profile.attention_mask).toEqual({ min: [2, 8], opt: [4, 16], max: [16, 32] })
    // One number fixes the size: min = opt = max.
    expect(planShapes(inputs, { batch: '1', seq: '16', maxPositions: 39 }).profile.input_ids).toEqual({ min: [1, 16], opt: [1, 16], max: [1, 16] })
  })

  it('a static model has an empty profile, and its ranges are still checked', async () => {
    const inputs = await inputsOf('polygraphy/identity.onnx')
    expect(planShapes(inputs, {})).toEqual({ profile: {}, inference: {} })
    expect(usageError(() => planShapes(inputs, { batch: '8:1:32' })).code).toBe('INVALID_SHAPE_RANGE')
  })

  it('a dynamic dim at index 0 is batch whatever its name; fixed dims stay as they are', async () => {
    const inputs = await inputsOf('polygraphy/dim_param.onnx') // Input:0 [dim0, 16, 128]
    expect(planShapes(inputs, {}).profile).toEqual({ 'Input:0': { min: [1, 16, 128], opt: [8, 16, 128], max: [32, 16, 128] } })
  })

  it('unknown dims (?, -1, 0): index 0 is batch, index 1 of an integer input is sequence', () => {
    const inputs: ModelInput[] = [
      { name: 'ids', dtype: 'int64', shape: ['?', -1] },
      { name: 'mask', dtype: 'int32', shape: [0, '?'] },
      { name: 'pixels', dtype: 'float32', shape: [-1, 3, 32, 32] },
    ]
    expect(planShapes(inputs, { maxPositions: 256 }).profile).toEqual({
      ids: { min: [1, 1], opt: [8, 128], max: [32, 256] },
      mask: { min: [1, 1], opt: [8, 128], max: [32, 256] },
      pixels: { min: [1, 3, 32, 32], opt: [8, 3, 32, 32], max: [32, 3, 32, 32] },
    })
  })

  it('dims are known by their names (batch_size, N, seq_len, tokens, past_sequence_length), and one name keeps one kind', () => {
    const inputs: ModelInput[] = [
      { name: 'a', dtype: 'float32', shape: [7, 'batch_size', 'seq_len'] },
      { name: 'b', dtype: 'float32', shape: ['N', 'tokens', 'past_sequence_length'] },
      // "d0" is batch where it is first seen (index 0), so at index 1 of an integer input it is batch too.
      { name: 'c', dtype: 'float32', shape: ['d0', 4] },
      { name: 'd', dtype: 'int64', shape: [2, 'd0'] },
    ]
    const p = planShapes(inputs, { maxPositions: 64 }).profile
    expect(p.a).toEqual({ min: [7, 1, 1], opt: [7, 8, 64], max: [7, 32, 64] })
    expect(p.b).toEqual({ min: [1, 1, 1], opt: [8, 64, 64], max: [32, 64, 64] })
    expect(p.d).toEqual({ min: [2, 1], opt: [2, 8], max: [2, 32] })
  })

  it('another named dynamic dim needs its range: SHAPE_RANGE_REQUIRED naming the input, the dim and --dim; with dims it builds', async () => {
    const inputs = await inputsOf('polygraphy/dynamic_identity.onnx') // X [1, 2, height, width]
    const err = usageError(() => planShapes(inputs, {}))
    expect(err).toMatchObject({ exitCode: 2, code: 'SHAPE_RANGE_REQUIRED' })
    expect(err.message).toBe('Input "X" has the dynamic dimension "height" at index 2, which is neither a batch nor a sequence dimension: modelforge cannot choose its range')
    expect(err.hint).toBe('Give its range with --dim height=min:opt:max, or export the model with that dimension fixed.')
    const plan = planShapes(inputs, { dims: { height: '4:8:16', width: '4' } })
    expect(plan.profile.X).toEqual({ min: [1, 2, 4, 4], opt: [1, 2, 8, 4], max: [1, 2, 16, 4] })
    expect(plan.inference.X).toEqual([1, 2, 8, 4])
  })

  it('an unnamed dynamic dim that is neither batch nor sequence cannot be given by name: export it fixed', () => {
    const err = usageError(() => planShapes([{ name: 'img', dtype: 'float32', shape: [1, 3, -1, 8] }], {}))
    expect(err.message).toMatch(/Input "img" has an unnamed dynamic dimension at index 2/)
    expect(err.hint).toMatch(/^Export the model with that dimension fixed/)
  })

  it('a sequence dim without a known maximum and without --seq: SHAPE_RANGE_REQUIRED asking for --seq', () => {
    const err = usageError(() => planShapes([{ name: 'input_ids', dtype: 'int64', shape: ['batch', 'sequence'] }], {}))
    expect(err).toMatchObject({ exitCode: 2, code: 'SHAPE_RANGE_REQUIRED' })
    expect(err.message).toMatch(/Input "input_ids" has a dynamic sequence dimension \(index 1\), and the model's maximum sequence length is unknown/)
    expect(err.hint).toMatch(/Pass --seq min:opt:max/)
    expect(planShapes([{ name: 'input_ids', dtype: 'int64', shape: ['batch', 'sequence'] }], { seq: '1:16:32' }).profile.input_ids.max).toEqual([32, 32])
  })

  it.each([
    ['--batch', { batch: '1:8' }, /--batch "1:8" is not a shape range: it needs three numbers separated by ":"/],
    ['--batch', { batch: '0:8:32' }, /every number must be a whole number of at least 1/],
    ['--batch', { batch: '1:8:x' }, /every number must be a whole number of at least 1/],
    ['--batch', { batch: '1.5:2:4' }, /every number must be a whole number of at least 1/],
    ['--seq', { seq: '1:256:128' }, /--seq "1:256:128" is not a shape range: min <= opt <= max does not hold \(1, 256, 128\)/],
    ['--dim', { dims: { height: '8:4:16' } }, /--dim height "8:4:16" is not a shape range/],
  ] as const)('a bad %s range is INVALID_SHAPE_RANGE (exit 2), before any build', (_flag, o, message) => {
    const err = usageError(() => planShapes([], o))
    expect(err).toMatchObject({ exitCode: 2, code: 'INVALID_SHAPE_RANGE' })
    expect(err.message).toMatch(message)
    expect(err.hint).toMatch(/min:opt:max of positive integers with min <= opt <= max, e\.g\. --/)
  })

  it('a --seq maximum beyond the positions the model takes is refused', async () => {
    const inputs = await inputsOf('hf-tiny/tiny-bert/model.onnx')
    const err = usageError(() => planShapes(inputs, { seq: '1:32:128', maxPositions: 64 }))
    expect(err).toMatchObject({ exitCode: 2, code: 'INVALID_SHAPE_RANGE' })
    expect(err.message).toBe('--seq 1:32:128 goes beyond the 64 positions the model takes (max_position_embeddings)')
    expect(err.hint).toBe('Keep the sequence maximum at 64 or below, e.g. --seq 1:64:64.')
  })
})

describe('planShapes for decoders', () => {
  // torch.onnx names the dims as it likes (the fixture's export): the past is axis 2 of the cache inputs.
  const torchNamed: ModelInput[] = [
    { name: 'input_ids', dtype: 'int64', shape: ['b', 's'] },
    { name: 'attention_mask', dtype: 'int64', shape: ['b', 't'] },
    { name: 'position_ids', dtype: 'int64', shape: ['b', 's'] },
    { name: 'past_key_values.0.key', dtype: 'float32', shape: ['b', 2, 'p', 8] },
    { name: 'past_key_values.0.value', dtype: 'float32', shape: ['b', 2, 'p', 8] },
  ]

  it('the past takes --past (0 allowed), the mask past + seq, and the inference shapes are a prefill', () => {
    const plan = planShapes(torchNamed, { batch: '1:1:2', seq: '1:8:32', past: '0:16:64', maxPositions: 128 })
    expect(plan.profile['past_key_values.0.key']).toEqual({ min: [1, 2, 0, 8], opt: [1, 2, 16, 8], max: [2, 2, 64, 8] })
    expect(plan.profile.attention_mask).toEqual({ min: [1, 1], opt: [1, 24], max: [2, 96] })
    expect(plan.inference).toEqual({ input_ids: [1, 8], attention_mask: [1, 8], position_ids: [1, 8], 'past_key_values.0.key': [1, 2, 0, 8], 'past_key_values.0.value': [1, 2, 0, 8] })
  })

  it('a past that starts above 0 makes the prefill start after it', () => {
    const plan = planShapes(torchNamed, { batch: '1', seq: '1:8:32', past: '4:16:64', maxPositions: 128 })
    expect(plan.inference).toMatchObject({ attention_mask: [1, 12], 'past_key_values.0.key': [1, 2, 4, 8] })
  })

  it('without a known maximum the past defaults from --seq, and mask sums are not capped', () => {
    const plan = planShapes(torchNamed, { batch: '1', seq: '1:8:32' })
    expect(plan.profile['past_key_values.0.key']).toEqual({ min: [1, 2, 0, 8], opt: [1, 2, 16, 8], max: [1, 2, 32, 8] })
    expect(plan.profile.attention_mask).toEqual({ min: [1, 1], opt: [1, 24], max: [1, 64] })
  })

  it('--past "a:b" or with negative numbers is refused (exit 2)', () => {
    for (const past of ['0:8', '-1:2:4', 'x']) expect(() => planShapes(torchNamed, { past, maxPositions: 128 }), past).toThrow(/--past .* is not a shape range/)
  })
})
