/**
 * manifest.json (schema modelforge/manifest@1, docs/store.md) and the two checksum algorithms:
 *
 * - sha256-files-v1: SHA-256 of the text `sha256sum` prints for every file but the top-level manifest.json,
 *   lines `<hex>  <path>\n` sorted by path in byte order, so anyone can check a version with coreutils.
 * - legacy (the original Python ModelStore): SHA-256 over each file's relative path then its bytes, files in
 *   os.walk order, every file named manifest.json skipped. Its manifests hold only version/checksum/metadata.
 *   os.walk visits subdirectories in the order the filesystem lists them (file names were sorted), so the
 *   value depends on the filesystem the version was hashed on; some helpers sorted the subdirectories too.
 *   A check tries both orders (matchLegacyChecksum).
 *
 * A manifest@1 may carry the legacy value in `checksum` (checksum_algorithm legacy-python-sha256, written
 * with store.legacyChecksum, for the Python helper's verify_manifest), its sha256-files-v1 value then in
 * `files_checksum`; the per-file list is the same either way.
 */
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { errnoCode, IntegrityError } from '../lib/errors.js'
import { readChunks } from '../lib/hash.js'
import { compareBytes, walkTree, type TreeEntry, type WalkOrder } from '../lib/tree.js'

export const MANIFEST_SCHEMA = 'modelforge/manifest@1'
export const CHECKSUM_ALGORITHM = 'sha256-files-v1'
export const LEGACY_ALGORITHM = 'legacy-python-sha256'
export const MANIFEST_NAME = 'manifest.json'

export interface ManifestFile {
  path: string
  size: number
  sha256: string
}

export interface Manifest {
  version: string
  checksum: string
  metadata: Record<string, unknown>
  schema: typeof MANIFEST_SCHEMA
  agent: string
  created_at: string
  /** legacy-python-sha256: `checksum` is the original Python ModelStore's, files_checksum the sha256-files-v1 value. */
  checksum_algorithm: typeof CHECKSUM_ALGORITHM | typeof LEGACY_ALGORITHM
  /** The sha256-files-v1 value of `files`, when `checksum` is the legacy one. */
  files_checksum?: string
  files: ManifestFile[]
  artifacts?: Record<string, unknown>[]
  source?: Record<string, unknown>
  build?: Record<string, unknown>
  validation?: Record<string, unknown>
  performance?: Record<string, unknown>
  /** `--capability key=value` of finalize and build-engine, for the model registry (over what it derives). */
  capabilities?: Record<string, unknown>
  [key: string]: unknown
}

/** A manifest written by the original Python ModelStore. */
export interface LegacyManifest {
  version: string
  checksum: string
  metadata?: Record<string, unknown>
  [key: string]: unknown
}

export type ParsedManifest = { kind: 'v1'; manifest: Manifest } | { kind: 'legacy'; manifest: LegacyManifest }

const HEX64 = /^[0-9a-f]{64}$/

/** The sha256sum-format text for these files (sorted by path in byte order). */
export function sha256sumText(files: Pick<ManifestFile, 'path' | 'sha256'>[]): string {
  return [...files]
    .sort((a, b) => compareBytes(a.path, b.path))
    .map((f) => `${f.sha256}  ${f.path}\n`)
    .join('')
}

/** The sha256-files-v1 value a manifest@1 records for its file list: `checksum`, or files_checksum beside a legacy checksum. */
export function filesChecksumOf(m: Pick<Manifest, 'checksum' | 'checksum_algorithm' | 'files_checksum'>): string {
  // parseManifest requires files_checksum beside a legacy checksum; '' (never equal to a digest) if unparsed.
  return m.checksum_algorithm === LEGACY_ALGORITHM ? m.files_checksum ?? '' : m.checksum
}

/** How finalize and import name a new version's checksums: `sha256-files-v1 <hex>`, or the legacy value and then that. */
export function checksums(r: { checksum: string; checksumAlgorithm: string; filesChecksum?: string }): string {
  return `${r.checksumAlgorithm} ${r.checksum}${r.filesChecksum ? ` (files: ${CHECKSUM_ALGORITHM} ${r.filesChecksum})` : ''}`
}

/** sha256-files-v1 over per-file digests. */
export function checksumFilesV1(files: Pick<ManifestFile, 'path' | 'sha256'>[]): string {
  return createHash('sha256').update(sha256sumText(files), 'utf8').digest('hex')
}

/** The os.walk order a legacy checksum was taken in: subdirectories as listed by the filesystem, or sorted. */
export type ChecksumOrder = WalkOrder

/** What the legacy checksum covers, in os.walk order: everything but directories and files named manifest.json. */
async function legacyEntries(dir: string, order: ChecksumOrder): Promise<TreeEntry[]> {
  return (await walkTree(dir, { order })).filter((e) => e.type !== 'directory' && e.rel.split('/').pop() !== MANIFEST_NAME)
}

async function legacyDigest(entries: TreeEntry[]): Promise<string> {
  const h = createHash('sha256')
  for (const e of entries) {
    h.update(e.rel, 'utf8')
    // Python's open() follows a link to a file, so the legacy checksum does too.
    await readChunks(e.abs, (chunk) => h.update(chunk), { followSymlinks: true })
  }
  return h.digest('hex')
}

/**
 * The Python ModelStore's checksum of a version directory (streamed, one file at a time), its files taken
 * in sorted os.walk order, or (order: 'listing') in the order os.walk itself reads this tree here.
 */
