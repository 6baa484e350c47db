/**
 * Environment and configuration (docs/cli.md). Read lazily, never at import time, so tests and
 * library callers can set variables per call.
 */
import { homedir, userInfo } from 'node:os'
import { join, resolve } from 'node:path'
import { IntegrityError, osFailure, UsageError } from './errors.js'
import { readJsonFileSync } from './json.js'

type Env = Record<string, string | undefined>

/** The store root: an explicit flag, else $MODEL_STORE_ROOT, else ./model-store. */
export function storeRoot(flag?: string, env: Env = process.env): string {
  return resolve(flag || env.MODEL_STORE_ROOT || 'model-store')
}

/** STRICT_MODEL_STORE=1: readers fail instead of falling back when the store or the agent is missing. */
export function strictStore(env: Env = process.env): boolean {
  return truthy(env.STRICT_MODEL_STORE)
}

/**
 * Hugging Face cache, found as huggingface_hub finds it (so both use the same directory): HF_HUB_CACHE
 * (or the older HUGGINGFACE_HUB_CACHE), else HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else
 * ~/.cache/huggingface/hub; a leading "~" is the home directory, as Python's expanduser makes it.
 */
export function hubCacheDir(flag?: string, env: Env = process.env): string {
  const path = (p: string): string => resolve(p === '~' || p.startsWith('~/') ? join(homedir(), p.slice(1)) : p)
  if (flag) return path(flag)
  const hubCache = env.HF_HUB_CACHE || env.HUGGINGFACE_HUB_CACHE
  if (hubCache) return path(hubCache)
  if (env.HF_HOME) return join(path(env.HF_HOME), 'hub')
  return join(path(env.XDG_CACHE_HOME || '~/.cache'), 'huggingface', 'hub')
}

/** Where hubCacheDir took the directory from, for messages ("from HF_HUB_CACHE"). */
export function hubCacheDirOrigin(flag?: string, env: Env = process.env): string {
  if (flag) return 'from --cache-dir'
  if (env.HF_HUB_CACHE) return 'from HF_HUB_CACHE'
  if (env.HUGGINGFACE_HUB_CACHE) return 'from HUGGINGFACE_HUB_CACHE'
  if (env.HF_HOME) return 'from HF_HOME'
  return env.XDG_CACHE_HOME ? 'from XDG_CACHE_HOME' : 'the default'
}

/**
 * modelforge's own cache (the probe of a trtexec, TensorRT timing caches): $MODELFORGE_CACHE, else
 * $XDG_CACHE_HOME/modelforge, else ~/.cache/modelforge. Everything in it can be deleted; it is rebuilt.
 */
export function modelforgeCacheDir(env: Env = process.env): string {
  const path = (p: string): string => resolve(p === '~' || p.startsWith('~/') ? join(homedir(), p.slice(1)) : p)
  if (env.MODELFORGE_CACHE) return path(env.MODELFORGE_CACHE)
  return join(path(env.XDG_CACHE_HOME || '~/.cache'), 'modelforge')
}

/**
 * Where TensorRT timing caches live (one file per GPU and TensorRT version, reused by every build on this
 * machine): an explicit flag, else timing-cache/ in modelforgeCacheDir().
 */
export function timingCacheDir(flag?: string, env: Env = process.env): string {
  if (flag) return resolve(flag === '~' || flag.startsWith('~/') ? join(homedir(), flag.slice(1)) : flag)
  return join(modelforgeCacheDir(env), 'timing-cache')
}

/** As huggingface_hub reads it: HF_HUB_OFFLINE, else TRANSFORMERS_OFFLINE, true for 1/ON/YES/TRUE only. */
export function hubOffline(env: Env = process.env): boolean {
  return ['1', 'ON', 'YES', 'TRUE'].includes((env.HF_HUB_OFFLINE || env.TRANSFORMERS_OFFLINE || '').trim().toUpperCase())
}

export function hubEndpoint(env: Env = process.env): string {
  return (env.HF_ENDPOINT || 'https://huggingface.co').replace(/\/+$/, '')
}

export function hubToken(flag?: string, env: Env = process.env): string | undefined {
  return flag || env.HF_TOKEN || undefined
}

/** True when output must stay plain: not a TTY, CI set, or NO_COLOR. */
export function plainOutput(env: Env = process.env, stream: { isTTY?: boolean } = process.stderr): boolean {
  return !stream.isTTY || truthy(env.CI) || env.NO_COLOR !== undefined
}

function truthy(v: string | undefined): boolean {
  return v !== undefined && v !== '' && v !== '0' && v.toLowerCase() !== 'false'
}

