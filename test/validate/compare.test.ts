import { describe, expect, it } from 'vitest'
import { compareOutput, fmt, parseTolerance, toleranceFor, type CompareOptions } from '../../src/validate/compare.js'
import { UsageError } from '../../src/lib/errors.js'
import { fromValues, type HostTensor } from '../../src/validate/tensors.js'

const f32 = (values: number[], dims = [values.length]): HostTensor => fromValues('float32', dims, values)
const fp32: CompareOptions = { atol: 1e-4, rtol: 1e-3, precision: 'fp32' }

describe('parseTolerance', () => {
  it('takes a default and per-output values; names may contain colons', () => {
    const t = parseTolerance(['1e-4', 'logits:1e-3', 'encoder:0:0.5', 2], 'atol')
    expect(t).toEqual({ default: 2, perOutput: { logits: 1e-3, 'encoder:0': 0.5 } })
    expect(toleranceFor(t, 'logits', 9)).toBe(1e-3)
    expect(toleranceFor(t, 'other', 9)).toBe(2)
    expect(toleranceFor(parseTolerance(undefined, 'atol'), 'x', 9)).toBe(9)
  })

  it.each(['abc', '-1', 'logits:', ':1e-3', '', 'x:NaN'])('refuses %j with a usage error and an example', (v) => {
    const err = (() => { try { parseTolerance([v], 'rtol') } catch (e) { return e } })()
    expect(err).toBeInstanceOf(UsageError)
    expect((err as UsageError).code).toBe('INVALID_TOLERANCE')
    expect((err as UsageError).hint).toMatch(/--rtol logits:1e-3/)
  })
})

