/**
 * Which registry a store has, and opening it: a server named by --registry or MODELFORGE_REGISTRY_URL, else
 * the embedded PGlite in <store>/.modelforge/registry/ when it exists (`registry sync` creates it). A store
 * without one pays nothing: PGlite and pg are imported only when a registry is opened.
 *
 * PGlite is one connection to files of its own: two processes on one directory would corrupt it, so an
 * embedded registry is opened under a lock file beside it (lib/lock.ts) that a second process waits for.
 */
import { existsSync, readdirSync, renameSync, rmSync, unlinkSync } from 'node:fs'
import { join } from 'node:path'
import { ConflictError, ExternalError, IntegrityError, NotFoundError, UsageError, errnoCode } from '../lib/errors.js'
import { ensureDirSync } from '../lib/fs.js'
import { waitForLock, type FileLock } from '../lib/lock.js'
import { debugLog } from '../lib/debug.js'
import { pgliteDb, serverDb, type RegistryDb } from './db.js'
import { migrate } from './migrate.js'

const log = debugLog('registry')

export interface RegistryTarget {
  /** The store root (absolute). */
  store: string
  /** A PostgreSQL URL (--registry); default MODELFORGE_REGISTRY_URL. */
  url?: string
}

export interface OpenOptions {
  /** Create the embedded registry when the store has none (registry sync). */
  create?: boolean
  /** How long to wait for another process's turn on an embedded registry (default 60 s, or MODELFORGE_REGISTRY_LOCK_TIMEOUT seconds). */
  lockTimeoutMs?: number
}

export function embeddedDir(store: string): string {
  return join(store, '.modelforge', 'registry')
}

function embeddedLockPath(store: string): string {
  return join(store, '.modelforge', 'registry.lock')
}

export function registryUrl(target: RegistryTarget): string | undefined {
  const url = target.url ?? process.env.MODELFORGE_REGISTRY_URL
  return url === '' ? undefined : url
}

/** Whether the store has a registry, without opening anything (the cost a store without one pays). */
export function registryConfigured(target: RegistryTarget): boolean {
  return registryUrl(target) !== undefined || existsSync(join(embeddedDir(target.store), 'PG_VERSION'))
}

/** The URL with its password (and any password-like query parameter) replaced, for every message and log. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url)
    if (u.password) u.password = '***'
    for (const k of [...u.searchParams.keys()]) if (/pass|secret|token|key/i.test(k)) u.searchParams.set(k, '***')
    return u.toString()
  } catch {
    return '<a malformed URL>'
  }
}

function parseServerUrl(url: string): URL {
  let u: URL
  try {
    u = new URL(url)
  } catch {
    throw new UsageError('The registry URL is not a URL', {
      code: 'REGISTRY_URL_INVALID',
      hint: 'Write it as postgres://user:password@host:5432/database (--registry or MODELFORGE_REGISTRY_URL).',
    })
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') {
    throw new UsageError(`The registry URL must be postgres:// or postgresql://, not ${u.protocol}//`, {
      code: 'REGISTRY_URL_INVALID',
      hint: 'Write it as postgres://user:password@host:5432/database; the embedded registry needs no URL.',
    })
  }
  if (!u.hostname) throw new UsageError('The registry URL names no host', { code: 'REGISTRY_URL_INVALID', hint: 'Write it as postgres://user:password@host:5432/database.' })
  return u
}

/** pg's connection failures, reworded: its own messages may carry the user name or the URL. */
function serverError(err: unknown, where: string): Error {
  const code = (err as { code?: string }).code
  if (code === '28P01' || code === '28000') {
    return new ExternalError(`The registry server at ${where} refused the credentials`, {
      code: 'REGISTRY_AUTH_FAILED',
      hint: 'Check the user and password in the registry URL (they are not shown here), and pg_hba.conf on the server.',
    })
  }
  if (code === '3D000') {
    return new ExternalError(`The registry server at ${where} has no such database`, {
      code: 'REGISTRY_UNREACHABLE',
      hint: 'Create it first (createdb), or name an existing one in the URL\'s path.',
    })
  }
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EHOSTUNREACH' || code === 'ETIMEDOUT' || code === 'ECONNRESET' || code === 'EAI_AGAIN') {
    return new ExternalError(`Could not reach the registry server at ${where} (${code})`, {
      code: 'REGISTRY_UNREACHABLE',
      hint: 'Is PostgreSQL running and listening there? Check the host and port of the registry URL.',
    })
  }
  return new ExternalError(`The registry server at ${where} failed: ${(err as Error).message}`, {
    code: 'REGISTRY_UNREACHABLE',
    hint: 'Check the server\'s log; the store is not changed by a registry failure.',
  })
}

async function openServer(url: string): Promise<RegistryDb> {
  parseServerUrl(url)
  const where = redactUrl(url)
  const { default: pg } = await import('pg')
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 })
  // An idle client whose server goes away emits 'error'; unhandled, it would end the process.
  client.on('error', (err) => log(`registry connection error: ${err.message}`))
  try {
    await client.connect()
  } catch (err) {
    await client.end().catch(() => undefined)
    throw serverError(err, where)
  }
  log(`registry: connected to ${where}`)
  return serverDb(client, where)
}