export async function legacyChecksum(dir: string, options: { order?: ChecksumOrder } = {}): Promise<string> {
  return legacyDigest(await legacyEntries(dir, options.order ?? 'sorted'))
}

export type LegacyMatch =
  | { order: ChecksumOrder }
  /** Neither order gives `expected`: what each gives (the same value when both orders list the files alike). */
  | { order: null; listing: string; sorted: string }

/**
 * Which os.walk order reproduces `expected`: the listing order first (what the original helper saw, on
 * the filesystem it hashed the version on), then the sorted one (helpers that sorted the subdirectories,
 * and copies that changed the listing). A tree whose two orders list the files alike is hashed once, and
 * a match then counts as 'listing'. Hashing a tree whose orders differ can take two passes.
 */
export async function matchLegacyChecksum(dir: string, expected: string): Promise<LegacyMatch> {
  const listed = await legacyEntries(dir, 'listing')
  const listing = await legacyDigest(listed)
  if (listing === expected) return { order: 'listing' }
  const sortedEntries = await legacyEntries(dir, 'sorted')
  const same = sortedEntries.length === listed.length && sortedEntries.every((e, i) => e.rel === listed[i]!.rel)
  const sorted = same ? listing : await legacyDigest(sortedEntries)
  return sorted === expected ? { order: 'sorted' } : { order: null, listing, sorted }
}

function invalid(where: string, problem: string): IntegrityError {
  return new IntegrityError(`Manifest ${where} is invalid: ${problem}`, {
    code: 'MANIFEST_INVALID',
    hint: 'A finalized version is never edited; restore the version from a backup or publish a new one (`modelforge store verify` lists what is wrong).',
    details: { path: where, problem },
  })
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

/** Validates parsed JSON as a manifest@1 or a legacy manifest. `where` names the file in errors. */
export function parseManifest(value: unknown, where: string): ParsedManifest {
  if (!isObject(value)) throw invalid(where, 'not a JSON object')
  if (typeof value.version !== 'string' || !value.version) throw invalid(where, '"version" is missing')
  if (typeof value.checksum !== 'string' || !HEX64.test(value.checksum)) throw invalid(where, '"checksum" is not 64 lowercase hex digits')
  if (value.metadata !== undefined && !isObject(value.metadata)) throw invalid(where, '"metadata" is not an object')
  if (value.schema === undefined) return { kind: 'legacy', manifest: value as LegacyManifest }
  if (value.schema !== MANIFEST_SCHEMA) {
    throw new IntegrityError(`Manifest ${where} has schema ${JSON.stringify(value.schema)}, which this modelforge does not know`, {
      code: 'MANIFEST_SCHEMA_UNKNOWN',
      hint: 'It was written by a newer modelforge; upgrade modelforge to read it.',
      details: { path: where, schema: value.schema },
    })
  }
  if (value.checksum_algorithm !== CHECKSUM_ALGORITHM && value.checksum_algorithm !== LEGACY_ALGORITHM) {
    throw invalid(where, `"checksum_algorithm" is neither ${CHECKSUM_ALGORITHM} nor ${LEGACY_ALGORITHM}`)
  }
  if (value.checksum_algorithm === LEGACY_ALGORITHM && (typeof value.files_checksum !== 'string' || !HEX64.test(value.files_checksum))) {
    throw invalid(where, `"files_checksum" (the ${CHECKSUM_ALGORITHM} value beside a ${LEGACY_ALGORITHM} checksum) is not 64 lowercase hex digits`)
  }
  if (typeof value.agent !== 'string') throw invalid(where, '"agent" is missing')
  if (typeof value.created_at !== 'string' || Number.isNaN(Date.parse(value.created_at))) throw invalid(where, '"created_at" is not an ISO-8601 time')
  if (!isObject(value.metadata)) throw invalid(where, '"metadata" is missing')
  if (!Array.isArray(value.files)) throw invalid(where, '"files" is not a list')
  const seen = new Set<string>()
  for (const f of value.files as unknown[]) {
    if (!isObject(f) || typeof f.path !== 'string' || !f.path || typeof f.sha256 !== 'string' || !HEX64.test(f.sha256) || !Number.isSafeInteger(f.size) || (f.size as number) < 0) {
      throw invalid(where, `bad entry in "files": ${JSON.stringify(f)}`)
    }
    if (seen.has(f.path)) throw invalid(where, `"files" lists ${f.path} twice`)
    seen.add(f.path)
  }
  return { kind: 'v1', manifest: value as Manifest }
}

/** Reads and validates `<dir>/manifest.json`; a missing or malformed file is an IntegrityError (exit 4). */
export async function readManifest(dir: string): Promise<ParsedManifest> {
  const where = join(dir, MANIFEST_NAME)
  let text: string
  try {
    // A synchronous read: fs.promises.readFile costs ~0.17 ms a file on Node 20 (open, fstat, read and close
    // each a thread-pool round trip), 15 times this, and listing or indexing a store reads thousands.
    text = readFileSync(where, 'utf8')
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') {
      throw new IntegrityError(`Version ${dir} has no manifest.json`, {
        code: 'MANIFEST_MISSING',
        hint: 'The version was not finalized by modelforge or was damaged; restore it from a backup or publish a new version.',
        details: { path: where },
      })
    }
    throw err
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (err) {
    throw invalid(where, `not valid JSON (${(err as Error).message})`)
  }
  return parseManifest(parsed, where)
}
