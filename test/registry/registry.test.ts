/**
 * The model registry, one suite run on both backends (issue 14, acceptance 1 to 4): the embedded PGlite in
 * the store and a real PostgreSQL 15 server started for the test. A toy store and a build-engine store
 * (trt target, the trtexec double) are synced, listed, shown and searched; syncs are idempotent; store
 * writes update the registry; production's departures archive; bad input is refused, the store untouched.
 */
import { cpSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createToyStore } from '../../src/toy/toy-store.js'
import { ModelStore } from '../../src/publish/store.js'
import {
  ARCHIVING_ALIAS, embeddedDir, listModels, openRegistry, parseCapabilities, recordStoreWrites, registryStatus, searchVersions,
  showModel, showVersion, syncRegistry, syncStore, withRegistry, getPreferences, setPreference, SCHEMA_VERSION, type RegistryTarget,
} from '../../src/registry/index.js'
import { type ModelforgeError } from '../../src/lib/errors.js'
import { DOUBLE } from '../helpers/build-helpers.js'
import { cli, envelope, makeTemp, removeTemps, repoRoot, snapshot } from '../helpers/store-helpers.js'
import { postgresAvailable, startPostgres, type PgCluster } from '../helpers/postgres.js'

let base: string
let toy: string
let engines: string
let pg: PgCluster | undefined

beforeAll(async () => {
  base = makeTemp('mf-registry-')
  toy = join(base, 'toy')
  await createToyStore(toy)
  engines = join(base, 'engines')
  const env = { TRTEXEC: DOUBLE, MODELFORGE_CACHE: join(base, 'cache'), PATH: `${process.execPath.replace(/\/node$/, '')}:/usr/bin:/bin`, HF_HUB_OFFLINE: '1' }
  for (const [agent, precision, version] of [['ranker', 'fp16', 'v1'], ['ranker', 'fp16', 'v2']] as const) {
    const r = cli(['build-engine', '--agent', agent, '--model-id', join(repoRoot, 'fixtures', 'hf-tiny', 'tiny-bert-classifier'), '--target', 'trt', '--precision', precision,
      '--output-version', version, '--force', '--store', engines, '--json'], { env })
    if (r.code !== 0) throw new Error(`build-engine failed: ${r.stdout}${r.stderr}`)
  }
  if (postgresAvailable()) pg = await startPostgres()
}, 240_000)

afterAll(() => {
  pg?.remove()
  removeTemps()
})

let dbCount = 0
/** A copy of a prepared store, with a target on the backend under test (a fresh database for the server). */
function fresh(kind: 'embedded' | 'server', from: string): RegistryTarget {
  const store = join(base, `${kind}-${++dbCount}`)
  cpSync(from, store, { recursive: true, verbatimSymlinks: true })
  if (kind === 'embedded') return { store }
  const db = `r${dbCount}`
  pg!.createDatabase(db)
  return { store, url: pg!.url(db) }
}

async function failure(p: Promise<unknown>): Promise<ModelforgeError> {
  const err = await p.then(() => undefined, (e: unknown) => e)
  expect(err, 'expected a failure').toBeDefined()
  return err as ModelforgeError
}

const BACKENDS = ['embedded', 'server'] as const

