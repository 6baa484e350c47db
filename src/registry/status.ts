/**
 * registry status: what the registry holds, and what it is behind the store by (versions it lacks or
 * holds stale, versions gone from the store it still calls present, channels that moved, audit records
 * not mirrored), read from the store without writing anything. `registry sync` closes every gap listed.
 */
import { readAudit } from '../publish/audit.js'
import { ModelStore } from '../publish/store.js'
import { type RegistryDb } from './db.js'
import { eventId } from './ids.js'
import { schemaVersion } from './migrate.js'
import { storeKey } from './sync.js'

export interface RegistryStatus {
  registry: { kind: 'embedded' | 'server'; location: string; schema: number }
  store: string
  counts: { models: number; versions: number; gone: number; artifacts: number; aliases: number; events: number; nodes: number }
  behind: {
    /** agent/version in the store that the registry lacks, or holds with another checksum. */
    versions: string[]
    /** agent/version the registry calls present that the store no longer has. */
    gone: string[]
    /** agent channel -> version where the registry says otherwise. */
    aliases: string[]
    /** Audit records of the store not yet in the registry's events. */
    events: number
  }
  inSync: boolean
}

export async function registryStatus(db: RegistryDb, storeRoot: string): Promise<RegistryStatus> {
  const store = new ModelStore(storeRoot, { strict: false })
  const key = storeKey(store.root)
  const [c] = await db.query<Record<string, number>>(
    `select (select count(*)::int from models) as models,
       (select count(*)::int from model_versions where state = 'present') as versions,
       (select count(*)::int from model_versions where state = 'gone') as gone,
       (select count(*)::int from model_artifacts) as artifacts,
       (select count(*)::int from aliases) as aliases,
       (select count(*)::int from events) as events,
       (select count(distinct node_id)::int from node_model_availability) as nodes`,
  )
  const known = new Map(
    (await db.query<{ name: string; version: string; checksum: string | null }>(
      `select m.name, v.version, v.checksum from model_versions v join models m on m.id = v.model_id where v.store = $1 and v.state = 'present'`, [key],
    )).map((r) => [`${r.name}/${r.version}`, r.checksum]),
  )
  const aliases = new Map(
    (await db.query<{ name: string; alias: string; version: string }>(
      `select m.name, a.alias, v.version from aliases a join models m on m.id = a.model_id join model_versions v on v.id = a.model_version_id`,
    )).map((r) => [`${r.name} ${r.alias}`, r.version]),
  )
  const behind: RegistryStatus['behind'] = { versions: [], gone: [], aliases: [], events: 0 }
  const inStore = new Set<string>()
  for (const agent of await store.agents()) {
    for (const v of await store.versionInfos(agent)) {
      if (v.manifestError !== undefined) continue
      const id = `${agent}/${v.version}`
      inStore.add(id)
      if (!known.has(id) || known.get(id) !== v.checksum) behind.versions.push(id)
    }
    for (const [channel, version] of Object.entries(store.channels(agent))) {
      if (version !== null && inStore.has(`${agent}/${version}`) && aliases.get(`${agent} ${channel}`) !== version) behind.aliases.push(`${agent} ${channel} -> ${version}`)
    }
  }
  for (const id of known.keys()) if (!inStore.has(id)) behind.gone.push(id)
  const records = readAudit(store.root)
  if (records.length > 0) {
    const ids = records.map((r) => eventId(r))
    const [{ n } = { n: 0 }] = await db.query<{ n: number }>('select count(*)::int as n from events where id = any($1::text[])', [ids])
    behind.events = new Set(ids).size - n
  }
  const inSync = behind.versions.length === 0 && behind.gone.length === 0 && behind.aliases.length === 0 && behind.events === 0
  return {
    registry: { kind: db.kind, location: db.location, schema: await schemaVersion(db) },
    store: store.root,
    counts: c as RegistryStatus['counts'],
    behind,
    inSync,
  }
}
