import { describe, expect, it } from 'vitest'
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16, floatToHalf, halfToFloat } from '../../src/onnx/float16.js'
import { prng } from '../../src/lib/random.js'

const bf16 = (f32Bits: number): number => f32ToBf16(new Float32Array(Uint32Array.of(f32Bits).buffer))[0]!
const hex = (n: number): string => `0x${n.toString(16).padStart(4, '0')}`

describe('half precision', () => {
  it('decodes IEEE half bit patterns exactly', () => {
    const bits = Uint16Array.from([0x3c00, 0xc000, 0x7bff, 0x0001, 0x0400, 0x8000, 0x7c00, 0xfc00, 0x7e00, 0x3555])
    const f = f16ToF32(bits)
    expect(Array.from(f.slice(0, 8))).toEqual([1, -2, 65504, 2 ** -24, 2 ** -14, -0, Infinity, -Infinity])
    expect(Number.isNaN(f[8])).toBe(true)
    expect(f[9]).toBeCloseTo(0.333251953125, 12)
    expect(halfToFloat(0x03ff)).toBe(1023 * 2 ** -24)
  })

  it('encodes every half value back to its own bits', () => {
    for (let h = 0; h < 0x10000; h++) {
      if ((h & 0x7c00) === 0x7c00 && h & 0x3ff) continue
      if (floatToHalf(halfToFloat(h)) !== h) expect(hex(floatToHalf(halfToFloat(h)))).toBe(hex(h))
    }
  })

  it('keeps the sign of zero, and flushes what is below half the smallest subnormal to it', () => {
    expect(floatToHalf(0)).toBe(0x0000)
    expect(floatToHalf(-0)).toBe(0x8000)
    expect(floatToHalf(2 ** -26)).toBe(0x0000)
    expect(floatToHalf(-1e-300)).toBe(0x8000)
  })

  it('rounds subnormals to nearest even, up into the smallest normal', () => {
    expect(floatToHalf(2 ** -25)).toBe(0x0000) // a tie between 0 and the smallest subnormal: even is 0
    expect(floatToHalf(3 * 2 ** -25)).toBe(0x0002) // a tie between 1 and 2 units: 2
    expect(floatToHalf(0.75 * 2 ** -24)).toBe(0x0001)
    expect(floatToHalf(1023.5 * 2 ** -24)).toBe(0x0400) // the largest subnormal's tie carries into 2^-14
    expect(floatToHalf(-5 * 2 ** -24)).toBe(0x8005)
  })

  it('rounds normals to nearest even', () => {
    expect(floatToHalf(1 + 2 ** -11)).toBe(0x3c00)
    expect(floatToHalf(1 + 3 * 2 ** -11)).toBe(0x3c02)
    expect(floatToHalf(1 + 2 ** -11 + 2 ** -20)).toBe(0x3c01)
    expect(floatToHalf(2047.5 * 2 ** -10)).toBe(0x4000) // the carry goes into the exponent: 2
    expect(halfToFloat(floatToHalf(3.14159))).toBe(3.140625)
  })

  it('rounds a double once: a value just above a tie is not pulled onto it through float32 first', () => {
    // Through float32, 1 + 2^-11 + 2^-40 becomes exactly the tie 1 + 2^-11, which rounds down to 1.
    expect(floatToHalf(1 + 2 ** -11 + 2 ** -40)).toBe(0x3c01)
    expect(floatToHalf(Math.fround(1 + 2 ** -11 + 2 ** -40))).toBe(0x3c00)
  })

  it('keeps the largest finite value and overflows to infinity from the tie above it', () => {
    expect(floatToHalf(65504)).toBe(0x7bff)
    expect(floatToHalf(65519.99)).toBe(0x7bff)
    expect(floatToHalf(65520)).toBe(0x7c00)
    expect(floatToHalf(-1e6)).toBe(0xfc00)
    expect(floatToHalf(Infinity)).toBe(0x7c00)
    expect(floatToHalf(-Infinity)).toBe(0xfc00)
    expect(floatToHalf(Number.MAX_VALUE)).toBe(0x7c00)
  })

  it('turns NaN into a quiet NaN, never infinity', () => {
    expect(floatToHalf(NaN)).toBe(0x7e00)
    expect(Number.isNaN(halfToFloat(floatToHalf(NaN)))).toBe(true)
    expect(Number.isNaN(halfToFloat(0xfc01))).toBe(true)
  })

  it('converts float32 arrays as the scalar functions do', () => {
    const values = Float32Array.from([0, 1, -1.5, 3.14159, 1e-5, 65504, 70000, -1e-8, 0.1, NaN])
    const bits = f32ToF16(values)
    expect(Array.from(bits)).toEqual(Array.from(values, floatToHalf))
    const back = f16ToF32(bits)
    expect(back[6]).toBe(Infinity)
    expect(back[7]).toBe(-0)
    expect(Math.abs(back[4]! - 1e-5)).toBeLessThan(1e-7)
  })
})

