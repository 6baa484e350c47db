import { mkdtemp, writeFile, rm, mkdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { GraphBuilder } from '../../src/onnx/graph-builder.js'
import { DataType, encodeModel } from '../../src/onnx/proto.js'
import { IntegrityError, NotFoundError, UsageError } from '../../src/lib/errors.js'
import { closeModel, loadModel, runModel, withModel } from '../../src/validate/runtime.js'
import { prng } from '../../src/lib/random.js'
import { generateInputs, modelHints, resolveShape } from '../../src/validate/inputs.js'
import { fromValues, toFloat64 } from '../../src/validate/tensors.js'

const BERT = 'fixtures/hf-tiny/tiny-bert/model.onnx'

function addModel(elem: number = DataType.FLOAT): Uint8Array {
  const g = new GraphBuilder()
  g.input('a', elem, ['batch', 3])
  g.input('b', elem, ['batch', 3])
  g.node('Add', ['a', 'b'], ['sum'])
  g.output('sum', elem, ['batch', 3])
  return encodeModel(g.toModel())
}

let dir: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mf-runtime-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

describe('loadModel', () => {
  it('reads input and output metadata with symbolic dims', async () => {
    const m = await loadModel(BERT)
    try {
      expect(m.inputs.map((i) => i.name)).toEqual(['input_ids', 'attention_mask', 'token_type_ids'])
      expect(m.inputs[0]).toEqual({ name: 'input_ids', dtype: 'int64', shape: ['batch', 'sequence'], isTensor: true })
      expect(m.outputs[0]).toEqual({ name: 'last_hidden_state', dtype: 'float32', shape: ['batch', 'sequence', 32], isTensor: true })
    } finally {
      await closeModel(m)
    }
  })

  it('loads from bytes', async () => {
    await withModel(addModel(), async (m) => {
      expect(m.source).toBe('model bytes')
      const out = await runModel(m, {
        a: fromValues('float32', [1, 3], [1, 2, 3]),
        b: fromValues('float32', [1, 3], [10, 20, 30]),
      })
      expect(out.sum.dims).toEqual([1, 3])
      expect([...(out.sum.data as Float32Array)]).toEqual([11, 22, 33])
    })
  })

  it('refuses a missing file with exit 6', async () => {
    await expect(loadModel(join(dir, 'nope.onnx'))).rejects.toSatisfy((e: unknown) => e instanceof NotFoundError && e.exitCode === 6)
  })

  it('refuses a directory with a usage error', async () => {
    await expect(loadModel(dir)).rejects.toBeInstanceOf(UsageError)
  })

  it('refuses garbage bytes with exit 4 and a hint', async () => {
    const p = join(dir, 'garbage.onnx')
    await writeFile(p, Buffer.from('this is not a model'))
    const err = await loadModel(p).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(IntegrityError)
    expect((err as IntegrityError).code).toBe('ONNX_INVALID')
    expect((err as IntegrityError).message).toContain(p)
    expect((err as IntegrityError).hint).toMatch(/truncated/)
  })

  it('reports an unknown operator as unsupported', async () => {
    const g = new GraphBuilder()
    g.input('x', DataType.FLOAT, [1])
    g.node('NoSuchOp', ['x'], ['y'])
    g.output('y', DataType.FLOAT, [1])
    const err = await loadModel(encodeModel(g.toModel()), { label: 'custom' }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(IntegrityError)
    expect((err as IntegrityError).message).toMatch(/custom/)
    expect((err as IntegrityError).message).toMatch(/NoSuchOp/)
  })
})

describe('runModel', () => {
  it('names a missing input', async () => {
    await withModel(addModel(), async (m) => {
      const err = await runModel(m, { a: fromValues('float32', [1, 3], [1, 2, 3]) }).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(UsageError)
      expect((err as UsageError).code).toBe('INPUT_MISSING')
      expect((err as UsageError).message).toContain('"b"')
    })
  })

  it('refuses a wrong dtype and a wrong fixed dim', async () => {
    await withModel(addModel(), async (m) => {
      const a = fromValues('float32', [1, 3], [1, 2, 3])
      await expect(runModel(m, { a, b: fromValues('float64', [1, 3], [1, 2, 3]) })).rejects.toMatchObject({ code: 'INPUT_DTYPE_MISMATCH' })
      await expect(runModel(m, { a, b: fromValues('float32', [3, 1], [1, 2, 3]) })).rejects.toMatchObject({ code: 'INPUT_SHAPE_MISMATCH' })
      await expect(runModel(m, { a, b: a }, ['nope'])).rejects.toMatchObject({ code: 'OUTPUT_UNKNOWN' })
    })
  })

  it('round-trips float16 as half bits', async () => {
    await withModel(addModel(DataType.FLOAT16), async (m) => {
      const out = await runModel(m, {
        a: fromValues('float16', [1, 3], [0.5, 1, -2]),
        b: fromValues('float16', [1, 3], [0.25, 1, 4]),
      })
      expect(out.sum.dtype).toBe('float16')
      expect([...toFloat64(out.sum)]).toEqual([0.75, 2, 2])
    })
  })

  it('turns a failure inside the graph into exit 4', async () => {
    // Token id 1000 is beyond tiny-bert's 43-row embedding table: Gather fails at run time.
    await withModel(BERT, async (m) => {
      const ids = fromValues('int64', [1, 2], [1, 1000])
      const err = await runModel(m, { input_ids: ids, attention_mask: fromValues('int64', [1, 2], [1, 1]), token_type_ids: fromValues('int64', [1, 2], [0, 0]) }).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(IntegrityError)
      expect((err as IntegrityError).code).toBe('ONNX_RUN_FAILED')
    })
  })
})

describe('generateInputs', () => {
  it('is deterministic per seed and respects the vocabulary, mask padding and token types', async () => {
    const hints = await modelHints(BERT)
    expect(hints).toMatchObject({ vocabSize: 43, typeVocabSize: 2, maxPositions: 64 })
    await withModel(BERT, async (m) => {
      const opts = { ...hints, samples: 4, seed: 7, sequenceLength: 9 }
      const a = generateInputs(m.inputs, opts)
      const b = generateInputs(m.inputs, opts)
      const c = generateInputs(m.inputs, { ...opts, seed: 8 })
      expect(a).toEqual(b)
      expect(a.input_ids.data).not.toEqual(c.input_ids.data)
      expect(a.input_ids.dims).toEqual([4, 9])
      const ids = [...toFloat64(a.input_ids)]
      const mask = [...toFloat64(a.attention_mask)]
      const types = [...toFloat64(a.token_type_ids)]
      expect(ids.every((v) => v >= 0 && v < 43)).toBe(true)
      expect(types.every((v) => v === 0 || v === 1)).toBe(true)
      // Sample 0 unpadded; every row is ones then zeros; padded positions hold id 0.
      expect(mask.slice(0, 9).every((v) => v === 1)).toBe(true)
      for (let r = 0; r < 4; r++) {
        const row = mask.slice(r * 9, r * 9 + 9)
        const len = row.indexOf(0) === -1 ? 9 : row.indexOf(0)
        expect(row.slice(len).every((v) => v === 0)).toBe(true)
        expect(len).toBeGreaterThan(0)
        expect(ids.slice(r * 9 + len, r * 9 + 9).every((v) => v === 0)).toBe(true)
      }
      expect(mask.some((v) => v === 0)).toBe(true)
      const out = await runModel(m, a)
      expect(out.last_hidden_state.dims).toEqual([4, 9, 32])
      expect(out.pooler_output.dims).toEqual([4, 32])
      expect([...toFloat64(out.last_hidden_state)].every(Number.isFinite)).toBe(true)
    })
  })

  it('caps the sequence at the position limit and honours named dims', () => {
    const info = { name: 'input_ids', dtype: 'int64', shape: ['batch', 'sequence'], isTensor: true }
    expect(resolveShape(info, { sequenceLength: 100, maxPositions: 64, samples: 3 })).toEqual([3, 64])
    expect(resolveShape(info, { dims: { batch: 5, sequence: 2 } })).toEqual([5, 2])
    expect(resolveShape({ name: 'x', dtype: 'float32', shape: ['N', 'C', 4, 'W'], isTensor: true }, { samples: 2 })).toEqual([2, 1, 4, 1])
  })

  it('fills generic float, int, bool and float16 inputs', () => {
    const t = generateInputs([
      { name: 'x', dtype: 'float32', shape: [2, 3], isTensor: true },
      { name: 'h', dtype: 'float16', shape: [4], isTensor: true },
      { name: 'k', dtype: 'int32', shape: [5], isTensor: true },
      { name: 'm', dtype: 'bool', shape: [6], isTensor: true },
    ], { floatRange: [-1, 1], intRange: [3, 5] })
    expect([...toFloat64(t.x)].every((v) => v >= -1 && v < 1)).toBe(true)
    expect([...toFloat64(t.h)].every((v) => v >= -1 && v <= 1)).toBe(true)
    expect([...toFloat64(t.k)].every((v) => v === 3 || v === 4)).toBe(true)
    expect([...toFloat64(t.m)].every((v) => v === 0 || v === 1)).toBe(true)
  })

  it('refuses non-tensor inputs and bad options', () => {
    expect(() => generateInputs([{ name: 's', dtype: 'non-tensor', shape: [], isTensor: false }])).toThrow(expect.objectContaining({ code: 'INPUT_UNGENERATABLE', hint: expect.stringMatching(/--inputs/) }))
    expect(() => generateInputs([], { samples: 0 })).toThrow(UsageError)
  })

  it('infers the vocabulary from the embedding table when there is no config.json', async () => {
    const sub = join(dir, 'noconfig')
    await mkdir(sub, { recursive: true })
    const { copyFile } = await import('node:fs/promises')
    await copyFile(BERT, join(sub, 'model.onnx'))
    const hints = await modelHints(join(sub, 'model.onnx'))
    expect(hints.vocabSize).toBe(43)
  })
})

describe('tensors', () => {
  it('checks element counts', () => {
    expect(() => fromValues('float32', [2, 2], [1, 2, 3])).toThrow(/expected 4/)
  })

  it('prng is uniform enough and seed-stable', () => {
    const r = prng(42)
    const xs = Array.from({ length: 1000 }, () => r())
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true)
    expect(Math.abs(xs.reduce((a, b) => a + b, 0) / 1000 - 0.5)).toBeLessThan(0.05)
    expect(prng(42)()).toBe(xs[0])
  })
})
