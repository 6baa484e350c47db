/**
 * Numbers and dims as trtexec prints them. trtexec writes floats with C++'s default ostream formatting
 * (`os << x`: six significant digits, %g-style, "1e-05" exponents), so "0.0442749" or "15374.3"; a parser
 * that reads the double's log or JSON meets the rounding it would meet with the real tool.
 */

/** `os << x` for a float or double with the default precision (6). */
export function cpp(x: number, precision = 6): string {
  if (Number.isNaN(x)) return 'nan'
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf'
  if (x === 0) return Object.is(x, -0) ? '-0' : '0'
  x = tieToEven(x, precision)
  const exp = Number(x.toExponential(precision - 1).split('e')[1])
  if (exp < -4 || exp >= precision) {
    const [mantissa, e] = x.toExponential(precision - 1).split('e')
    const m = mantissa!.includes('.') ? mantissa!.replace(/0+$/, '').replace(/\.$/, '') : mantissa!
    const n = Number(e)
    return `${m}e${n < 0 ? '-' : '+'}${String(Math.abs(n)).padStart(2, '0')}`
  }
  const fixed = x.toFixed(Math.max(0, precision - 1 - exp))
  return fixed.includes('.') ? fixed.replace(/0+$/, '').replace(/\.$/, '') : fixed
}

/**
 * printf rounds a value exactly halfway between two outputs to the even one (1024 bytes in MiB,
 * 0.0009765625, prints 0.000976562); JavaScript rounds such ties up. A tie is moved just below the
 * midpoint when the even neighbour is the lower one, so toExponential then lands on it.
 */
function tieToEven(x: number, precision: number): number {
  const digits = Math.abs(x).toExponential(60)
  const [mantissa] = digits.split('e')
  const sig = mantissa!.replace('.', '')
  if (sig[precision] !== '5' || /[^0]/.test(sig.slice(precision + 1))) return x
  if (Number(sig[precision - 1]) % 2 === 1) return x
  const lower = Number(`${sig.slice(0, precision)}e${Number(digits.split('e')[1]) - precision + 1}`)
  return x < 0 ? -lower : lower
}

/** A float32 value printed as trtexec prints a float (it is rounded to float32 first). */
export function cppFloat(x: number): string {
  return cpp(Math.fround(x))
}

/** trtexec's dims spelling: 1x3x224x224; a scalar has no dims. */
export function dimsText(dims: readonly number[]): string {
  return dims.join('x')
}

/** The `[1,3,224,224]` of TensorRT's layer information. */
export function dimsList(dims: readonly number[]): string {
  return `[${dims.join(',')}]`
}

export function volume(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1)
}
