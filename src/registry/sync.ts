/**
 * registry sync: reconciles the registry with the store it indexes, from the manifests, the channel links
 * and the audit log (docs/registry.md). Each agent is written in one transaction under an advisory lock
 * on its name, so a sync killed at any instant leaves every agent as it was or as it should be, two syncs at
 * once take turns per agent, and the next sync finishes the work. Every write is an upsert that changes a
 * row only when a value differs: a second sync of an unchanged store changes nothing.
 */
import { createHash } from 'node:crypto'
import { hostname } from 'node:os'
import { readAudit, type AuditRecord } from '../publish/audit.js'
import { ModelStore, type VersionInfo } from '../publish/store.js'
import { type StepReporter } from '../lib/progress.js'
import { debugLog } from '../lib/debug.js'
import { modelforgeVersion } from '../lib/version.js'
import { type Queryable, type RegistryDb } from './db.js'
import { deriveFacts, type VersionFacts } from './derive.js'
import { eventId, modelId, versionId } from './ids.js'
import { SCHEMA_VERSION } from './migrations.js'

const log = debugLog('registry')

/** The alias whose departure tags the version it left `archived` (MLflow-style auto-demotion). */
export const ARCHIVING_ALIAS = 'production'

export interface SyncCounts {
  models: number
  versionsAdded: number
  versionsUpdated: number
  versionsGone: number
  artifacts: number
  aliases: number
  events: number
}

export interface SyncResult extends SyncCounts {
  registry: { kind: 'embedded' | 'server'; location: string }
  store: string
  agents: string[]
  /** Rows written in all: 0 when the registry already matched the store. */
  changed: number
  /** Versions whose manifest could not be read: listed, not indexed. */
  skipped: { agent: string; version: string; reason: string }[]
  /** Agents whose fingerprint matched the registry's, so nothing of them was read further or written. */
  unchanged: string[]
  durationMs: number
}

export interface SyncOptions {
  /** Only these agents (a store write's change events); default every agent, and agents gone from the store. */
  agents?: string[]
  /** Rewrite every agent, even those whose fingerprint says the registry already holds them (after rows were edited by hand). */
  full?: boolean
  step?: StepReporter
}

/** The store as the registry records it: the host and root, so a server shared by stores tells them apart. */
export function storeKey(root: string): string {
  return `${hostname()}:${root}`
}

interface AgentSnapshot {
  agent: string
  versions: { info: VersionInfo; facts: VersionFacts; checksumAlgorithm: string | null }[]
  channels: { channel: string; version: string }[]
  audit: AuditRecord[]
  skipped: SyncResult['skipped']
}

async function snapshot(store: ModelStore, agent: string, audit: AuditRecord[]): Promise<AgentSnapshot> {
  const skipped: SyncResult['skipped'] = []
  const versions: AgentSnapshot['versions'] = []
  for (const { info, parsed } of await store.versionManifests(agent)) {
    if (!parsed) {
      skipped.push({ agent, version: info.version, reason: info.manifestError ?? 'manifest.json could not be read' })
      continue
    }
    const algorithm = parsed.kind === 'v1' ? parsed.manifest.checksum_algorithm : 'legacy-python-sha256'
    versions.push({ info, facts: deriveFacts(info.path, parsed.manifest, parsed.kind === 'legacy'), checksumAlgorithm: algorithm })
  }
  const channels = Object.entries(store.channels(agent))
    .filter((e): e is [string, string] => e[1] !== null)
    .map(([channel, version]) => ({ channel, version }))
  return { agent, versions, channels, audit, skipped }
}

/**
 * The versions the archiving alias left, from the audit log in order: each move of `production` away
 * from a version archives it (an event at the move's time); the tag stays unless production is back on it.
 */
