/**
 * node_model_availability: what each node holds, as the nodes report it when they pull (loading, then
 * available or failed) and evict. A row names a version the registry knows (its id derives from agent and
 * version, so the builder's sync and the node's agree); a version it does not know yet has no row to write,
 * and setAvailability says so by returning false.
 */
import { type Queryable } from './db.js'
import { versionId } from './ids.js'

export type AvailabilityStatus = 'available' | 'loading' | 'failed' | 'evicted'

export async function setAvailability(db: Queryable, node: string, agent: string, version: string, status: AvailabilityStatus, details: Record<string, unknown> = {}): Promise<boolean> {
  const r = await db.query(
    `insert into node_model_availability (node_id, model_version_id, status, last_checked_at, details)
     select $1, id, $3, now(), $4::jsonb from model_versions where id = $2
     on conflict (node_id, model_version_id) do update set status = excluded.status, last_checked_at = now(), details = excluded.details
     returning node_id`,
    [node, versionId(agent, version), status, JSON.stringify(details)],
  )
  return r.length > 0
}

export async function getAvailability(db: Queryable, node: string): Promise<{ agent: string; version: string; status: AvailabilityStatus; details: Record<string, unknown> }[]> {
  return db.query(
    `select m.name as agent, v.version, a.status, a.details from node_model_availability a
     join model_versions v on v.id = a.model_version_id join models m on m.id = v.model_id
     where a.node_id = $1 order by m.name, v.version`,
    [node],
  )
}