describe.each(BACKENDS)('registry on %s', (kind) => {
  const skip = kind === 'server' && !postgresAvailable()

  it.skipIf(skip)('acceptance 1: sync a toy store and a build-engine store; list, show, search by capability, alias, sha256, availability; sort by a metric', async () => {
    const t = fresh(kind, toy)
    const r = await syncStore(t)
    expect(r.versionsAdded).toBeGreaterThan(0)
    expect(r.skipped).toEqual([])
    const store = new ModelStore(t.store)
    const agents = await store.agents()
    await withRegistry(t, async (db) => {
      const models = await listModels(db)
      expect(models.map((m) => m.agent)).toEqual(agents)
      for (const m of models) expect(m.aliases.current).toBe(store.channels(m.agent).current)

      const agent = agents[0]!
      const current = store.channels(agent).current!
      const manifest = JSON.parse(readFileSync(join(store.versionDir(agent, current), 'manifest.json'), 'utf8')) as { files: { path: string; sha256: string; size: number }[]; checksum: string }
      const v = await showVersion(db, agent, current)
      expect(v).toMatchObject({ agent, version: current, state: 'present', aliases: ['current'], checksum: manifest.checksum })
      expect(v.artifacts.map((a) => [a.path, a.sha256, a.sizeBytes])).toEqual(manifest.files.map((f) => [f.path, f.sha256, f.size]).sort((a, b) => (a[0]! < b[0]! ? -1 : 1)))
      expect(v.artifacts.find((a) => a.path.endsWith('.onnx'))?.artifactType).toBe('onnx')
      expect(v.events.map((e) => e.action)).toContain('finalize')
      expect((await showModel(db, agent)).versions.length).toBe((await store.versions(agent)).length)

      // By sha256: a file of the version finds it (and every other version sharing it: sha256 is not unique).
      const bySha = await searchVersions(db, { sha256: manifest.files[0]!.sha256 })
      expect(bySha.map((x) => `${x.agent}/${x.version}`)).toContain(`${agent}/${current}`)
      expect(await searchVersions(db, { alias: 'current' })).toHaveLength(agents.length)
      const task = v.capabilities.task
      if (task !== undefined) {
        const byTask = await searchVersions(db, { capabilities: { task } })
        expect(byTask.length).toBeGreaterThan(0)
        for (const x of byTask) expect(x.capabilities.task).toBe(task)
      }
      expect(await searchVersions(db, { capabilities: { task: 'no-such-task' } })).toEqual([])

      // Availability: a node's row (the distribution issue writes these) is found by --available-on.
      await db.query(`insert into node_model_availability (node_id, model_version_id, status) select 'gpu-7', v.id, 'available' from model_versions v join models m on m.id = v.model_id where m.name = $1 and v.version = $2`, [agent, current])
      expect((await searchVersions(db, { availableOn: 'gpu-7' })).map((x) => `${x.agent}/${x.version}`)).toEqual([`${agent}/${current}`])
      expect(await searchVersions(db, { availableOn: 'gpu-8' })).toEqual([])
    })

    const e = fresh(kind, engines)
    await syncStore(e)
    await withRegistry(e, async (db) => {
      const v2 = await showVersion(db, 'ranker', 'v2')
      expect(v2.capabilities).toMatchObject({ task: 'text-classification', precision: 'fp16', target: 'trt', gpu_required: true, architecture: 'BertForSequenceClassification' })
      expect(v2.capabilities.compute_capability).toEqual(expect.any(String))
      expect(v2.capabilities.labels).toEqual(expect.any(Array))
      expect(v2.artifacts.find((a) => a.path === 'engine.plan')?.artifactType).toBe('tensorrt-engine')
      expect(v2.metrics).toMatchObject({ performance: { throughput_qps: expect.any(Number) }, validation: { passed: true } })
      const engines = await searchVersions(db, { capabilities: parseCapabilities(['gpu_required=true', 'precision=fp16']), artifactType: 'tensorrt-engine', sort: 'performance.throughput_qps' })
      expect(engines.map((x) => x.version).sort()).toEqual(['v1', 'v2'])
      const qps = engines.map((x) => x.sortValue!)
      expect(qps).toEqual([...qps].sort((a, b) => b - a))
      const asc = await searchVersions(db, { capabilities: { gpu_required: true }, sort: 'performance.throughput_qps', order: 'asc', limit: 1 })
      expect(asc).toHaveLength(1)
      expect(asc[0]!.sortValue).toBe(Math.min(...qps))
    })
  }, 120_000)

  it.skipIf(skip)('acceptance 2: a second sync changes nothing and skips every agent by its fingerprint; --full reads them anyway; status says in sync', async () => {
    const t = fresh(kind, toy)
    const store = new ModelStore(t.store)
    const agents = await store.agents()
    const agent = agents[0]!
    // A version whose manifest is not JSON is reported by every sync, also by one that skips its agent.
    mkdirSync(join(t.store, agent, 'versions', 'vbroken'))
    writeFileSync(join(t.store, agent, 'versions', 'vbroken', 'manifest.json'), '{')
    const first = await syncStore(t)
    expect(first.changed).toBeGreaterThan(0)
    expect(first.skipped).toEqual([expect.objectContaining({ agent, version: 'vbroken' })])
    await withRegistry(t, async (db) => {
      const again = await syncRegistry(db, t.store)
      expect(again).toMatchObject({ changed: 0, unchanged: agents, skipped: first.skipped })
      const s = await registryStatus(db, t.store)
      expect(s.inSync).toBe(true)
      expect(s.registry).toMatchObject({ kind, schema: SCHEMA_VERSION })

      // A row edited by hand: a plain sync trusts the fingerprint; --full reads the store and puts it right.
      const current = store.channels(agent).current!
      const metrics = (await showVersion(db, agent, current)).metrics
      await db.query(`update model_versions set metrics = '{"edited": true}' where version = $1 and model_id = (select id from models where name = $2)`, [current, agent])
      expect((await syncRegistry(db, t.store)).changed).toBe(0)
      expect(await syncRegistry(db, t.store, { full: true })).toMatchObject({ versionsUpdated: 1, unchanged: [] })
      expect((await showVersion(db, agent, current)).metrics).toEqual(metrics)

      // An agent taken out of the store and put back byte for byte (same mtimes): gone, then present again.
      const aside = join(base, `aside-${kind}`)
      renameSync(join(t.store, agent), aside)
      expect((await syncRegistry(db, t.store)).versionsGone).toBeGreaterThan(0)
      expect((await showVersion(db, agent, current)).state).toBe('gone')
      renameSync(aside, join(t.store, agent))
      expect((await syncRegistry(db, t.store)).versionsUpdated).toBeGreaterThan(0)
      expect((await showVersion(db, agent, current)).state).toBe('present')
      expect((await registryStatus(db, t.store)).inSync).toBe(true)
    })
  }, 120_000)

  it.skipIf(skip)('acceptance 3: store writes update the registry; production moving on archives the version it left; pruned versions are marked gone', async () => {
    const t = fresh(kind, engines)
    await syncStore(t)
    const store = new ModelStore(t.store)
    await recordStoreWrites(t, () => store.promote('ranker', 'v1', ARCHIVING_ALIAS))
    await recordStoreWrites(t, () => store.promote('ranker', 'v2', ARCHIVING_ALIAS))
    await withRegistry(t, async (db) => {
      const v1 = await showVersion(db, 'ranker', 'v1')
      expect(v1.tags).toEqual({ archived: true })
      expect(v1.events.map((e) => e.action)).toEqual(expect.arrayContaining(['promote', 'archive']))
      const v2 = await showVersion(db, 'ranker', 'v2')
      expect(v2.aliases).toEqual(['current', 'production'])
      expect(v2.tags).toEqual({})
      expect((await syncRegistry(db, t.store)).changed).toBe(0)
    })
    // A version written by hand beside: finalize, then delete of an older one.
    await recordStoreWrites(t, async () => {
      const dir = await store.stage('ranker', 'v3')
      writeFileSync(join(dir, 'model.onnx'), 'v3')
      return store.finalize('ranker', 'v3', { publish: false })
    })
    await recordStoreWrites(t, () => store.delete('ranker', 'v1'))
    await withRegistry(t, async (db) => {
      expect((await showVersion(db, 'ranker', 'v3')).state).toBe('present')
      const v1 = await showVersion(db, 'ranker', 'v1')
      expect(v1.state).toBe('gone')
      expect(v1.goneAt).not.toBeNull()
      expect(await searchVersions(db, { agent: 'ranker' })).toHaveLength(2)
      expect(await searchVersions(db, { agent: 'ranker', includeGone: true })).toHaveLength(3)
      expect((await registryStatus(db, t.store)).inSync).toBe(true)
    })
  }, 120_000)

  it.skipIf(skip)('acceptance 4: hostile search values are values, never SQL', async () => {
    const t = fresh(kind, toy)
    await syncStore(t)
    await withRegistry(t, async (db) => {
      for (const hostile of ["x'; drop table models; --", '"; select 1; "', "') or 1=1 --", 'a\\b\'c"d;e']) {
        expect(await searchVersions(db, { capabilities: { task: hostile }, alias: hostile, agent: hostile, artifactType: hostile, availableOn: hostile })).toEqual([])
        expect(await failure(showVersion(db, hostile, hostile))).toMatchObject({ code: 'REGISTRY_AGENT_NOT_FOUND', exitCode: 6 })
      }
      expect((await listModels(db)).length).toBeGreaterThan(0)
      expect(await failure(searchVersions(db, { sha256: "' or 1=1" }))).toMatchObject({ code: 'SEARCH_INVALID', exitCode: 2 })
      expect(await failure(searchVersions(db, { sort: 'a;drop' }))).toMatchObject({ code: 'SEARCH_INVALID', exitCode: 2 })
      expect(() => parseCapabilities(['no-equals'])).toThrow(/key=value/)
    })
  }, 120_000)

  it.skipIf(skip)('acceptance 4: a schema newer than the code is exit 2 with a hint, and nothing is written', async () => {
    const t = fresh(kind, toy)
    await syncStore(t)
    await withRegistry(t, (db) => db.query(`insert into modelforge_schema (version, name) values (99, 'from the future')`))
    const before = snapshot(t.store).filter((p) => !p.includes('.modelforge/registry'))
    const err = await failure(syncStore(t))
    expect(err).toMatchObject({ code: 'REGISTRY_SCHEMA_NEWER', exitCode: 2 })
    expect(err.message).toContain(`schema 99, newer than this modelforge knows (${SCHEMA_VERSION})`)
    expect(err.hint).toMatch(/Upgrade modelforge/)
    expect(snapshot(t.store).filter((p) => !p.includes('.modelforge/registry'))).toEqual(before)
  }, 120_000)

  it.skipIf(skip)('preferences: set, get, checked like MODELFORGE_CONFIG', async () => {
    const t = fresh(kind, toy)
    await syncStore(t)
    await withRegistry(t, async (db) => {
      expect(await setPreference(db, 'download.allowedSources', ['org/*'])).toMatchObject({ previous: null })
      expect(await getPreferences(db)).toEqual({ 'download.allowedSources': ['org/*'] })
      expect(await failure(setPreference(db, 'download.requireApproval', 'yes'))).toMatchObject({ code: 'PREFERENCE_INVALID', exitCode: 2 })
      expect(await failure(setPreference(db, "x'; drop", 1))).toMatchObject({ code: 'PREFERENCE_INVALID' })
    })
  }, 120_000)
})

