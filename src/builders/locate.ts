/**
 * Finding trtexec and learning its version. The lookup order is fixed and reported (`source`), because a
 * machine often has several TensorRT installs and the one used decides the engine: --trtexec, then
 * $TRTEXEC, then PATH, then /usr/src/tensorrt/bin/trtexec (where NVIDIA's packages and containers put it).
 * The version comes from the `&&&& RUNNING TensorRT.trtexec [TensorRT vNNNNN]` banner that trtexec prints
 * first, also for --help (which exits 0 without a PASSED line). A probe is cached by the binary's real
 * path, size and mtime, so a second build does not pay for it while an upgraded trtexec is probed again.
 */
import { realpath, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { debugLog } from '../lib/debug.js'
import { ExternalError, NotFoundError, UsageError } from '../lib/errors.js'
import { run } from '../lib/exec.js'
import { writeFileAtomic } from '../lib/fs.js'
import { readJsonFile } from '../lib/json.js'
import { checkExecutable, findOnPath } from '../lib/which.js'
import { parseBanner } from './trtexec-version.js'
import type { TrtVersion } from './types.js'

type Env = Record<string, string | undefined>

export const DEFAULT_TRTEXEC = '/usr/src/tensorrt/bin/trtexec'

export type TrtexecSource = 'flag' | 'TRTEXEC' | 'PATH' | 'default'

export interface FoundTrtexec {
  path: string
  source: TrtexecSource
}

export const TRTEXEC_INSTALL_HINT = 'Install TensorRT (its packages put trtexec in /usr/src/tensorrt/bin; NGC TensorRT containers have it), '
  + 'or point TRTEXEC (or --trtexec) at the trtexec binary.'

// Cache hits and misses sit beside the spawns they replace.
const log = debugLog('exec')

/** The trtexec to run, and where it was found. An explicit one that is unusable is an error naming it. */
export async function findTrtexec(o: { flag?: string; env?: Env } = {}): Promise<FoundTrtexec> {
  const env = o.env ?? process.env
  if (o.flag) return { path: await explicit(o.flag, '--trtexec'), source: 'flag' }
  if (env.TRTEXEC) return { path: await explicit(env.TRTEXEC, 'TRTEXEC'), source: 'TRTEXEC' }
  const onPath = await findOnPath('trtexec', env)
  if (onPath) return { path: onPath, source: 'PATH' }
  if ((await checkExecutable(DEFAULT_TRTEXEC)).ok) return { path: DEFAULT_TRTEXEC, source: 'default' }
  throw new ExternalError(`trtexec was not found: neither --trtexec nor TRTEXEC is set, no trtexec is on PATH, and ${DEFAULT_TRTEXEC} does not exist`, {
    code: 'TRTEXEC_NOT_FOUND',
    hint: TRTEXEC_INSTALL_HINT,
    details: { searched: ['--trtexec', 'TRTEXEC', 'PATH', DEFAULT_TRTEXEC] },
  })
}

async function explicit(path: string, from: '--trtexec' | 'TRTEXEC'): Promise<string> {
  const check = await checkExecutable(path)
  if (check.ok) return check.path
  const message = `${from} names ${path}, which cannot be run as trtexec: ${check.reason}`
  if (check.problem === 'missing') {
    throw new NotFoundError(message, {
      code: 'TRTEXEC_PATH_NOT_FOUND',
      hint: from === 'TRTEXEC' ? 'Fix TRTEXEC, or unset it to search PATH and /usr/src/tensorrt/bin.' : 'Fix the path, or drop --trtexec to search TRTEXEC, PATH and /usr/src/tensorrt/bin.',
      details: { path: check.path, from },
    })
  }
  throw new UsageError(message, {
    code: 'TRTEXEC_NOT_EXECUTABLE',
    hint: `Point ${from} at the trtexec program itself${check.problem === 'not-executable' ? ` (chmod +x ${check.path} if it lost its mode)` : ''}.`,
    details: { path: check.path, from },
  })
}

export interface Probe {
  version: TrtVersion
  /** What `trtexec --help` printed on stdout, the banner included. */
  help: string
}

export interface ProbeOptions {
  /** A directory for the probe cache (trtexec-probe.json); without one every call runs trtexec. */
  cacheDir?: string
  /** Milliseconds before the --help run is stopped (default 60 s). */
  timeoutMs?: number
  env?: Env
}

export const PROBE_CACHE_FILE = 'trtexec-probe.json'
const PROBE_SCHEMA = 'modelforge/trtexec-probe@1'

interface CacheEntry {
  size: number
  mtimeMs: number
  version: TrtVersion
  help: string
}

interface CacheFile {
  schema: typeof PROBE_SCHEMA
  /** By the binary's real path. */
  entries: Record<string, CacheEntry>
}

/** trtexec's version (from the banner of a --help run) and its help text. */
export async function probeTrtexec(path: string, o: ProbeOptions = {}): Promise<Probe> {
  const key = await fileKey(path)
  const cacheFile = o.cacheDir ? join(o.cacheDir, PROBE_CACHE_FILE) : undefined
  const cache = cacheFile ? await readCache(cacheFile) : undefined
  const hit = cache?.entries[key.realpath]
  if (hit && hit.size === key.size && hit.mtimeMs === key.mtimeMs) {
    log('probe of %s from %s', key.realpath, cacheFile)
    return { version: hit.version, help: hit.help }
  }
  const r = await run(path, ['--help'], { reject: false, timeout: o.timeoutMs ?? 60_000, env: o.env })
  const banner = r.stdout.split('\n').map((line) => parseBanner(line)).find((b) => b?.kind === 'RUNNING')
  if (!banner) {
    const tail = r.all.trimEnd().split('\n').slice(-10).join('\n')
    throw new ExternalError(`${path} is not trtexec? \`${path} --help\` exited with code ${r.exitCode} without trtexec's "&&&& RUNNING TensorRT.trtexec" banner${tail ? `:\n${tail}` : ' and printed nothing'}`, {
      code: 'TRTEXEC_NOT_TRTEXEC',
      hint: 'Check that the path is trtexec. If it is, its TensorRT libraries may be missing or of another version (LD_LIBRARY_PATH, ldd on it).',
      details: { path, exitCode: r.exitCode },
    })
  }
  const probe: Probe = { version: banner.version, help: r.stdout }
  if (cacheFile) await writeCache(cacheFile, cache, key, probe)
  return probe
}

async function fileKey(path: string): Promise<{ realpath: string; size: number; mtimeMs: number }> {
  try {
    const real = await realpath(path)
    const st = await stat(real)
    return { realpath: real, size: st.size, mtimeMs: st.mtimeMs }
  } catch {
    // Unreadable metadata is reported by the run itself (not found, permission denied), with the tool's name.
    return { realpath: path, size: -1, mtimeMs: -1 }
  }
}

function isEntry(e: unknown): e is CacheEntry {
  const x = e as CacheEntry
  return !!x && typeof x === 'object' && typeof x.size === 'number' && typeof x.mtimeMs === 'number' && typeof x.help === 'string'
    && !!x.version && typeof x.version === 'object' && ['major', 'minor', 'patch', 'encoded'].every((k) => Number.isInteger((x.version as unknown as Record<string, unknown>)[k]))
    && typeof x.version.text === 'string'
}

/** The cache, or undefined when it is missing or unusable: a cache is rebuilt, never a reason to fail. */
async function readCache(file: string): Promise<CacheFile | undefined> {
  try {
    const c = await readJsonFile<CacheFile>(file, { expect: 'object' })
    if (c.schema !== PROBE_SCHEMA || !c.entries || typeof c.entries !== 'object') return undefined
    return { schema: PROBE_SCHEMA, entries: Object.fromEntries(Object.entries(c.entries).filter(([, e]) => isEntry(e))) }
  } catch (err) {
    log('probe cache %s unusable: %s', file, (err as Error).message)
    return undefined
  }
}

async function writeCache(file: string, cache: CacheFile | undefined, key: { realpath: string; size: number; mtimeMs: number }, probe: Probe): Promise<void> {
  if (key.size < 0) return
  const next: CacheFile = { schema: PROBE_SCHEMA, entries: { ...cache?.entries, [key.realpath]: { size: key.size, mtimeMs: key.mtimeMs, ...probe } } }
  try {
    await writeFileAtomic(file, JSON.stringify(next, null, 1) + '\n')
  } catch (err) {
    // The probe stands without the cache; the next build probes again.
    log('probe cache %s not written: %s', file, (err as Error).message)
  }
}
