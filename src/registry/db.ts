/**
 * One way to talk to the registry's Postgres, whichever it is: PGlite (Postgres compiled to WASM, in the
 * store at .modelforge/registry/) or a server through `pg`. Both run the same SQL with $n parameters:
 * nothing in src/registry builds SQL out of values.
 */
import { type PGlite } from '@electric-sql/pglite'
import type pg from 'pg'

export interface Queryable {
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>
}

export interface RegistryDb extends Queryable {
  readonly kind: 'embedded' | 'server'
  /** Where it is, for messages: the embedded directory, or the server URL without its password. */
  readonly location: string
  /** fn in one transaction: committed when it returns, rolled back when it throws (or the process dies). */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>
  /** Several statements in one call (migrations). */
  exec(sql: string): Promise<void>
  close(): Promise<void>
}

export function pgliteDb(db: PGlite, location: string, onClose: () => void): RegistryDb {
  const asQueryable = (q: Pick<PGlite, 'query'>): Queryable => ({
    async query<T>(sql: string, params: unknown[] = []): Promise<T[]> {
      return (await q.query<T>(sql, params)).rows
    },
  })
  return {
    kind: 'embedded',
    location,
    ...asQueryable(db),
    transaction: (fn) => db.transaction((tx) => fn(asQueryable(tx))),
    async exec(sql) {
      await db.exec(sql)
    },
    async close() {
      try {
        await db.close()
      } finally {
        onClose()
      }
    },
  }
}

export function serverDb(client: pg.Client, location: string): RegistryDb {
  const query = async <T>(sql: string, params: unknown[] = []): Promise<T[]> => (await client.query(sql, params)).rows as T[]
  // One client, one transaction at a time: pg queues queries on a client, so a second transaction
  // started while one is open would run inside it. Transactions here are chained instead.
  let chain: Promise<unknown> = Promise.resolve()
  return {
    kind: 'server',
    location,
    query,
    transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
      const run = async (): Promise<T> => {
        await client.query('begin')
        try {
          const result = await fn({ query })
          await client.query('commit')
          return result
        } catch (err) {
          await client.query('rollback').catch(() => undefined)
          throw err
        }
      }
      const next = chain.then(run, run)
      chain = next.catch(() => undefined)
      return next
    },
    async exec(sql) {
      await client.query(sql)
    },
    async close() {
      await client.end()
    },
  }
}
