/** validate for decoders: prefill, cached decode and greedy against PyTorch (reference.json) or another ONNX model. */
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { validateDecoder } from '../../src/validate/decoder-check.js'
import { repoRoot } from '../helpers/store-helpers.js'

const DECODERS = ['tiny-llama', 'tiny-qwen2', 'tiny-gpt2'] as const
const dirOf = (name: string) => join(repoRoot, 'fixtures', 'hf-tiny-decoders', name)
let dir: string
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'mf-decoder-check-'))
})
afterAll(() => {
  rmSync(dir, { recursive: true, force: true })
})

describe('validateDecoder', () => {
  it.each(DECODERS)('%s: prefill and decode logits within 1e-4 of PyTorch, greedy tokens identical', async (name) => {
    const r = await validateDecoder({ candidate: join(dirOf(name), 'model.onnx'), reference: join(dirOf(name), 'reference.json') })
    expect(r.passed).toBe(true)
    expect(r.steps.map((s) => s.name)).toEqual(['prefill', 'decode'])
    for (const s of r.steps) {
      expect(s.maxAbsErr, s.name).toBeLessThan(1e-4)
      expect(s.compared).toBeGreaterThan(0)
    }
    expect(r.greedy).toMatchObject({ firstDivergence: null, passed: true })
  })

  it('only the positions the mask keeps count: the prefill compares 11 of 14 positions of the padded batch', async () => {
    const r = await validateDecoder({ candidate: join(dirOf('tiny-llama'), 'model.onnx'), reference: join(dirOf('tiny-llama'), 'reference.json') })
    // tiny-llama's prefill: rows of 7 and 4 real tokens (3 pads), vocabulary 300; the decode: 2 rows of 1.
    expect(r.steps.map((s) => s.compared)).toEqual([11 * 300, 2 * 300])
  })

  it('a reference from another model fails each step and names the first diverging token', async () => {
    const ref = JSON.parse(readFileSync(join(dirOf('tiny-llama'), 'reference.json'), 'utf8'))
    ref.greedy.sequence[ref.greedy.prompt.length + 3] = (ref.greedy.sequence[ref.greedy.prompt.length + 3] + 1) % 300
    ref.decode.outputs.logits.data[0] += 0.5
    writeFileSync(join(dir, 'off.json'), JSON.stringify(ref))
    const r = await validateDecoder({ candidate: join(dirOf('tiny-llama'), 'model.onnx'), reference: join(dir, 'off.json') })
    expect(r.passed).toBe(false)
    expect(r.steps.find((s) => s.name === 'prefill')!.passed).toBe(true)
    expect(r.steps.find((s) => s.name === 'decode')).toMatchObject({ passed: false })
    expect(r.steps.find((s) => s.name === 'decode')!.maxAbsErr).toBeCloseTo(0.5, 3)
    expect(r.greedy).toMatchObject({ firstDivergence: ref.greedy.prompt.length + 3, passed: false })
  })

  it('against another ONNX model: itself passes; one of another vocabulary cannot be compared (exit 2)', async () => {
    const model = join(dirOf('tiny-qwen2'), 'model.onnx')
    const same = await validateDecoder({ candidate: model, reference: model })
    expect(same).toMatchObject({ referenceKind: 'onnx', passed: true })
    expect(same.steps.every((s) => s.maxAbsErr === 0)).toBe(true)
    // tiny-llama's vocabulary is 300, tiny-qwen2's 320: the logits have other shapes.
    const other = join(dir, 'other.onnx')
    copyFileSync(join(dirOf('tiny-llama'), 'model.onnx'), other)
    await expect(validateDecoder({ candidate: model, reference: other })).rejects.toMatchObject({ exitCode: 2 })
  })

  it('a reference without its decoder parts is exit 2, saying what it needs', async () => {
    writeFileSync(join(dir, 'plain.json'), JSON.stringify({ inputs: {}, outputs: {} }))
    await expect(validateDecoder({ candidate: join(dirOf('tiny-gpt2'), 'model.onnx'), reference: join(dir, 'plain.json') })).rejects.toMatchObject({ code: 'REFERENCE_INVALID', exitCode: 2, message: expect.stringContaining('has no "prefill"') })
    await expect(validateDecoder({ candidate: join(dirOf('tiny-gpt2'), 'model.onnx'), reference: join(dir, 'absent.json') })).rejects.toMatchObject({ exitCode: 6 })
  })
})
