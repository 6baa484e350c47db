/**
 * What the registry answers: list, show, search. Every value reaches SQL as a $n parameter; the only text
 * chosen by input is the sort direction, picked from two fixed fragments.
 */
import { NotFoundError, UsageError } from '../lib/errors.js'
import { type Queryable } from './db.js'

export interface ModelRow {
  agent: string
  vendor: string | null
  description: string | null
  versions: number
  gone: number
  aliases: Record<string, string>
  updatedAt: string
}

export interface VersionRow {
  agent: string
  version: string
  state: 'present' | 'gone'
  aliases: string[]
  capabilities: Record<string, unknown>
  metrics: Record<string, unknown>
  tags: Record<string, unknown>
  defaultParameters: Record<string, unknown>
  checksum: string | null
  path: string
  store: string
  createdAt: string
  goneAt: string | null
  /** The value sorted on (search --sort), when there was one. */
  sortValue?: number | null
}

export interface ArtifactInfo {
  path: string
  artifactType: string
  sha256: string
  sizeBytes: number
  cachePath: string | null
  sourceUri: string | null
}

export interface AvailabilityRow {
  nodeId: string
  status: string
  lastCheckedAt: string
  details: Record<string, unknown>
}

export interface EventRow {
  time: string
  action: string
  version: string | null
  alias: string | null
  actor: string | null
}

export interface VersionDetail extends VersionRow {
  artifacts: ArtifactInfo[]
  availability: AvailabilityRow[]
  events: EventRow[]
}

const iso = (v: unknown): string => (v instanceof Date ? v.toISOString() : String(v))

export async function listModels(db: Queryable, agent?: string): Promise<ModelRow[]> {
  const rows = await db.query<{ name: string; vendor: string | null; description: string | null; present: number; gone: number; aliases: Record<string, string> | null; updated_at: unknown }>(
    `select m.name, m.vendor, m.description, m.updated_at,
       (select count(*)::int from model_versions v where v.model_id = m.id and v.state = 'present') as present,
       (select count(*)::int from model_versions v where v.model_id = m.id and v.state = 'gone') as gone,
       (select jsonb_object_agg(a.alias, av.version order by a.alias) from aliases a join model_versions av on av.id = a.model_version_id where a.model_id = m.id) as aliases
     from models m where ($1::text is null or m.name = $1) order by m.name`,
    [agent ?? null],
  )
  return rows.map((r) => ({ agent: r.name, vendor: r.vendor, description: r.description, versions: r.present, gone: r.gone, aliases: r.aliases ?? {}, updatedAt: iso(r.updated_at) }))
}

const VERSION_COLUMNS = `m.name, v.id, v.version, v.state, v.capabilities, v.metrics, v.tags, v.default_parameters, v.checksum, v.path, v.store, v.created_at, v.gone_at,
  coalesce((select array_agg(a.alias order by a.alias) from aliases a where a.model_version_id = v.id), '{}') as aliases`

interface RawVersion {
  name: string; id: string; version: string; state: 'present' | 'gone'; capabilities: Record<string, unknown>; metrics: Record<string, unknown>
  tags: Record<string, unknown>; default_parameters: Record<string, unknown>; checksum: string | null; path: string; store: string
  created_at: unknown; gone_at: unknown; aliases: string[]; sort_value?: string | number | null
}

function versionRow(r: RawVersion): VersionRow {
  return {
    agent: r.name, version: r.version, state: r.state, aliases: r.aliases, capabilities: r.capabilities, metrics: r.metrics, tags: r.tags,
    defaultParameters: r.default_parameters, checksum: r.checksum, path: r.path, store: r.store, createdAt: iso(r.created_at),
    goneAt: r.gone_at === null ? null : iso(r.gone_at),
    ...(r.sort_value !== undefined ? { sortValue: r.sort_value === null ? null : Number(r.sort_value) } : {}),
  }
}

function unknownAgent(agent: string): NotFoundError {
  return new NotFoundError(`The registry knows no agent ${agent}`, { code: 'REGISTRY_AGENT_NOT_FOUND', hint: 'modelforge registry list shows the agents it knows; run modelforge registry sync after a store write it missed.' })
}

/** The versions of an agent, newest first. */
export async function showModel(db: Queryable, agent: string): Promise<{ model: ModelRow; versions: VersionRow[] }> {
  const [model] = await listModels(db, agent)
  if (!model) throw unknownAgent(agent)
  const rows = await db.query<RawVersion>(`select ${VERSION_COLUMNS} from model_versions v join models m on m.id = v.model_id where m.name = $1 order by v.created_at desc, v.version desc`, [agent])
  return { model, versions: rows.map(versionRow) }
}

