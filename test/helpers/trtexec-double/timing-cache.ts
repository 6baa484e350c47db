/**
 * --timingCacheFile: the double's timing cache is a file of timed "tactics", one key per layer kind and
 * shape and precision. A build finds in it the keys earlier builds timed (hits are not timed again, so the
 * build is shorter) and writes back the union. A cache made by another TensorRT version or on another GPU
 * is not used, as TensorRT refuses such caches; it is regenerated.
 */
import { createHash } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'

const MAGIC = 'TRTDBL-TIMING-CACHE\n'

export interface TimingCache {
  tensorrt: string
  gpu: string
  entries: string[]
}

export type CacheRead = { ok: true; cache: TimingCache; bytes: number } | { ok: false }

export function readCache(path: string, tensorrt: string, gpuUuid: string): CacheRead {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch {
    return { ok: false }
  }
  if (!text.startsWith(MAGIC)) return { ok: false }
  try {
    const cache = JSON.parse(text.slice(MAGIC.length)) as TimingCache
    if (cache.tensorrt !== tensorrt || cache.gpu !== gpuUuid || !Array.isArray(cache.entries)) return { ok: false }
    return { ok: true, cache, bytes: Buffer.byteLength(text) }
  } catch {
    return { ok: false }
  }
}

/** Writes the cache and returns its size in bytes. */
export function writeCache(path: string, cache: TimingCache): number {
  const text = MAGIC + JSON.stringify({ ...cache, entries: [...new Set(cache.entries)].sort() })
  writeFileSync(path, text)
  return Buffer.byteLength(text)
}

/** One key per timed layer: what it computes, on which shapes, in which precision. */
export function tacticKey(parts: readonly (string | number | boolean)[]): string {
  return createHash('sha256').update(parts.join('|')).digest('hex').slice(0, 16)
}
