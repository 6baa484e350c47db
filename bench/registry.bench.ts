/**
 * The model registry (issue 14, acceptance 5): a store of 1,000 versions x 8 files (10 agents x 100
 * versions, each with config.json, tokenizer files, model.onnx, an engine and its records) synced into
 * PGlite and into a PostgreSQL 15 server started here, against a plain node script that only reads and
 * parses the same manifests (run in this process, after a warm-up, as the sync is). Goal: sync <= 3x that.
 * Then search p50 in process over 200 searches of each kind (goal: under 20 ms on both), and the CLI
 * start-up cost of opening the embedded registry (`registry list` against `store list` of the same store).
 */
import { createHash } from 'node:crypto'
import { mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { sha256sumText, CHECKSUM_ALGORITHM, MANIFEST_SCHEMA } from '../src/publish/manifest.js'
import { openRegistry, searchVersions, syncRegistry, type RegistryDb } from '../src/registry/index.js'
import { postgresAvailable, startPostgres } from '../test/helpers/postgres.js'
import { measure, median, repoRoot, report, scratch, settleDisk } from './util.js'

const AGENTS = 10
const PER_AGENT = 100
const work = scratch('registry')
const store = join(work, 'store')

/** The store, written as finalize leaves it (files, then a manifest@1 with every file's sha256). */
function makeStore(): void {
  for (let a = 0; a < AGENTS; a++) {
    const agent = `agent${a}`
    for (let v = 0; v < PER_AGENT; v++) {
      const version = `v${String(v).padStart(3, '0')}`
      const dir = join(store, agent, 'versions', version)
      mkdirSync(dir, { recursive: true })
      const files: Record<string, string> = {
        'config.json': JSON.stringify({ architectures: ['BertForSequenceClassification'], model_type: 'bert', max_position_embeddings: 512, id2label: { 0: 'no', 1: 'yes' } }),
        'tokenizer.json': `{"tokenizer": ${a}}`,
        'tokenizer_config.json': '{"do_lower_case": true}',
        'vocab.txt': 'a\nb\n',
        'model.onnx': `onnx ${agent} ${version}`,
        'engine.plan': `plan ${agent} ${version}`,
        'engine.json': '{}',
        'perf.json': '{}',
      }
      for (const [f, text] of Object.entries(files)) writeFileSync(join(dir, f), text)
      const list = Object.entries(files).map(([path, text]) => ({ path, size: Buffer.byteLength(text), sha256: createHash('sha256').update(text).digest('hex') })).sort((x, y) => (x.path < y.path ? -1 : 1))
      const manifest = {
        version, checksum: createHash('sha256').update(sha256sumText(list)).digest('hex'), metadata: {}, schema: MANIFEST_SCHEMA, agent,
        created_at: new Date(Date.UTC(2026, 0, 1) + (a * PER_AGENT + v) * 60_000).toISOString(), checksum_algorithm: CHECKSUM_ALGORITHM, files: list,
        artifacts: [{ path: 'engine.plan', kind: 'tensorrt-engine', precision: v % 2 ? 'fp16' : 'int8', role: 'serve', gpu: { compute_capability: '8.0' }, tensorrt_version: '11.1.0' }],
        build: { target: 'trt', task: 'text-classification', precision: v % 2 ? 'fp16' : 'int8', compute_capability: '8.0', tensorrt_version: '11.1.0' },
        validation: { passed: true, outputs: [{ name: 'logits', max_abs_err: 0.001 * (v % 7), cosine: 1 - 0.0001 * (v % 5), passed: true }] },
        performance: { source: 'trtexec', throughput_qps: 500 + ((a * 37 + v * 11) % 400), latency_ms: { p50: 1 + (v % 9) / 10, p99: 2 + (v % 13) / 10 } },
      }
      writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest, null, 2))
    }
    symlinkSync(`versions/v${String(PER_AGENT - 1).padStart(3, '0')}`, join(store, agent, 'current'))
    symlinkSync('versions/v050', join(store, agent, 'production'))
  }
}

