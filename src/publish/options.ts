/** Parsing of the store commands' flag values (kept out of the commands so the library can reuse it). */
import { IntegrityError, NotFoundError, osFailure, UsageError } from '../lib/errors.js'
import { readJsonFileSync } from '../lib/json.js'

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }

/** "24h", "30m", "90s", "2d", "1500ms" or "0" -> milliseconds. */
export function parseDuration(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$/.exec(text)
  if (!m || (m[2] === undefined && Number(m[1]) !== 0)) {
    throw new UsageError(`Invalid duration ${JSON.stringify(text)}`, {
      code: 'INVALID_DURATION',
      hint: 'Use a number with a unit: 30s, 30m, 24h, 7d; or 0 for "any age".',
    })
  }
  return Number(m[1]) * UNITS[m[2] ?? 'ms']!
}

const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1e3, kb: 1e3, m: 1e6, mb: 1e6, g: 1e9, gb: 1e9, t: 1e12, tb: 1e12, kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40 }

/** "50GB", "500MiB", "1.5T", "1000000" -> bytes (decimal units as disks are sold, binary ones with an i). */
export function parseByteSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text)
  const unit = SIZE_UNITS[m?.[2]?.toLowerCase() ?? 'x']
  if (!m || unit === undefined) {
    throw new UsageError(`Invalid size ${JSON.stringify(text)}`, {
      code: 'INVALID_SIZE',
      hint: 'Use bytes or a number with a unit: 500MB, 50GB, 40GiB, 1TB.',
    })
  }
  return Math.floor(Number(m[1]) * unit)
}

/** --metadata-file (a JSON object) merged with --metadata key=value pairs (the pairs win). */
export function parseMetadata(pairs: string[] = [], file?: string): Record<string, unknown> {
  let metadata: Record<string, unknown> = {}
  if (file) {
    // A missing file is exit 6, an unreadable one the OS failure; broken content is the file's (exit 4).
    metadata = readJsonFileSync<Record<string, unknown>>(file, {
      what: 'metadata file',
      expect: 'object',
      onError: (f) => f.kind === 'syntax' || f.kind === 'shape'
        ? new IntegrityError(f.message, { code: 'METADATA_FILE_INVALID', hint: '--metadata-file takes a JSON file holding one object, e.g. {"dataset": "v3"}.' })
        : f.kind === 'missing'
          ? new NotFoundError(f.message, { code: 'JSON_NOT_FOUND', hint: 'Check the --metadata-file path.' })
          : osFailure(f.cause, 'reading the --metadata-file', f.where),
    })
  }
  for (const pair of pairs) {
    const eq = pair.indexOf('=')
    if (eq <= 0) {
      throw new UsageError(`Invalid --metadata ${JSON.stringify(pair)}: expected key=value`, {
        code: 'INVALID_METADATA',
        hint: 'For example --metadata dataset=v3 --metadata accuracy=0.91 (values are strings; use --metadata-file for other types).',
      })
    }
    metadata[pair.slice(0, eq)] = pair.slice(eq + 1)
  }
  return metadata
}
