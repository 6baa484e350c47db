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
