/**
 * registry config: preferences, one jsonb value per dotted key. The policy keys of MODELFORGE_CONFIG
 * (download.allowedSources, download.requireApproval, ...) are checked by the same rules as the file
 * (lib/env.ts checkConfig), and when a registry is configured they apply to fetch over the file's.
 */
import { checkConfig, type ModelforgeConfig } from '../lib/env.js'
import { UsageError } from '../lib/errors.js'
import { type Queryable } from './db.js'

const KEY = /^[A-Za-z0-9_-]{1,64}(\.[A-Za-z0-9_-]{1,64}){0,7}$/

function checkKey(key: string): void {
  if (!KEY.test(key)) throw new UsageError(`${key} is not a preference key`, { code: 'PREFERENCE_INVALID', hint: 'Keys are dotted names of letters, digits, _ and -, such as download.allowedSources.' })
}

/** The value a user typed: JSON when it reads as JSON (true, 3, ["org/*"]), else the string itself. */
export function parsePreferenceValue(text: string): unknown {
  try {
    return JSON.parse(text) as unknown
  } catch {
    return text
  }
}

function nest(key: string, value: unknown): Record<string, unknown> {
  return key.split('.').reduceRight<unknown>((inner, k) => ({ [k]: inner }), value) as Record<string, unknown>
}

export async function getPreferences(db: Queryable, key?: string): Promise<Record<string, unknown>> {
  if (key !== undefined) checkKey(key)
  const rows = await db.query<{ key: string; value: unknown }>('select key, value from preferences where ($1::text is null or key = $1) order by key', [key ?? null])
  return Object.fromEntries(rows.map((r) => [r.key, r.value]))
}

export async function setPreference(db: Queryable, key: string, value: unknown): Promise<{ key: string; value: unknown; previous: unknown }> {
  checkKey(key)
  // The same checks as MODELFORGE_CONFIG, by key (CONFIG_INVALID names it); unknown keys are kept as they are.
  try {
    checkConfig(nest(key, value), 'registry config')
  } catch (err) {
    // A value typed on the command line is the user's input (exit 2), not a broken file's content.
    throw new UsageError((err as Error).message, { code: 'PREFERENCE_INVALID', hint: 'docs/configuration.md lists each key and the values it takes.' })
  }
  const before = await db.query<{ value: unknown }>('select value from preferences where key = $1', [key])
  await db.query(
    `insert into preferences (key, value) values ($1, $2::jsonb)
     on conflict (key) do update set value = excluded.value, updated_at = now()`,
    [key, JSON.stringify(value)],
  )
  return { key, value, previous: before[0]?.value ?? null }
}

/** The preferences as a MODELFORGE_CONFIG object (dotted keys nested), for fetch's policy. */
export async function policyConfig(db: Queryable): Promise<ModelforgeConfig> {
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(await getPreferences(db))) {
    const parts = key.split('.')
    let at = out
    for (const p of parts.slice(0, -1)) at = (at[p] = typeof at[p] === 'object' && at[p] !== null ? at[p] : {}) as Record<string, unknown>
    at[parts.at(-1)!] = value
  }
  return checkConfig(out, 'registry config')
}

/**
 * MODELFORGE_CONFIG with the registry's preferences over it, key by key (a key the registry sets wins; the
 * file's other keys stay), for fetch when the store has a registry.
 */
export function withPolicy(file: ModelforgeConfig, registry: ModelforgeConfig): ModelforgeConfig {
  const out: Record<string, unknown> = { ...file }
  for (const section of ['download', 'distribution', 'store'] as const) {
    if (file[section] || registry[section]) out[section] = { ...file[section], ...registry[section] }
  }
  return out as ModelforgeConfig
}
