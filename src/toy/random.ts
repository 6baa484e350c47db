/**
 * A seeded PRNG (mulberry32) for deterministic toy weights: the same agent and version always give the same
 * bytes, so toy stores are reproducible and their checksums comparable across machines. Math.random cannot
 * be seeded, and the weights need no cryptographic quality, so a 20-line generator beats a dependency.
 */
import { createHash } from 'node:crypto'

export type Rng = () => number

export function seededRng(seed: string): Rng {
  let a = createHash('sha256').update(seed).digest().readUInt32LE(0)
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Weights uniform in [-scale, scale] (Glorot-style scale chosen by the caller). */
export function uniform(rng: Rng, count: number, scale: number): Float32Array {
  const out = new Float32Array(count)
  for (let i = 0; i < count; i++) out[i] = (rng() * 2 - 1) * scale
  return out
}
