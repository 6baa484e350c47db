/**
 * modelforge's own version, from its package.json, for the records it writes (engine.json says which
 * modelforge built an engine). src/lib and dist/lib are both two levels below the package root.
 */
import { readFileSync } from 'node:fs'

let cached: string | undefined

export function modelforgeVersion(): string {
  if (cached === undefined) {
    try {
      const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown }
      cached = typeof pkg.version === 'string' ? pkg.version : 'unknown'
    } catch {
      cached = 'unknown'
    }
  }
  return cached
}