export interface ModelforgeConfig {
  download?: {
    /** Globs over repo ids, e.g. "sentence-transformers/*". Absent: everything is allowed. */
    allowedSources?: string[]
    /** When true, fetching needs --yes. */
    requireApproval?: boolean
  }
  distribution?: {
    /** OCI registry hosts (host[:port], globs allowed) that store push and pull may talk to. Absent: any. */
    allowedRegistries?: string[]
  }
  store?: {
    /** prune's default keep count. */
    keep?: number
    /** A node cache's bound: after a pull, versions no channel points to are evicted, least recently used first, down to this. */
    maxBytes?: number
    /** finalize and import write the original Python ModelStore's checksum in `checksum` (see FinalizeOptions). */
    legacyChecksum?: boolean
  }
}

/**
 * The keys modelforge reads, with their checks: a wrong value is reported by its key (`store.keep`), the
 * way a user finds it in the file. docs/configuration.md lists the same keys.
 */
const CONFIG_KEYS: Record<string, { check: (v: unknown) => boolean; expected: string }> = {
  'download.allowedSources': { check: (v) => Array.isArray(v) && v.every((g) => typeof g === 'string'), expected: 'a list of glob strings, e.g. ["sentence-transformers/*"]' },
  'download.requireApproval': { check: (v) => typeof v === 'boolean', expected: 'true or false' },
  'distribution.allowedRegistries': { check: (v) => Array.isArray(v) && v.every((g) => typeof g === 'string'), expected: 'a list of registry hosts or globs, e.g. ["registry.internal:5000"]' },
  'store.maxBytes': { check: (v) => Number.isSafeInteger(v) && (v as number) >= 0, expected: 'a whole number of bytes >= 0, e.g. 50000000000' },
  'store.keep': { check: (v) => Number.isSafeInteger(v) && (v as number) >= 0, expected: 'a whole number >= 0, e.g. 3' },
  'store.legacyChecksum': { check: (v) => typeof v === 'boolean', expected: 'true or false' },
}

/** Throws CONFIG_INVALID (exit 4) naming the first key whose value is wrong; unknown keys are left alone. */
export function checkConfig(config: unknown, file = 'the MODELFORGE_CONFIG file'): ModelforgeConfig {
  const root = config as Record<string, Record<string, unknown> | undefined>
  for (const section of ['download', 'distribution', 'store']) {
    const v = root[section]
    if (v !== undefined && (typeof v !== 'object' || v === null || Array.isArray(v))) {
      throw new IntegrityError(`${section} in ${file} must be an object, got ${JSON.stringify(v)}`, { code: 'CONFIG_INVALID', details: { key: section, file } })
    }
  }
  for (const [key, { check, expected }] of Object.entries(CONFIG_KEYS)) {
    const [section, name] = key.split('.') as [string, string]
    const value = root[section]?.[name]
    if (value !== undefined && !check(value)) {
      throw new IntegrityError(`${key} in ${file} must be ${expected}, got ${JSON.stringify(value)}`, { code: 'CONFIG_INVALID', details: { key, file, value } })
    }
  }
  return config as ModelforgeConfig
}

/** MODELFORGE_CONFIG: a JSON file. A missing variable means defaults; a broken file or value is exit 4. */
export function loadConfig(env: Env = process.env): ModelforgeConfig {
  const file = env.MODELFORGE_CONFIG
  if (!file) return {}
  return checkConfig(readJsonFileSync<ModelforgeConfig>(file, {
    what: 'MODELFORGE_CONFIG file',
    expect: 'object',
    onError: (f) => f.kind === 'missing'
      ? new UsageError(`MODELFORGE_CONFIG names ${file}, which does not exist`, {
        code: 'CONFIG_NOT_FOUND',
        hint: 'Point MODELFORGE_CONFIG at a JSON file (docs/configuration.md), or unset it.',
      })
      : f.kind === 'unreadable'
        ? osFailure(f.cause, 'reading the MODELFORGE_CONFIG file', f.where)
        : new IntegrityError(f.message, {
        code: 'CONFIG_INVALID',
        hint: f.kind === 'syntax' ? 'Fix the JSON syntax; see docs/configuration.md for the format.' : 'See docs/configuration.md for the format.',
      }),
  }), `MODELFORGE_CONFIG file ${file}`)
}

/**
 * oclif takes the user's shell from $SHELL or, without it, from os.userInfo(), which throws for a uid with
 * no passwd entry (a container, a service account made as a bare uid; such accounts usually have no $SHELL
 * either): every command would fail as a bug before it starts. The CLI entry fills in a placeholder while
 * oclif loads its configuration, and the command takes it out again before it runs, so that nothing it
 * spawns inherits a $SHELL the user never had.
 */
let shellFilled = false

export function fillShellForOclif(env: Env = process.env): void {
  if (env.SHELL !== undefined || hasPasswdEntry()) return
  env.SHELL = 'unknown'
  shellFilled = true
}

export function restoreShell(env: Env = process.env): void {
  if (!shellFilled) return
  delete env.SHELL
  shellFilled = false
}

function hasPasswdEntry(): boolean {
  try {
    userInfo()
    return true
  } catch {
    return false
  }
}