describe('the server: connection failures', () => {
  const skip = !postgresAvailable()

  it.skipIf(skip)('wrong credentials: exit 3, the password never in the message', async () => {
    const url = pg!.url().replace(/:[^:@]+@/, ':wrong-pa55word@')
    const err = await failure(openRegistry({ store: toy, url }))
    expect(err).toMatchObject({ code: 'REGISTRY_AUTH_FAILED', exitCode: 3 })
    expect(`${err.message} ${err.hint}`).not.toMatch(/wrong-pa55word/)
    expect(err.message).toMatch(/:\*\*\*@127\.0\.0\.1/)
  })

  it.skipIf(skip)('a refused connection is exit 3; a malformed URL is exit 2', async () => {
    const dead = await failure(openRegistry({ store: toy, url: 'postgres://u:pw@127.0.0.1:1/db' }))
    expect(dead).toMatchObject({ code: 'REGISTRY_UNREACHABLE', exitCode: 3 })
    expect(dead.message).not.toMatch(/:pw@/)
    for (const bad of ['not a url', 'mysql://h/db', 'postgres://']) {
      expect(await failure(openRegistry({ store: toy, url: bad }))).toMatchObject({ code: 'REGISTRY_URL_INVALID', exitCode: 2 })
    }
  })

  it.skipIf(skip)('acceptance 3: with the server stopped a promote still succeeds and warns; the next sync catches up', async () => {
    const t = fresh('server', engines)
    await syncStore(t)
    pg!.stop()
    try {
      const store = new ModelStore(t.store)
      const r = await recordStoreWrites(t, () => store.promote('ranker', 'v1'))
      expect(r.version).toBe('v1')
      expect(store.channels('ranker').current).toBe('v1')
      expect(r.warnings?.join('\n')).toMatch(/the store write succeeded, but the model registry was not updated: .*REGISTRY_UNREACHABLE.*registry sync/)
    } finally {
      pg!.start()
    }
    await withRegistry(t, async (db) => {
      const s = await registryStatus(db, t.store)
      expect(s.behind.aliases).toEqual(['ranker current -> v1'])
      expect(s.inSync).toBe(false)
    })
    const caught = await syncStore(t)
    expect(caught.aliases).toBe(1)
    await withRegistry(t, async (db) => expect((await registryStatus(db, t.store)).inSync).toBe(true))
  }, 120_000)
})