describe('bfloat16', () => {
  it('decodes as the top half of a float32', () => {
    expect(Array.from(bf16ToF32(Uint16Array.from([0x3f80, 0xc000, 0x4049, 0x7f80, 0x8000, 0x0001])))).toEqual([1, -2, 3.140625, Infinity, -0, 2 ** -133])
  })

  it('rounds to nearest even, ties included', () => {
    expect(bf16(0x3f808000)).toBe(0x3f80) // tie, kept part even: down
    expect(bf16(0x3f818000)).toBe(0x3f82) // tie, kept part odd: up
    expect(bf16(0x3f808001)).toBe(0x3f81) // above the tie: up
    expect(bf16(0x3f807fff)).toBe(0x3f80)
    expect(bf16(0x80000000)).toBe(0x8000)
    expect(bf16(0x00008000)).toBe(0x0000) // subnormal tie: even
    expect(bf16(0x007fffff)).toBe(0x0080) // the largest subnormal rounds up to the smallest normal
  })

  it('overflows to infinity past the largest finite bfloat16, keeps infinities and quiets NaN', () => {
    expect(bf16(0x7f7f7fff)).toBe(0x7f7f)
    expect(bf16(0x7f7f8000)).toBe(0x7f80) // tie above 0x7f7f (odd): up, to infinity
    expect(bf16(0x7f7fffff)).toBe(0x7f80) // float32's largest finite
    expect(bf16(0xff7fffff)).toBe(0xff80)
    expect(bf16(0x7f800000)).toBe(0x7f80)
    expect(bf16(0xff800000)).toBe(0xff80)
    // A signalling NaN whose payload lies in the dropped half would truncate to infinity without the quiet bit.
    expect(bf16(0x7f800001)).toBe(0x7fc0)
    expect(bf16(0xffc00000)).toBe(0xffc0)
  })

  it('round-trips float32 values within its precision', () => {
    const values = Float32Array.from([0, 1, -1.5, 3.14159, 0.1])
    const back = bf16ToF32(f32ToBf16(values))
    expect(back[3]).toBe(3.140625)
    expect(Math.abs(back[4]! - 0.1) / 0.1).toBeLessThan(2 ** -8)
  })
})

describe('f32ToF16 from float32 bits', () => {
  it('agrees with floatToHalf on every class of float32: normal, subnormal, ties, overflow, NaN, signed zero', () => {
    const r = prng(77)
    const bits = new Uint32Array(200_000)
    for (let i = 0; i < bits.length; i++) bits[i] = Math.floor(r() * 2 ** 32) >>> 0
    // Exponents around fp16's range, where all the cases are, and exact ties of both parities.
    for (let i = 0; i < 50_000; i++) bits[i] = ((Math.floor(r() * 2) << 31) | ((95 + Math.floor(r() * 55)) << 23) | Math.floor(r() * 2 ** 23)) >>> 0
    for (let i = 50_000; i < 60_000; i++) bits[i] = ((110 + (i % 30)) << 23 | ((i % 1024) << 13) | 0x1000) >>> 0
    const values = new Float32Array(bits.buffer)
    const fast = f32ToF16(values)
    for (let i = 0; i < values.length; i++) {
      const want = floatToHalf(values[i]!)
      if (Number.isNaN(values[i]!)) expect(Number.isNaN(halfToFloat(fast[i]!))).toBe(true)
      else if (fast[i] !== want) expect.fail(`${values[i]} (0x${bits[i]!.toString(16)}): 0x${fast[i]!.toString(16)} vs 0x${want.toString(16)}`)
    }
    expect([...f32ToF16(Float32Array.of(-0, 65520, 65519, 2 ** -25, 2 ** -25 * 1.0001))]).toEqual([0x8000, 0x7c00, 0x7bff, 0, 1])
  })
})
