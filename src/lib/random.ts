/**
 * mulberry32, a small well-known 32-bit PRNG, for everything that must be reproducible: toy weights (the
 * same agent and version always give the same bytes) and generated validation inputs (the same --seed gives
 * the same inputs on every machine). Math.random cannot be seeded and no cryptographic quality is needed,
 * so eight lines beat a dependency.
 */
import { createHash } from 'node:crypto'

export type Rng = () => number

/** Uniform numbers in [0, 1) from a 32-bit seed. */
export function prng(seed: number): Rng {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** A generator seeded from a string (e.g. "scout/v1/classifier"). */
export function seededRng(seed: string): Rng {
  return prng(createHash('sha256').update(seed).digest().readUInt32LE(0))
}

/** count numbers uniform in [-scale, scale] (weights with a scale chosen by the caller). */
export function uniform(rng: Rng, count: number, scale: number): Float32Array {
  const out = new Float32Array(count)
  for (let i = 0; i < count; i++) out[i] = (rng() * 2 - 1) * scale
  return out
}