describe('the embedded registry', () => {
  it('a store without one pays nothing: no directory is made, reads say how to create one (exit 6)', async () => {
    const store = join(base, 'bare')
    cpSync(toy, store, { recursive: true, verbatimSymlinks: true })
    const s = new ModelStore(store)
    const agent = (await s.agents())[0]!
    await recordStoreWrites({ store }, () => s.promote(agent, s.channels(agent).current!))
    expect(existsSync(embeddedDir(store))).toBe(false)
    expect(await failure(openRegistry({ store }))).toMatchObject({ code: 'REGISTRY_NOT_CONFIGURED', exitCode: 6 })
  })

  it('a corrupt embedded directory is exit 4 with how to rebuild, the store untouched', async () => {
    const t = fresh('embedded', toy)
    await syncStore(t)
    const dir = embeddedDir(t.store)
    for (const f of ['global/pg_control']) writeFileSync(join(dir, f), 'garbage')
    const before = snapshot(t.store).filter((p) => !p.includes('.modelforge/registry'))
    const err = await failure(openRegistry(t))
    expect(err).toMatchObject({ code: 'REGISTRY_CORRUPT', exitCode: 4 })
    expect(err.hint).toMatch(/move .* aside and run modelforge registry sync/)
    expect(snapshot(t.store).filter((p) => !p.includes('.modelforge/registry'))).toEqual(before)
    // Rebuilt as the hint says.
    rmSync(dir, { recursive: true })
    expect((await syncStore(t)).versionsAdded).toBeGreaterThan(0)
  }, 60_000)

  it('a registry whose last user was killed as Postgres wrote its postmaster.pid still opens', async () => {
    const t = fresh('embedded', toy)
    await syncStore(t)
    const pidFile = join(embeddedDir(t.store), 'postmaster.pid')
    // Empty: killed between the file's creation and its first write. Postgres alone refuses that for good.
    for (const left of ['', '-4', '-42\n/pglite/data\n']) {
      writeFileSync(pidFile, left)
      expect((await syncStore(t)).changed).toBe(0)
      expect(existsSync(pidFile)).toBe(false)
    }
  }, 60_000)

  it('a directory that is not a registry is refused, not overwritten', async () => {
    const store = join(base, 'notreg')
    cpSync(toy, store, { recursive: true, verbatimSymlinks: true })
    mkdirSync(embeddedDir(store), { recursive: true })
    writeFileSync(join(embeddedDir(store), 'mine.txt'), 'mine')
    expect(await failure(syncStore({ store }))).toMatchObject({ code: 'REGISTRY_CORRUPT' })
    expect(readFileSync(join(embeddedDir(store), 'mine.txt'), 'utf8')).toBe('mine')
  })

  it('the CLI: registry sync, list, show, search --json print one object each', () => {
    const store = join(base, 'cli')
    cpSync(engines, store, { recursive: true, verbatimSymlinks: true })
    const sync = cli(['registry', 'sync', '--store', store, '--json'])
    expect(sync.code).toBe(0)
    expect(envelope(sync).result).toMatchObject({ versionsAdded: 2, skipped: [] })
    const list = envelope(cli(['registry', 'list', '--store', store, '--json']))
    expect(list.result.models).toEqual([expect.objectContaining({ agent: 'ranker', versions: 2, aliases: { current: 'v2' } })])
    const search = cli(['registry', 'search', '--store', store, '--capability', 'target=trt', '--sort', 'performance.throughput_qps'])
    expect(search.code).toBe(0)
    expect(search.stdout).toMatch(/ranker v\d.*performance\.throughput_qps=/)
    const missing = cli(['registry', 'show', 'nobody', '--store', store, '--json'])
    expect(missing.code).toBe(6)
    expect(envelope(missing).error).toMatchObject({ code: 'REGISTRY_AGENT_NOT_FOUND' })
    const bad = cli(['registry', 'search', '--store', store, '--capability', 'oops'])
    expect(bad.code).toBe(2)
    const secret = cli(['registry', 'status', '--store', store, '--registry', 'postgres://me:hunter2@127.0.0.1:1/x', '--json'])
    expect(secret.code).toBe(3)
    expect(secret.stdout + secret.stderr).not.toMatch(/hunter2/)
    expect(secret.stdout).toMatch(/me:\*\*\*@127\.0\.0\.1:1/)
  }, 120_000)

  it('the CLI: finalize --capability lands in the registry in the same command; a dead server is a warning, exit 0', () => {
    const store = join(base, 'cli-write')
    cpSync(engines, store, { recursive: true, verbatimSymlinks: true })
    expect(cli(['registry', 'sync', '--store', store]).code).toBe(0)
    const staged = cli(['store', 'stage', 'ranker', 'v9', '--store', store])
    writeFileSync(join(staged.stdout.trim(), 'model.onnx'), 'v9')
    const fin = cli(['store', 'finalize', 'ranker', 'v9', '--store', store, '--capability', 'tier=gold', '--capability', 'max_batch=8', '--json'])
    expect(fin.code).toBe(0)
    const found = envelope(cli(['registry', 'search', '--store', store, '--capability', 'tier=gold', '--capability', 'max_batch=8', '--json']))
    expect(found.result.versions.map((v: { version: string }) => v.version)).toEqual(['v9'])
    const status = envelope(cli(['registry', 'status', '--store', store, '--json']))
    expect(status.result.inSync).toBe(true)

    const dead = cli(['store', 'promote', 'ranker', 'v1', '--store', store, '--registry', 'postgres://u:topsecret@127.0.0.1:1/x'])
    expect(dead.code).toBe(0)
    expect(dead.stderr).toMatch(/Warning: the store write succeeded, but the model registry was not updated/)
    expect(dead.stdout + dead.stderr).not.toMatch(/topsecret/)
    expect(new ModelStore(store).channels('ranker').current).toBe('v1')
  }, 120_000)

  it('the CLI: registry preferences are fetch policy for the store (exit 7 before any request)', () => {
    const store = join(base, 'cli-policy')
    cpSync(toy, store, { recursive: true, verbatimSymlinks: true })
    expect(cli(['registry', 'sync', '--store', store]).code).toBe(0)
    const set = cli(['registry', 'config', 'set', 'download.allowedSources', '["my-org/*"]', '--store', store])
    expect(set.code).toBe(0)
    expect(envelope(cli(['registry', 'config', 'get', '--store', store, '--json'])).result.preferences).toEqual({ 'download.allowedSources': ['my-org/*'] })
    const refused = cli(['fetch', 'other-org/model', '--store', store, '--offline', '--cache-dir', join(base, 'hf'), '--json'])
    expect(refused.code).toBe(7)
    expect(envelope(refused).error).toMatchObject({ code: 'SOURCE_NOT_ALLOWED' })
    const bad = cli(['registry', 'config', 'set', 'download.requireApproval', 'maybe', '--store', store, '--json'])
    expect(bad.code).toBe(2)
    expect(envelope(bad).error).toMatchObject({ code: 'PREFERENCE_INVALID' })
  }, 120_000)
})