function lockTimeout(options: OpenOptions): number {
  if (options.lockTimeoutMs !== undefined) return options.lockTimeoutMs
  const env = process.env.MODELFORGE_REGISTRY_LOCK_TIMEOUT
  const seconds = env === undefined || env === '' ? 60 : Number(env)
  if (!Number.isFinite(seconds) || seconds < 0) {
    throw new UsageError(`MODELFORGE_REGISTRY_LOCK_TIMEOUT=${env} is not a number of seconds`, { code: 'REGISTRY_URL_INVALID', hint: 'Set it to a number of seconds, such as 60.' })
  }
  return seconds * 1000
}

async function openEmbedded(store: string, options: OpenOptions): Promise<RegistryDb> {
  const dir = embeddedDir(store)
  const exists = existsSync(join(dir, 'PG_VERSION'))
  if (!exists && !options.create) throw notConfigured(store)
  if (!exists && existsSync(dir)) {
    // A directory without PG_VERSION that is not empty is not a registry modelforge made.
    if (readdirSync(dir).length > 0) throw corrupt(dir, 'it holds files but no PG_VERSION')
  }
  ensureDirSync(join(store, '.modelforge'), { shared: true })
  const lock: FileLock = await waitForLock(embeddedLockPath(store), {
    timeoutMs: lockTimeout(options),
    pollMs: 100,
    record: { started_at: new Date().toISOString(), op: 'registry' },
    onTimeout: (holder) => new ConflictError(`The embedded registry of ${store} is in use by ${holder ? `pid ${holder.pid} on ${holder.host}` : 'another process'}`, {
      code: 'REGISTRY_LOCKED',
      hint: 'PGlite takes one process at a time: retry when it is done, or raise MODELFORGE_REGISTRY_LOCK_TIMEOUT (seconds).',
    }),
  })
  try {
    const { PGlite } = await import('@electric-sql/pglite')
    if (!existsSync(join(dir, 'PG_VERSION'))) {
      // Made aside and renamed into place, so a process killed while PGlite creates its files leaves no
      // half-made registry, only a directory the next creator (under this lock) removes.
      const fresh = `${dir}.new`
      rmSync(fresh, { recursive: true, force: true })
      const made = await PGlite.create(fresh)
      await made.close()
      rmSync(dir, { recursive: true, force: true })
      renameSync(fresh, dir)
      log(`registry: created embedded ${dir}`)
    }
    clearStalePostmasterPid(dir)
    let db
    try {
      db = await PGlite.create(dir)
    } catch (err) {
      if (errnoCode(err)?.startsWith('E')) throw err
      throw corrupt(dir, (err as Error).message)
    }
    log(`registry: opened embedded ${dir}`)
    return pgliteDb(db, dir, () => lock.release())
  } catch (err) {
    lock.release()
    throw err
  }
}

/**
 * PGlite's Postgres writes postmaster.pid when it starts and removes it when it closes. A process killed
 * between the file's creation and its first write leaves it empty, and Postgres then refuses the directory
 * for good ("lock file is empty"), so one SIGKILL at that instant would break every later command. The
 * file guards against a second server on the directory, which the registry lock already excludes: with
 * that lock held, any postmaster.pid is a dead process's and is removed.
 */
function clearStalePostmasterPid(dir: string): void {
  const pidFile = join(dir, 'postmaster.pid')
  try {
    unlinkSync(pidFile)
    log(`registry: removed ${pidFile}, left by a process that did not close the registry`)
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw err
  }
}

function corrupt(dir: string, why: string): IntegrityError {
  return new IntegrityError(`The embedded registry ${dir} cannot be opened: ${why}`, {
    code: 'REGISTRY_CORRUPT',
    hint: `The registry is an index of the store and can be rebuilt: move ${dir} aside and run modelforge registry sync.`,
  })
}

function notConfigured(store: string): NotFoundError {
  return new NotFoundError(`The store ${store} has no model registry`, {
    code: 'REGISTRY_NOT_CONFIGURED',
    hint: 'Create the embedded one with modelforge registry sync, or name a server with --registry postgres://... (or MODELFORGE_REGISTRY_URL).',
  })
}

/** Opens (and migrates) the store's registry; throws REGISTRY_NOT_CONFIGURED when it has none and create is not set. */
export async function openRegistry(target: RegistryTarget, options: OpenOptions = {}): Promise<RegistryDb> {
  const url = registryUrl(target)
  const db = url !== undefined ? await openServer(url) : await openEmbedded(target.store, options)
  try {
    await migrate(db)
    return db
  } catch (err) {
    await db.close().catch(() => undefined)
    if (db.kind === 'server' && (err as { code?: string }).code !== undefined && !(err instanceof Error && 'exitCode' in err)) throw serverError(err, db.location)
    throw err
  }
}
