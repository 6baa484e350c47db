/**
 * The model registry (docs/registry.md): an index of a store in PostgreSQL, embedded (PGlite) or a server.
 * withRegistry opens, runs and closes; recordStoreWrites is how a command or the pipeline keeps the
 * registry true after store writes, from publish's change events.
 */
import { onStoreChange } from '../publish/changes.js'
import { debugLog } from '../lib/debug.js'
import { ModelforgeError } from '../lib/errors.js'
import { type RegistryDb } from './db.js'
import { openRegistry, registryConfigured, type OpenOptions, type RegistryTarget } from './open.js'
import { syncRegistry, type SyncResult } from './sync.js'
import { setAvailability, type AvailabilityStatus } from './availability.js'
import { policyConfig, withPolicy } from './preferences.js'
import { loadConfig, type ModelforgeConfig } from '../lib/env.js'
import { planSteps, runStep, type Progress } from '../lib/progress.js'

export { embeddedDir, openRegistry, redactUrl, registryConfigured, registryUrl, type OpenOptions, type RegistryTarget } from './open.js'
export { type RegistryDb, type Queryable } from './db.js'
export { syncRegistry, storeKey, ARCHIVING_ALIAS, type SyncOptions, type SyncResult } from './sync.js'
export { listModels, showModel, showVersion, searchVersions, parseCapabilities, type SearchQuery, type ModelRow, type VersionRow, type VersionDetail } from './queries.js'
export { registryStatus, type RegistryStatus } from './status.js'
export { getPreferences, setPreference, parsePreferenceValue, policyConfig, withPolicy } from './preferences.js'
export { MIGRATIONS, SCHEMA_VERSION } from './migrations.js'
export { setAvailability, getAvailability, type AvailabilityStatus } from './availability.js'

const log = debugLog('registry')

export async function withRegistry<T>(target: RegistryTarget, fn: (db: RegistryDb) => Promise<T>, options: OpenOptions = {}): Promise<T> {
  const db = await openRegistry(target, options)
  try {
    return await fn(db)
  } finally {
    await db.close()
  }
}

/**
 * The policy fetch applies: MODELFORGE_CONFIG, with the registry's preferences over it when the store has
 * a registry (undefined without one: fetch reads the file itself). A configured registry that cannot be
 * read fails the fetch rather than dropping its policy.
 */
export async function fetchPolicy(target: RegistryTarget): Promise<ModelforgeConfig | undefined> {
  if (!registryConfigured(target)) return undefined
  const file = loadConfig()
  return withPolicy(file, await withRegistry(target, (db) => policyConfig(db)))
}

/** registry sync as the command runs it: the registry opened (the embedded one created when missing), then synced. */
export async function syncStore(target: RegistryTarget, options: { progress?: Progress; agents?: string[]; full?: boolean } = {}): Promise<SyncResult> {
  planSteps(options.progress, [{ id: 'open', title: 'Open the registry' }, { id: 'sync', title: `Sync ${target.store}` }])
  const db = await runStep(options.progress, 'open', () => openRegistry(target, { create: true }), { title: (d) => `Registry: ${d.location}` })
  try {
    return await runStep(options.progress, 'sync', (step) => syncRegistry(db, target.store, { agents: options.agents, full: options.full, step }), {
      title: (r) => `Synced ${r.agents.length} agents: ${r.changed} rows written`,
    })
  } finally {
    await db.close()
  }
}

/**
 * Runs a store write and then, when the store has a registry, syncs the agents the write changed (after
 * the write succeeded, in the same command). A registry that cannot be reached or written does not fail
 * the write: the result gets a warning, and `registry status` shows what is behind until the next sync.
 */
export async function recordStoreWrites<T extends object>(target: RegistryTarget, write: () => Promise<T>): Promise<T & { warnings?: string[] }> {
  const agents = new Set<string>()
  let changed = false
  const stop = onStoreChange((c) => {
    changed = true
    if (c.record.agent !== undefined) agents.add(c.record.agent)
  })
  let result: T
  try {
    result = await write()
  } finally {
    stop()
  }
  if (!changed || !registryConfigured(target)) return result
  try {
    const r = await withRegistry(target, (db) => syncRegistry(db, target.store, { agents: [...agents] }))
    log(`registry updated after the store write: ${r.changed} rows`)
    return result
  } catch (err) {
    const why = err instanceof ModelforgeError ? `${err.message} (${err.code})` : (err as Error).message
    const warning = `the store write succeeded, but the model registry was not updated: ${why}; run modelforge registry sync once it is reachable (registry status shows what is behind)`
    const withWarnings = result as T & { warnings?: string[] }
    return { ...withWarnings, warnings: [...(withWarnings.warnings ?? []), warning] }
  }
}

/**
 * A node's availability of a version, when the store has a registry (nothing otherwise). As with store
 * writes, a registry that fails does not fail the pull: the answer is a warning to show. `known: false`
 * when the registry has no row of the version yet (it gets one once the pulled version is synced).
 */
export async function reportAvailability(target: RegistryTarget, node: string, agent: string, version: string, status: AvailabilityStatus, details: Record<string, unknown> = {}): Promise<{ known: boolean; warning?: string }> {
  if (!registryConfigured(target)) return { known: false }
  try {
    return { known: await withRegistry(target, (db) => setAvailability(db, node, agent, version, status, details)) }
  } catch (err) {
    const why = err instanceof ModelforgeError ? `${err.message} (${err.code})` : (err as Error).message
    return { known: false, warning: `the model registry was not told that ${node} has ${agent}/${version} ${status}: ${why}` }
  }
}
