/**
 * Crash safety and concurrency of the embedded registry (issue 14, acceptance 2 and the PGlite lock): a
 * `registry sync` SIGKILLed at 10 random instants, then one sync, gives the registry a fresh sync of the
 * same store gives; two processes on one embedded registry take turns, and one that cannot get its turn
 * in time exits 5.
 */
import { spawn } from 'node:child_process'
import { cpSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ModelStore } from '../../src/publish/store.js'
import { openRegistry, syncStore, withRegistry, type Queryable } from '../../src/registry/index.js'
import { cli, envelope, makeTemp, removeTemps, runJs } from '../helpers/store-helpers.js'
import { postgresAvailable, startPostgres, type PgCluster } from '../helpers/postgres.js'

let base: string
let source: string
let pg: PgCluster | undefined

beforeAll(async () => {
  base = makeTemp('mf-registry-crash-')
  source = join(base, 'source')
  const store = new ModelStore(source)
  // Enough versions that a sync takes a while to kill inside: 6 agents x 8 versions x 4 files.
  for (let a = 0; a < 6; a++) {
    for (let v = 0; v < 8; v++) {
      const dir = await store.stage(`agent${a}`, `v${v}`)
      for (let f = 0; f < 4; f++) writeFileSync(join(dir, `file${f}.bin`), `agent${a} v${v} file${f}`)
      writeFileSync(join(dir, 'config.json'), JSON.stringify({ architectures: ['BertModel'], model_type: 'bert', max_position_embeddings: 512 }))
      await store.finalize(`agent${a}`, `v${v}`)
    }
    await store.promote(`agent${a}`, 'v3', 'production')
    await store.promote(`agent${a}`, 'v5', 'production')
  }
  await store.prune('agent0', { keep: 5 })
}, 120_000)

afterAll(() => removeTemps())

/** Every row of every table, in order, with the store's root written as <store> and clock columns left out. */
async function dump(db: Queryable, root: string): Promise<string> {
  const tables: Record<string, string> = {
    models: 'select id, name, vendor, description, created_at from models order by id',
    model_versions: 'select id, model_id, version, state, capabilities, default_parameters, metrics, tags, checksum, checksum_algorithm, store, path, created_at, gone_at is null as here from model_versions order by id',
    model_artifacts: 'select * from model_artifacts order by model_version_id, path',
    aliases: 'select model_id, alias, model_version_id from aliases order by model_id, alias',
    events: 'select * from events order by id',
  }
  const out: Record<string, unknown> = {}
  for (const [t, q] of Object.entries(tables)) out[t] = await db.query(q)
  return JSON.stringify(out).replaceAll(root, '<store>')
}

function runSync(store: string, env: Record<string, string> = {}): { child: ReturnType<typeof spawn>; done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string }> } {
  const child = spawn(process.execPath, [runJs, 'registry', 'sync', '--store', store, '--json'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  child.stdout!.on('data', (d: Buffer) => { stdout += d.toString() })
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout })))
  return { child, done }
}

describe('embedded registry under SIGKILL and contention', () => {
  it.each(['embedded', 'server'] as const)('acceptance 2 (%s): 10 kills at random instants, then one sync, equals a fresh sync', async (kind) => {
    if (kind === 'server' && !postgresAvailable()) return
    const url = (name: string): Record<string, string> => {
      if (kind === 'embedded') return {}
      return { MODELFORGE_REGISTRY_URL: pg!.url(name) }
    }
    if (kind === 'server') {
      pg = await startPostgres()
      pg.createDatabase('fresh')
      pg.createDatabase('killed')
    }
    try {
      const fresh = join(base, `fresh-${kind}`)
      cpSync(source, fresh, { recursive: true, verbatimSymlinks: true })
      const t0 = Date.now()
      const first = await runSync(fresh, url('fresh')).done
      expect(first.code, first.stdout).toBe(0)
      const freshTarget = { store: fresh, url: url('fresh').MODELFORGE_REGISTRY_URL }
      const expected = await withRegistry(freshTarget, (db) => dump(db, fresh))

      const killed = join(base, `killed-${kind}`)
      cpSync(source, killed, { recursive: true, verbatimSymlinks: true })
      // The whole CLI run, start-up included, is the window: kills land anywhere from start-up to the last agent.
      const window = Date.now() - t0
      let seed = 20261203
      const random = (): number => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32)
      const outcomes: string[] = []
      for (let i = 0; i < 10; i++) {
        const { child, done } = runSync(killed, url('killed'))
        const timer = setTimeout(() => child.kill('SIGKILL'), 200 + random() * window)
        const r = await done
        clearTimeout(timer)
        outcomes.push(r.signal ?? `exit ${r.code}`)
        // A sync that ran to its end must have succeeded: a kill is never allowed to break the next one.
        if (r.signal === null) expect(r.code, `after ${outcomes.join(', ')}: ${r.stdout}`).toBe(0)
      }
      expect(outcomes.filter((o) => o === 'SIGKILL').length, outcomes.join(', ')).toBeGreaterThanOrEqual(5)
      const r = await runSync(killed, url('killed')).done
      expect(r.code, r.stdout).toBe(0)
      expect(await withRegistry({ store: killed, url: url('killed').MODELFORGE_REGISTRY_URL }, (db) => dump(db, killed))).toBe(expected)
      const status = envelope(cli(['registry', 'status', '--store', killed, '--json'], { env: url('killed') }))
      expect(status.result.inSync).toBe(true)
    } finally {
      pg?.remove()
      pg = undefined
    }
  }, 300_000)

  it('two processes on one embedded registry take turns; one that cannot get its turn in time exits 5', async () => {
    const store = join(base, 'turns')
    cpSync(source, store, { recursive: true, verbatimSymlinks: true })
    await syncStore({ store })
    const a = runSync(store)
    const b = runSync(store)
    const [ra, rb] = await Promise.all([a.done, b.done])
    expect([ra.code, rb.code]).toEqual([0, 0])
    const changed = [JSON.parse(ra.stdout).result.changed, JSON.parse(rb.stdout).result.changed]
    expect(changed).toEqual([0, 0])

    // This process holds the registry: a CLI with no patience exits 5; a patient one waits for its turn.
    const db = await openRegistry({ store })
    let released = false
    try {
      const impatient = cli(['registry', 'status', '--store', store, '--json'], { env: { MODELFORGE_REGISTRY_LOCK_TIMEOUT: '0' } })
      expect(impatient.code).toBe(5)
      expect(envelope(impatient).error).toMatchObject({ code: 'REGISTRY_LOCKED' })
      expect(envelope(impatient).error!.message).toMatch(new RegExp(`in use by pid ${process.pid}`))
      const patient = runSync(store, { MODELFORGE_REGISTRY_LOCK_TIMEOUT: '60' })
      await new Promise((r) => setTimeout(r, 1000))
      await db.close()
      released = true
      const rp = await patient.done
      expect(rp.code).toBe(0)
    } finally {
      if (!released) await db.close()
    }
  }, 120_000)
})