function archivals(snap: AgentSnapshot): { events: { version: string; record: AuditRecord }[]; tagged: Set<string> } {
  const events: { version: string; record: AuditRecord }[] = []
  for (const r of snap.audit) {
    if (r.channel !== ARCHIVING_ALIAS || typeof r.previous !== 'string' || r.previous === r.version) continue
    events.push({ version: r.previous, record: r })
  }
  const now = snap.channels.find((c) => c.channel === ARCHIVING_ALIAS)?.version
  return { events, tagged: new Set(events.map((e) => e.version).filter((v) => v !== now)) }
}

const json = (v: unknown): string => JSON.stringify(v)

/**
 * What an agent's rows are written from: the store's fingerprint of its versions and channels, its audit
 * records, the store it is synced from and the code deriving the rows (a new modelforge may derive more).
 */
function agentFingerprint(store: ModelStore, key: string, agent: string, audit: AuditRecord[]): string {
  return createHash('sha256').update(json([modelforgeVersion(), SCHEMA_VERSION, key, store.fingerprint(agent), audit])).digest('hex')
}

async function writeAgent(tx: Queryable, store: string, snap: AgentSnapshot, fingerprint: string, counts: SyncCounts): Promise<void> {
  const mid = modelId(snap.agent)
  await tx.query('select pg_advisory_xact_lock(hashtextextended($1, 0))', [`modelforge/model/${snap.agent}`])
  const latest = snap.versions.at(-1)?.facts
  const firstSeen = snap.versions[0]?.info.created_at ?? new Date(0).toISOString()
  const m = await tx.query(
    `insert into models (id, name, vendor, description, created_at, updated_by)
     values ($1, $2, $3, $4, $5, $6)
     on conflict (id) do update set vendor = excluded.vendor, description = excluded.description, created_at = excluded.created_at, updated_by = excluded.updated_by, updated_at = now()
     where (models.vendor, models.description, models.created_at) is distinct from (excluded.vendor, excluded.description, excluded.created_at)
     returning id`,
    [mid, snap.agent, latest?.vendor ?? null, latest?.description ?? null, firstSeen, 'modelforge registry sync'],
  )
  counts.models += m.length

  const { events: archived, tagged } = archivals(snap)
  // One statement per table and agent, the rows as one JSON parameter (jsonb_to_recordset): a thousand
  // versions are a handful of round trips, and nothing of them is ever SQL text.
  const rows = snap.versions.map((v) => ({
    id: versionId(snap.agent, v.info.version), model_id: mid, version: v.info.version, capabilities: v.facts.capabilities,
    default_parameters: v.facts.defaultParameters, metrics: v.facts.metrics, tags: tagged.has(v.info.version) ? { archived: true } : {},
    checksum: v.info.checksum, checksum_algorithm: v.checksumAlgorithm, store, path: v.info.path, created_at: v.info.created_at,
  }))
  const written = rows.length === 0 ? [] : await tx.query<{ id: string; inserted: boolean }>(
    `insert into model_versions (id, model_id, version, state, capabilities, default_parameters, metrics, tags, checksum, checksum_algorithm, store, path, created_at, gone_at)
     select id, model_id, version, 'present', capabilities, default_parameters, metrics, tags, checksum, checksum_algorithm, store, path, created_at, null
     from jsonb_to_recordset($1::jsonb) as r(id uuid, model_id uuid, version text, capabilities jsonb, default_parameters jsonb, metrics jsonb, tags jsonb,
       checksum text, checksum_algorithm text, store text, path text, created_at timestamptz)
     on conflict (model_id, version) do update set state = 'present', capabilities = excluded.capabilities,
       default_parameters = excluded.default_parameters, metrics = excluded.metrics, tags = excluded.tags,
       checksum = excluded.checksum, checksum_algorithm = excluded.checksum_algorithm, store = excluded.store,
       path = excluded.path, created_at = excluded.created_at, gone_at = null, updated_at = now()
     where (model_versions.state, model_versions.capabilities, model_versions.default_parameters, model_versions.metrics,
            model_versions.tags, model_versions.checksum, model_versions.checksum_algorithm, model_versions.store,
            model_versions.path, model_versions.created_at)
       is distinct from (excluded.state, excluded.capabilities, excluded.default_parameters, excluded.metrics,
            excluded.tags, excluded.checksum, excluded.checksum_algorithm, excluded.store, excluded.path, excluded.created_at)
     returning id, (xmax = 0) as inserted`,
    [json(rows)],
  )
  for (const w of written) {
    if (w.inserted) counts.versionsAdded++
    else counts.versionsUpdated++
  }
  // A finalized version never changes, so its artifacts are written when its row is.
  const changedIds = new Set(written.map((w) => w.id))
  if (changedIds.size > 0) {
    await tx.query('delete from model_artifacts where model_version_id = any($1::uuid[])', [[...changedIds]])
    const artifacts = snap.versions
      .filter((v) => changedIds.has(versionId(snap.agent, v.info.version)))
      .flatMap((v) => v.facts.artifacts.map((a) => ({
        model_version_id: versionId(snap.agent, v.info.version), path: a.path, artifact_type: a.artifactType, sha256: a.sha256,
        size_bytes: a.sizeBytes, cache_path: a.cachePath, source_uri: a.sourceUri,
      })))
    if (artifacts.length > 0) {
      await tx.query(
        `insert into model_artifacts (model_version_id, path, artifact_type, sha256, size_bytes, cache_path, source_uri)
         select * from jsonb_to_recordset($1::jsonb) as r(model_version_id uuid, path text, artifact_type text, sha256 text, size_bytes bigint, cache_path text, source_uri text)`,
        [json(artifacts)],
      )
      counts.artifacts += artifacts.length
    }
  }

  const gone = await tx.query(
    `update model_versions set state = 'gone', gone_at = now(), updated_at = now()
     where model_id = $1 and store = $2 and state = 'present' and not (version = any($3::text[])) returning id`,
    [mid, store, snap.versions.map((v) => v.info.version)],
  )
  counts.versionsGone += gone.length

  const present = new Set(snap.versions.map((v) => v.info.version))
  const channels = snap.channels.filter((c) => present.has(c.version))
  if (channels.length > 0) {
    const r = await tx.query(
      `insert into aliases (model_id, alias, model_version_id)
       select $1, alias, model_version_id from jsonb_to_recordset($2::jsonb) as r(alias text, model_version_id uuid)
       on conflict (model_id, alias) do update set model_version_id = excluded.model_version_id, updated_at = now()
       where aliases.model_version_id is distinct from excluded.model_version_id returning alias`,
      [mid, json(channels.map((c) => ({ alias: c.channel, model_version_id: versionId(snap.agent, c.version) })))],
    )
    counts.aliases += r.length
  }
  const dropped = await tx.query('delete from aliases where model_id = $1 and not (alias = any($2::text[])) returning alias', [mid, channels.map((c) => c.channel)])
  counts.aliases += dropped.length

  const events = [
    ...snap.audit.map((r) => ({ id: eventId(r), time: r.time, action: r.op, version: r.version ?? null, alias: r.channel ?? null, actor: `${r.user}@${r.host}`, details: r })),
    ...archived.map(({ version, record }) => ({
      id: eventId({ archived: version, by: eventId(record) }),
      time: record.time,
      action: 'archive',
      version,
      alias: ARCHIVING_ALIAS,
      actor: `${record.user}@${record.host}`,
      details: { reason: `${ARCHIVING_ALIAS} moved to ${record.version}`, by: eventId(record) },
    })),
  ]
  counts.events += await insertEvents(tx, snap.agent, events)
  // Bookkeeping, not counted as a change: the next sync that computes this fingerprint skips the agent.
  await tx.query(
    `insert into sync_state (model_id, fingerprint, skipped) values ($1, $2, $3::jsonb)
     on conflict (model_id) do update set fingerprint = excluded.fingerprint, skipped = excluded.skipped, synced_at = now()`,
    [mid, fingerprint, json(snap.skipped)],
  )
}

