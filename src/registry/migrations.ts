/**
 * The registry's schema, as numbered SQL migrations applied in order (docs/registry.md). One set for PGlite
 * and for a PostgreSQL server: both are Postgres, so nothing here is dialect-specific. A migration, once
 * released, is never edited: a change is a new entry at the end.
 *
 * model_artifacts indexes sha256 without making it unique (the spec this follows makes it unique, which
 * fails as soon as two versions share a file such as the same tokenizer.json): a row is one use of
 * content by a version, keyed by (version, path), and "which versions hold this file" is an index lookup.
 */
export interface Migration {
  version: number
  name: string
  sql: string
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'models, versions, artifacts, aliases, availability, preferences, events',
    sql: `
create table models (
  id uuid primary key,
  name text not null unique,
  vendor text,
  description text,
  created_at timestamptz not null,
  updated_at timestamptz not null default now(),
  updated_by text
);

create table model_versions (
  id uuid primary key,
  model_id uuid not null references models(id) on delete cascade,
  version text not null,
  -- present: in the store it was synced from; gone: pruned or deleted there (its history stays).
  state text not null default 'present' check (state in ('present', 'gone')),
  capabilities jsonb not null default '{}',
  default_parameters jsonb not null default '{}',
  metrics jsonb not null default '{}',
  tags jsonb not null default '{}',
  checksum text,
  checksum_algorithm text,
  -- The store the version was synced from (host and root), so a server shared by several stores marks a
  -- version gone only for the store that lost it.
  store text not null,
  path text not null,
  created_at timestamptz not null,
  updated_at timestamptz not null default now(),
  gone_at timestamptz,
  unique (model_id, version)
);
create index model_versions_capabilities on model_versions using gin (capabilities jsonb_path_ops);

create table model_artifacts (
  model_version_id uuid not null references model_versions(id) on delete cascade,
  path text not null,
  artifact_type text not null,
  sha256 text not null,
  size_bytes bigint not null,
  cache_path text,
  source_uri text,
  primary key (model_version_id, path)
);
create index model_artifacts_sha256 on model_artifacts (sha256);
create index model_artifacts_type on model_artifacts (artifact_type);

create table aliases (
  model_id uuid not null references models(id) on delete cascade,
  alias text not null,
  model_version_id uuid not null references model_versions(id) on delete cascade,
  updated_at timestamptz not null default now(),
  primary key (model_id, alias)
);

create table node_model_availability (
  node_id text not null,
  model_version_id uuid not null references model_versions(id) on delete cascade,
  status text not null check (status in ('available', 'loading', 'failed', 'evicted')),
  last_checked_at timestamptz not null default now(),
  details jsonb not null default '{}',
  primary key (node_id, model_version_id)
);

create table preferences (
  key text primary key,
  value jsonb not null,
  updated_at timestamptz not null default now()
);

-- The store's audit log mirrored, and the registry's own lifecycle events (auto-demotion). id is derived
-- from the record itself, so mirroring the same log twice adds nothing.
create table events (
  id text primary key,
  time timestamptz not null,
  action text not null,
  model_name text,
  version text,
  alias text,
  actor text,
  details jsonb not null default '{}'
);
create index events_model_time on events (model_name, time);
`,
  },
  {
    version: 2,
    name: 'sync_state: what each agent was last synced from',
    sql: `
-- The fingerprint of the store's agent (its manifests' bytes, channels and audit records, the store, the
-- code) that the agent's rows were last written from, in the same transaction as they were: a sync that
-- computes the same fingerprint has nothing to write for the agent, and skips it. skipped keeps the
-- versions whose manifest could not be read then, so a skipping sync still reports them.
create table sync_state (
  model_id uuid primary key references models(id) on delete cascade,
  fingerprint text not null,
  skipped jsonb not null default '[]',
  synced_at timestamptz not null default now()
);
`,
  },
]

/** The newest schema this code knows. */
export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version
