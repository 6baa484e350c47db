/**
 * IEEE half (float16) and bfloat16, the two 16-bit float formats of ONNX tensors and safetensors
 * checkpoints, to and from JavaScript numbers. Node 20 has neither Float16Array nor Math.f16round, so the
 * conversion is done here, once, for the checkpoint reader and the validate area alike.
 *
 * Encoding rounds to nearest, ties to even, straight from the double: narrowing to float32 first would
 * round twice and can land on the wrong side of a tie. Overflow gives infinity, NaN stays a (quiet) NaN,
 * and the sign of zero is kept.
 */

let halfTable: Float32Array | undefined

/** Every half value as a float32 (each is exact), built on first use: 256 KiB nobody needs until then. */
function halves(): Float32Array {
  if (halfTable) return halfTable
  const table = new Float32Array(65536)
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1
    const exp = (h >> 10) & 0x1f
    const frac = h & 0x3ff
    if (exp === 0) table[h] = sign * frac * 2 ** -24
    else if (exp === 31) table[h] = frac ? NaN : sign * Infinity
    else table[h] = sign * (1 + frac / 1024) * 2 ** (exp - 15)
  }
  halfTable = table
  return table
}

/** Half bits -> number (exact). */
export function halfToFloat(bits: number): number {
  return halves()[bits & 0xffff]!
}

const bitsView = new DataView(new ArrayBuffer(8))

/** x >= 0 rounded to an integer, ties to even (x < 2^31, so the subtraction below is exact). */
function roundHalfEven(x: number): number {
  const n = Math.floor(x)
  const rest = x - n
  return rest > 0.5 || (rest === 0.5 && (n & 1) === 1) ? n + 1 : n
}

/** number -> half bits, round to nearest even. */
export function floatToHalf(value: number): number {
  bitsView.setFloat64(0, value)
  const high = bitsView.getUint32(0)
  const sign = (high >>> 16) & 0x8000
  if (Number.isNaN(value)) return sign | 0x7e00
  const magnitude = Math.abs(value)
  // The half exponent field the value would get; <= 0 means subnormal (or zero) in half.
  const e = ((high >>> 20) & 0x7ff) - 1023 + 15
  if (e >= 31) return sign | 0x7c00
  if (e <= 0) {
    // Units of the smallest subnormal, 2^-24; rounding up to 1024 gives exactly the smallest normal.
    return sign | roundHalfEven(magnitude * 2 ** 24)
  }
  // 1024..2048 units of the value's half ulp; a carry to 2048 moves into the next exponent, up to infinity.
  return sign | (((e - 1) << 10) + roundHalfEven(magnitude * 2 ** (25 - e)))
}

/** IEEE half bits -> float32 (exact: every half value is a float32). */
export function f16ToF32(bits: Uint16Array): Float32Array {
  const table = halves()
  const out = new Float32Array(bits.length)
  for (let i = 0; i < bits.length; i++) out[i] = table[bits[i]!]!
  return out
}

/**
 * float32 -> IEEE half bits, round to nearest even, straight from the float32 bits (one rounding, as
 * floatToHalf; some 20 times faster, which the fp16 transform of a whole model's weights needs).
 */
export function f32ToF16(values: Float32Array): Uint16Array {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length)
  const out = new Uint16Array(values.length)
  for (let i = 0; i < bits.length; i++) {
    const f = bits[i]!
    const sign = (f >>> 16) & 0x8000
    const e = (f >>> 23) & 0xff
    const sig = f & 0x7fffff
    if (e === 0xff) {
      out[i] = sign | 0x7c00 | (sig ? 0x200 : 0)
    } else if (e >= 143) {
      out[i] = sign | 0x7c00
    } else if (e >= 113) {
      // Normal in half: 10 mantissa bits kept, the 13 below round (a carry may move into the exponent).
      let h = sign | ((e - 112) << 10) | (sig >>> 13)
      const rest = sig & 0x1fff
      if (rest > 0x1000 || (rest === 0x1000 && (h & 1))) h++
      out[i] = h
    } else if (e >= 102) {
      // Subnormal in half: units of 2^-24.
      const full = sig | 0x800000
      const shift = 126 - e
      let h = full >>> shift
      const rest = full & ((1 << shift) - 1)
      const half = 1 << (shift - 1)
      if (rest > half || (rest === half && (h & 1))) h++
      out[i] = sign | h
    } else {
      out[i] = sign
    }
  }
  return out
}

/** bfloat16 bits -> float32: bfloat16 is the top half of a float32. */
export function bf16ToF32(bits: Uint16Array): Float32Array {
  const out = new Uint32Array(bits.length)
  for (let i = 0; i < bits.length; i++) out[i] = bits[i]! << 16
  return new Float32Array(out.buffer)
}

/** float32 -> bfloat16 bits, round to nearest even. */
export function f32ToBf16(values: Float32Array): Uint16Array {
  const u = new Uint32Array(values.buffer, values.byteOffset, values.length)
  const out = new Uint16Array(values.length)
  for (let i = 0; i < values.length; i++) {
    const x = u[i]!
    // NaN: keep the sign and the top of the payload, and set the quiet bit so it cannot become infinity.
    if ((x & 0x7fffffff) > 0x7f800000) {
      out[i] = (x >>> 16) | 0x40
      continue
    }
    // Adding 0x7fff (+1 when the kept part is odd) carries into bit 16 exactly when RNE rounds up.
    out[i] = (x + 0x7fff + ((x >>> 16) & 1)) >>> 16
  }
  return out
}