interface EventRow { id: string; time: string; action: string; version: string | null; alias: string | null; actor: string; details: unknown }

async function insertEvents(tx: Queryable, model: string | null, events: EventRow[]): Promise<number> {
  if (events.length === 0) return 0
  const r = await tx.query(
    `insert into events (id, time, action, model_name, version, alias, actor, details)
     select id, time, action, $1, version, alias, actor, details
     from jsonb_to_recordset($2::jsonb) as e(id text, time timestamptz, action text, version text, alias text, actor text, details jsonb)
     on conflict (id) do nothing returning id`,
    [model, json(events)],
  )
  return r.length
}

export async function syncRegistry(db: RegistryDb, storeRoot: string, options: SyncOptions = {}): Promise<SyncResult> {
  const started = Date.now()
  const store = new ModelStore(storeRoot, { strict: false })
  const key = storeKey(store.root)
  const all = options.agents === undefined
  const listed = await store.agents()
  const agents = all ? listed : [...new Set(options.agents)].filter((a) => listed.includes(a))
  const counts: SyncCounts = { models: 0, versionsAdded: 0, versionsUpdated: 0, versionsGone: 0, artifacts: 0, aliases: 0, events: 0 }
  const skipped: SyncResult['skipped'] = []
  const unchanged: string[] = []
  const audit = new Map<string | undefined, AuditRecord[]>()
  for (const r of readAudit(store.root)) {
    const list = audit.get(r.agent)
    if (list) list.push(r)
    else audit.set(r.agent, [r])
  }
  // What each agent was last synced from; an agent whose fingerprint is the same has nothing to write.
  const fingerprints = new Map(agents.map((a) => [a, agentFingerprint(store, key, a, audit.get(a) ?? [])]))
  const seen = new Map(
    options.full === true || agents.length === 0 ? [] : (await db.query<{ model_id: string; fingerprint: string; skipped: SyncResult['skipped'] }>(
      'select model_id, fingerprint, skipped from sync_state where model_id = any($1::uuid[])', [agents.map((a) => modelId(a))],
    )).map((r) => [r.model_id, r]),
  )
  for (const [i, agent] of agents.entries()) {
    const fingerprint = fingerprints.get(agent)!
    const last = seen.get(modelId(agent))
    if (last?.fingerprint === fingerprint) {
      unchanged.push(agent)
      skipped.push(...last.skipped)
      continue
    }
    options.step?.title(`Syncing ${agent} (${i + 1} of ${agents.length})`)
    const snap = await snapshot(store, agent, audit.get(agent) ?? [])
    skipped.push(...snap.skipped)
    await db.transaction((tx) => writeAgent(tx, key, snap, fingerprint, counts))
  }
  // Agents removed from the store (every version deleted), and agents a store write named that are gone.
  const vanished = all ? null : [...new Set(options.agents)].filter((a) => !listed.includes(a))
  await db.transaction(async (tx) => {
    const gone = await tx.query(
      `update model_versions v set state = 'gone', gone_at = now(), updated_at = now()
       from models m where m.id = v.model_id and v.store = $1 and v.state = 'present'
         and ${vanished === null ? 'not (m.name = any($2::text[]))' : 'm.name = any($2::text[])'}
       returning v.id`,
      [key, vanished === null ? listed : vanished],
    )
    counts.versionsGone += gone.length
    // An agent restored later with the very same bytes must be written again, not skipped.
    if (gone.length > 0) await tx.query('delete from sync_state where model_id in (select model_id from model_versions where id = any($1::uuid[]))', [gone.map((g) => g.id)])
    const storeWide = audit.get(undefined) ?? []
    counts.events += await insertEvents(tx, null, storeWide.map((r) => ({ id: eventId(r), time: r.time, action: r.op, version: null, alias: null, actor: `${r.user}@${r.host}`, details: r })))
  })
  const changed = counts.models + counts.versionsAdded + counts.versionsUpdated + counts.versionsGone + counts.artifacts + counts.aliases + counts.events
  log(`registry sync of ${store.root}: ${changed} rows written`)
  return { registry: { kind: db.kind, location: db.location }, store: store.root, agents, ...counts, changed, skipped, unchanged, durationMs: Date.now() - started }
}

