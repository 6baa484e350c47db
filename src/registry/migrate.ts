/**
 * Brings a registry's schema up to this code's (migrations.ts), once per open. Applied in one transaction
 * under an advisory lock, so two processes opening a fresh server at once do not both create the tables;
 * a registry migrated by newer code is refused rather than written with an older idea of its tables.
 */
import { UsageError } from '../lib/errors.js'
import { type RegistryDb } from './db.js'
import { MIGRATIONS, SCHEMA_VERSION } from './migrations.js'

/** An arbitrary constant: the advisory lock key of modelforge's migrations on a shared server. */
const MIGRATION_LOCK = 7_260_412_611

export interface SchemaState {
  version: number
  applied: number[]
}

export async function schemaVersion(db: RegistryDb): Promise<number> {
  const rows = await db.query<{ v: number | null }>(`select max(version)::int as v from modelforge_schema`)
  return rows[0]?.v ?? 0
}

export async function migrate(db: RegistryDb): Promise<SchemaState> {
  await db.exec(`create table if not exists modelforge_schema (version int primary key, name text not null, applied_at timestamptz not null default now())`)
  const current = await schemaVersion(db)
  if (current > SCHEMA_VERSION) throw schemaNewer(db, current)
  if (current === SCHEMA_VERSION) return { version: current, applied: [] }
  return db.transaction(async (tx) => {
    await tx.query('select pg_advisory_xact_lock($1)', [MIGRATION_LOCK])
    const rows = await tx.query<{ v: number | null }>(`select max(version)::int as v from modelforge_schema`)
    const now = rows[0]?.v ?? 0
    if (now > SCHEMA_VERSION) throw schemaNewer(db, now)
    const applied: number[] = []
    for (const m of MIGRATIONS.filter((x) => x.version > now)) {
      for (const statement of splitStatements(m.sql)) await tx.query(statement)
      await tx.query('insert into modelforge_schema (version, name) values ($1, $2)', [m.version, m.name])
      applied.push(m.version)
    }
    return { version: SCHEMA_VERSION, applied }
  })
}

/** The statements of a migration, for a transaction's one-statement-per-query API (no ; inside strings here). */
function splitStatements(sql: string): string[] {
  return sql
    .split('\n')
    .filter((line) => !line.trimStart().startsWith('--'))
    .join('\n')
    .split(';')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
}

function schemaNewer(db: RegistryDb, found: number): UsageError {
  return new UsageError(`The registry at ${db.location} has schema ${found}, newer than this modelforge knows (${SCHEMA_VERSION})`, {
    code: 'REGISTRY_SCHEMA_NEWER',
    hint: 'Upgrade modelforge to the version that migrated it; nothing was written to the registry or the store.',
  })
}