export async function showVersion(db: Queryable, agent: string, version: string): Promise<VersionDetail> {
  const rows = await db.query<RawVersion>(`select ${VERSION_COLUMNS} from model_versions v join models m on m.id = v.model_id where m.name = $1 and v.version = $2`, [agent, version])
  const raw = rows[0]
  if (!raw) {
    if ((await listModels(db, agent)).length === 0) throw unknownAgent(agent)
    throw new NotFoundError(`The registry knows no version ${version} of ${agent}`, { code: 'REGISTRY_VERSION_NOT_FOUND', hint: `modelforge registry show ${agent} lists its versions.` })
  }
  const artifacts = await db.query<{ path: string; artifact_type: string; sha256: string; size_bytes: string | number; cache_path: string | null; source_uri: string | null }>(
    'select path, artifact_type, sha256, size_bytes, cache_path, source_uri from model_artifacts where model_version_id = $1 order by path', [raw.id])
  const availability = await db.query<{ node_id: string; status: string; last_checked_at: unknown; details: Record<string, unknown> }>(
    'select node_id, status, last_checked_at, details from node_model_availability where model_version_id = $1 order by node_id', [raw.id])
  const events = await db.query<{ time: unknown; action: string; version: string | null; alias: string | null; actor: string | null }>(
    'select time, action, version, alias, actor from events where model_name = $1 and version = $2 order by time, id', [agent, version])
  return {
    ...versionRow(raw),
    artifacts: artifacts.map((a) => ({ path: a.path, artifactType: a.artifact_type, sha256: a.sha256, sizeBytes: Number(a.size_bytes), cachePath: a.cache_path, sourceUri: a.source_uri })),
    availability: availability.map((a) => ({ nodeId: a.node_id, status: a.status, lastCheckedAt: iso(a.last_checked_at), details: a.details })),
    events: events.map((e) => ({ time: iso(e.time), action: e.action, version: e.version, alias: e.alias, actor: e.actor })),
  }
}

export interface SearchQuery {
  /** jsonb containment over capabilities (parseCapabilities). */
  capabilities?: Record<string, unknown>
  agent?: string
  alias?: string
  sha256?: string
  artifactType?: string
  /** A node id: versions it has available (node_model_availability). */
  availableOn?: string
  /** A dotted path into metrics, e.g. performance.throughput_qps. */
  sort?: string
  order?: 'asc' | 'desc'
  limit?: number
  /** Versions gone from the store too (default: present only). */
  includeGone?: boolean
}

const PATH_SEGMENT = /^[A-Za-z0-9_-]{1,64}$/

/** `key=value` pairs as one jsonb object: dotted keys nest, values that read as JSON are JSON (true, 3, ["a"]), others strings. */
export function parseCapabilities(pairs: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const pair of pairs) {
    const eq = pair.indexOf('=')
    if (eq <= 0) throw new UsageError(`--capability ${pair} is not key=value`, { code: 'CAPABILITY_INVALID', hint: 'Write it as key=value, e.g. --capability task=text-classification or --capability gpu_required=false.' })
    const keys = pair.slice(0, eq).split('.')
    if (!keys.every((k) => PATH_SEGMENT.test(k))) throw new UsageError(`--capability ${pair}: the key must be letters, digits, _ and - (dots nest)`, { code: 'CAPABILITY_INVALID', hint: 'Write it as key=value, e.g. --capability build.target=trt.' })
    const text = pair.slice(eq + 1)
    let value: unknown = text
    try {
      const parsed = JSON.parse(text) as unknown
      if (typeof parsed !== 'string') value = parsed
    } catch {
      // A plain string: the common case (task=text-classification).
    }
    let at = out
    for (const k of keys.slice(0, -1)) at = (at[k] = typeof at[k] === 'object' && at[k] !== null ? at[k] : {}) as Record<string, unknown>
    at[keys.at(-1)!] = value
  }
  return out
}

export async function searchVersions(db: Queryable, q: SearchQuery): Promise<VersionRow[]> {
  if (q.sha256 !== undefined && !/^[0-9a-f]{64}$/.test(q.sha256)) {
    throw new UsageError(`--sha256 ${q.sha256} is not a SHA-256 (64 lowercase hex digits)`, { code: 'SEARCH_INVALID', hint: 'Copy it from manifest.json or sha256sum.' })
  }
  const path = q.sort === undefined ? null : q.sort.split('.')
  if (path && !path.every((s) => PATH_SEGMENT.test(s))) {
    throw new UsageError(`--sort ${q.sort} is not a dotted path into the metrics`, { code: 'SEARCH_INVALID', hint: 'For example --sort performance.throughput_qps or --sort validation.min_cosine (registry show lists a version\'s metrics).' })
  }
  const limit = q.limit ?? 50
  if (!Number.isSafeInteger(limit) || limit < 1) throw new UsageError(`--limit ${q.limit} is not a whole number >= 1`, { code: 'SEARCH_INVALID', hint: 'For example --limit 10.' })
  const direction = q.order === 'asc' ? 'asc' : 'desc'
  const rows = await db.query<RawVersion>(
    `select ${VERSION_COLUMNS},
       case when $8::text[] is null then null when jsonb_typeof(v.metrics #> $8::text[]) = 'number' then (v.metrics #>> $8::text[])::float8 end as sort_value
     from model_versions v join models m on m.id = v.model_id
     where v.capabilities @> $1::jsonb
       and ($2::text is null or m.name = $2)
       and ($3::text is null or exists (select 1 from aliases a where a.model_version_id = v.id and a.alias = $3))
       and ($4::text is null or exists (select 1 from model_artifacts f where f.model_version_id = v.id and f.sha256 = $4))
       and ($5::text is null or exists (select 1 from model_artifacts f where f.model_version_id = v.id and f.artifact_type = $5))
       and ($6::text is null or exists (select 1 from node_model_availability n where n.model_version_id = v.id and n.node_id = $6 and n.status = 'available'))
       and ($7::boolean or v.state = 'present')
     order by sort_value ${direction} nulls last, m.name, v.created_at desc, v.version
     limit $9`,
    [JSON.stringify(q.capabilities ?? {}), q.agent ?? null, q.alias ?? null, q.sha256 ?? null, q.artifactType ?? null, q.availableOn ?? null, q.includeGone ?? false, path, limit],
  )
  return rows.map((r) => {
    const v = versionRow(r)
    if (path === null) delete v.sortValue
    return v
  })
}