/** The baseline: walk the store and parse every manifest, nothing else. */
function readManifests(): number {
  let n = 0
  for (const agent of readdirSync(store)) {
    if (agent.startsWith('.')) continue
    for (const v of readdirSync(join(store, agent, 'versions'))) {
      const m = JSON.parse(readFileSync(join(store, agent, 'versions', v, 'manifest.json'), 'utf8')) as { files: unknown[] }
      n += m.files.length
    }
  }
  return n
}

function timeSync<T>(fn: () => T): { seconds: number; value: T } {
  const t = process.hrtime.bigint()
  const value = fn()
  return { seconds: Number(process.hrtime.bigint() - t) / 1e9, value }
}

async function timeAsync<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t = process.hrtime.bigint()
  const value = await fn()
  return { ms: Number(process.hrtime.bigint() - t) / 1e6, value }
}

makeStore()
settleDisk()
readManifests()
const baseline = median([0, 1, 2].map(() => timeSync(readManifests).seconds))
console.log(`store: ${AGENTS * PER_AGENT} versions x 8 files; baseline read+parse of every manifest: ${(baseline * 1000).toFixed(0)} ms (median of 3)`)

async function benchBackend(name: string, db: RegistryDb): Promise<void> {
  const first = await timeAsync(() => syncRegistry(db, store))
  const second = await timeAsync(() => syncRegistry(db, store))
  console.log(`${name}: first sync ${first.ms.toFixed(0)} ms (${first.value.versionsAdded} versions, ${first.value.artifacts} artifacts, ${first.value.events} events); second sync ${second.ms.toFixed(0)} ms, ${second.value.changed} rows written`)
  report(`${name}: first sync vs reading the manifests`, first.ms / 1000, baseline, 3)
  report(`${name}: second (no-op) sync vs reading the manifests`, second.ms / 1000, baseline, 3)
  const queries: [string, () => Promise<unknown>][] = [
    ['capability', () => searchVersions(db, { capabilities: { precision: 'fp16', gpu_required: true, task: 'text-classification' }, limit: 10 })],
    ['capability + sort', () => searchVersions(db, { capabilities: { precision: 'int8' }, sort: 'performance.throughput_qps', limit: 10 })],
    ['alias', () => searchVersions(db, { alias: 'production' })],
    ['sha256', () => searchVersions(db, { sha256: createHash('sha256').update('onnx agent3 v042').digest('hex') })],
  ]
  for (const [kind, q] of queries) {
    for (let i = 0; i < 20; i++) await q()
    const times: number[] = []
    for (let i = 0; i < 200; i++) times.push((await timeAsync(q)).ms)
    const p50 = median(times)
    console.log(`${name}: search by ${kind}: p50 ${p50.toFixed(2)} ms (goal < 20 ms) ${p50 < 20 ? 'OK' : 'MISSED'}`)
  }
}

const embedded = await openRegistry({ store }, { create: true })
try {
  await benchBackend('PGlite', embedded)
} finally {
  await embedded.close()
}

if (postgresAvailable()) {
  const pg = await startPostgres()
  try {
    pg.createDatabase('bench')
    const server = await openRegistry({ store, url: pg.url('bench') })
    try {
      await benchBackend('PostgreSQL 15', server)
    } finally {
      await server.close()
    }
  } finally {
    pg.remove()
  }
} else console.log('PostgreSQL 15 is not installed here (apt-get install postgresql): server figures skipped')

// Start-up: the CLI reading the embedded registry against the CLI reading the store itself.
const run = join(repoRoot, 'bin', 'run.js')
const env = { ...process.env, CI: '1' }
const storeList = median([0, 1, 2].map(() => measure(process.execPath, [run, 'store', 'list', '--store', store, '--json'], { env }).seconds))
const registryList = median([0, 1, 2].map(() => measure(process.execPath, [run, 'registry', 'list', '--store', store, '--json'], { env }).seconds))
const version = median([0, 1, 2].map(() => measure(process.execPath, [run, '--version'], { env }).seconds))
console.log(`CLI: --version ${version.toFixed(2)} s; store list ${storeList.toFixed(2)} s; registry list (opens PGlite) ${registryList.toFixed(2)} s: opening the embedded registry costs ${(registryList - version).toFixed(2)} s over start-up`)