describe('compareOutput', () => {
  it('reports exact matches', () => {
    const m = compareOutput('y', 'd', f32([1, 2, 3]), f32([1, 2, 3]), fp32)
    expect(m).toMatchObject({ passed: true, maxAbsErr: 0, maxRelErr: 0, meanAbsErr: 0, cosine: 1, mismatches: 0 })
    expect(m.worst).toBeUndefined()
  })

  it('passes an element when abs <= atol OR rel <= rtol (Polygraphy)', () => {
    // 1000 vs 1000.5: abs 0.5 > atol but rel 5e-4 <= rtol -> pass.
    expect(compareOutput('y', 'd', f32([1000.5]), f32([1000]), fp32).passed).toBe(true)
    // 1e-6 vs 5e-5: rel huge but abs 4.9e-5 <= atol -> pass.
    expect(compareOutput('y', 'd', f32([1e-6]), f32([5e-5]), fp32).passed).toBe(true)
    // Both exceeded -> fail, and the report names the element.
    const m = compareOutput('y', 'd', f32([1, 2.01, 3]), f32([1, 2, 3]), fp32)
    expect(m.passed).toBe(false)
    expect(m.mismatches).toBe(1)
    expect(m.worst).toMatchObject({ index: 1 })
    expect(m.maxAbsErr).toBeCloseTo(0.01, 5)
    expect(m.maxRelErr).toBeCloseTo(0.005, 5)
    expect(m.meanAbsErr).toBeCloseTo(0.01 / 3, 5)
    expect(m.reason).toMatch(/1 of 3 elements outside atol 0.0001 \/ rtol 0.001/)
  })

  it('gives an infinite relative error as null, for JSON', () => {
    const m = compareOutput('y', 'd', f32([0.5]), f32([0]), fp32)
    expect(m.maxRelErr).toBeNull()
    expect(m.passed).toBe(false)
    expect(JSON.parse(JSON.stringify(m)).maxRelErr).toBeNull()
  })

  it('counts NaN and Inf; matching non-finite values pass, others fail', () => {
    const same = compareOutput('y', 'd', f32([NaN, Infinity, 1]), f32([NaN, Infinity, 1]), fp32)
    expect(same).toMatchObject({ passed: true, nan: { candidate: 1, reference: 1 }, inf: { candidate: 1, reference: 1 } })
    const diff = compareOutput('y', 'd', f32([NaN, 1, -Infinity]), f32([1, 1, Infinity]), fp32)
    expect(diff).toMatchObject({ passed: false, mismatches: 2, nan: { candidate: 1, reference: 0 }, inf: { candidate: 1, reference: 1 } })
    expect(diff.maxAbsErr).toBe(0)
  })

  it('fails a shape mismatch without comparing values', () => {
    const m = compareOutput('y', 'd', f32([1, 2, 3, 4], [2, 2]), f32([1, 2, 3, 4], [4]), fp32)
    expect(m.passed).toBe(false)
    expect(m.reason).toMatch(/shape \[2, 2\] differs from the reference's \[4\]/)
  })

  it('computes cosine similarity', () => {
    expect(compareOutput('y', 'd', f32([1, 0]), f32([0, 1]), fp32).cosine).toBe(0)
    expect(compareOutput('y', 'd', f32([2, 2]), f32([1, 1]), fp32).cosine).toBeCloseTo(1, 12)
    expect(compareOutput('y', 'd', f32([-1, -1]), f32([1, 1]), fp32).cosine).toBeCloseTo(-1, 12)
    expect(compareOutput('y', 'd', f32([0, 0]), f32([0, 0]), fp32).cosine).toBe(1)
  })

  it('honours an explicit minimum cosine outside int8', () => {
    const m = compareOutput('y', 'd', f32([1, 0.1]), f32([1, 0]), { atol: 1, rtol: 1, precision: 'fp32', minCosine: 0.999 })
    expect(m.passed).toBe(false)
    expect(m.reason).toMatch(/cosine similarity 0.99504 < 0.999/)
  })

  describe('int8', () => {
    const int8: CompareOptions = { atol: 0.1, rtol: 0.1, precision: 'int8' }

    it('judges by cosine, not elementwise', () => {
      // Large elementwise error, same direction: passes under int8.
      expect(compareOutput('hidden', 'd', f32([1.5, 3, 4.5]), f32([1, 2, 3]), int8).passed).toBe(true)
      const m = compareOutput('hidden', 'd', f32([1, 0, 0]), f32([0, 1, 0]), int8)
      expect(m.passed).toBe(false)
      expect(m.reason).toMatch(/cosine similarity 0.00000 < 0.99/)
    })

    it('requires the same argmax per row for logits', () => {
      const ref = f32([0.1, 0.9, 0.5, 0.5, 0.2, 0.3], [2, 3])
      const ok = compareOutput('logits', 'd', f32([0.12, 0.88, 0.5, 0.5, 0.21, 0.29], [2, 3]), ref, int8)
      expect(ok).toMatchObject({ passed: true, argmaxAgreement: 1 })
      // Row 0's top class flips (0.9 -> 0.85 vs 0.86) while the vectors stay close.
      const flipped = compareOutput('logits', 'd', f32([0.1, 0.85, 0.86, 0.5, 0.2, 0.3], [2, 3]), ref, int8)
      expect(flipped.cosine).toBeGreaterThan(0.9)
      expect(flipped.argmaxAgreement).toBe(0.5)
      expect(flipped.reason).toMatch(/argmax differs in 50.0% of rows/)
    })

    it('applies the elementwise rule too when tolerances were given', () => {
      const m = compareOutput('hidden', 'd', f32([1.5, 3, 4.5]), f32([1, 2, 3]), { ...int8, elementwiseForInt8: true })
      expect(m.passed).toBe(false)
    })

    it('fails when the candidate has NaN the reference lacks', () => {
      const m = compareOutput('hidden', 'd', f32([1, 2, NaN, 4]), f32([1, 2, 3, 4]), int8)
      expect(m.passed).toBe(false)
      expect(m.reason).toMatch(/1 NaN/)
    })

    it('fails when the NaN sits elsewhere than in the reference (same counts, other position)', () => {
      const m = compareOutput('hidden', 'd', f32([1, 2, NaN, 4]), f32([NaN, 2, 3, 4]), int8)
      expect(m.passed).toBe(false)
      expect(m.reason).toMatch(/non-finite values disagree at 2 of 4 positions/)
      expect(compareOutput('hidden', 'd', f32([NaN, 2, 3, 4]), f32([NaN, 2, 3, 4]), int8).passed).toBe(true)
      expect(compareOutput('hidden', 'd', f32([1, 2, Infinity]), f32([1, 2, -Infinity]), int8).passed).toBe(false)
    })
  })

  it('compares integers, bools, float16 and strings', () => {
    expect(compareOutput('i', 'd', fromValues('int64', [2], [5, 6]), fromValues('int64', [2], [5, 7]), { ...fp32, atol: 0, rtol: 0 }).mismatches).toBe(1)
    expect(compareOutput('b', 'd', fromValues('bool', [2], [true, false]), fromValues('bool', [2], [true, false]), fp32).passed).toBe(true)
    const h = compareOutput('h', 'd', fromValues('float16', [2], [1, 2]), f32([1, 2.001]), { atol: 1e-2, rtol: 1e-2, precision: 'fp16' })
    expect(h.passed).toBe(true)
    expect(h.dtype).toBe('float16')
    expect(h.referenceDtype).toBe('float32')
    const s = compareOutput('s', 'd', fromValues('string', [2], ['a', 'b']), fromValues('string', [2], ['a', 'c']), fp32)
    expect(s).toMatchObject({ passed: false, mismatches: 1, worst: { index: 1, candidate: 'b', reference: 'c' } })
  })
})

describe('fmt', () => {
  it('formats compactly', () => {
    expect(fmt(0)).toBe('0')
    expect(fmt(1e-7)).toBe('1.00e-7')
    expect(fmt(0.0123456)).toBe('0.01235')
    expect(fmt(null)).toBe('inf')
    expect(fmt(undefined)).toBe('-')
  })
})
