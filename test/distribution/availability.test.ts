/**
 * The node load workflow against a fleet's model registry (issue 15, acceptance 6): a builder's store is
 * synced into a PostgreSQL server, so the registry knows the version before any node has it; a node's
 * `store pull --registry` then moves its availability row to loading while the blobs arrive (watched from
 * outside, through pg, while the pull runs), then to available; a pull that fails verification leaves
 * failed, with the error. `registry search --available-on` tells the two apart.
 */
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { pushVersion } from '../../src/distribution/index.js'
import { ModelStore } from '../../src/publish/store.js'
import { cli, makeTemp, publish, removeTemps, runJs } from '../helpers/store-helpers.js'
import { ociRegistryAvailable, startOciRegistry, type OciRegistry } from '../helpers/oci-registry.js'
import { startOciProxy } from '../helpers/oci-proxy.js'
import { postgresAvailable, startPostgres, type PgCluster } from '../helpers/postgres.js'

const skip = !ociRegistryAvailable() || !postgresAvailable()
const env = { HOME: '/nonexistent' }
let reg: OciRegistry
let cluster: PgCluster
let url: string
let source: ModelStore
const digests: Record<string, string> = {}

beforeAll(async () => {
  if (skip) return
  cluster = await startPostgres()
  cluster.createDatabase('fleet')
  url = cluster.url('fleet')
  reg = await startOciRegistry()
  source = new ModelStore(join(makeTemp('mf-builder-'), 'store'))
  await publish(source, 'ranker', 'v1', { 'model.onnx': randomBytes(6 * 1024 * 1024) as unknown as string, 'config.json': '{"model_type": "bert"}' })
  await publish(source, 'ranker', 'v2', { 'model.onnx': randomBytes(1024 * 1024) as unknown as string, 'config.json': '{"model_type": "bert"}' })
  for (const v of ['v1', 'v2']) digests[v] = (await pushVersion(source, 'ranker', v, `${reg.host}/fleet/ranker`, { env })).digest
  // The builder indexes what it built: the registry knows both versions, no node has them yet.
  const sync = cli(['registry', 'sync', '--store', source.root, '--registry', url, '--json'], { env })
  expect(sync.code, sync.stdout + sync.stderr).toBe(0)
}, 180_000)

afterAll(async () => {
  await reg?.stop()
  cluster?.remove()
  removeTemps()
})

async function rows(node: string): Promise<{ version: string; status: string; details: Record<string, unknown> }[]> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    const r = await client.query(
      `select v.version, a.status, a.details from node_model_availability a join model_versions v on v.id = a.model_version_id
       where a.node_id = $1 order by v.version`,
      [node],
    )
    return r.rows
  } finally {
    await client.end()
  }
}

/** The agent/version pairs a `registry search --json` answered. */
function offered(stdout: string): string[] {
  const result = JSON.parse(stdout).result as { versions?: { agent: string; version: string }[] } | { agent: string; version: string }[]
  const list = Array.isArray(result) ? result : (result.versions ?? [])
  return list.map((v) => `${v.agent}/${v.version}`)
}

describe.skipIf(skip)('node availability in a fleet registry', () => {
  it('a pull moves the node\'s row to loading while the blobs arrive, then to available; search finds it', async () => {
    const node = join(makeTemp('mf-node-'), 'store')
    expect(await rows('gpu-11')).toEqual([])
    // Slowed, so that the pull lasts long enough to be watched.
    const slow = await startOciProxy(reg.host, { slowBlobsMs: 15 })
    const seen: string[] = []
    try {
      const child = spawn(process.execPath, [runJs, 'store', 'pull', `${slow.host}/fleet/ranker:v1`, '--publish', '--node', 'gpu-11', '--registry', url, '--store', node, '--json'], {
        env: { ...process.env, ...env, CI: '1' },
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      let out = ''
      child.stdout.on('data', (c: Buffer) => (out += c))
      const exited = new Promise<number | null>((r) => child.once('exit', r))
      let code: number | null | undefined
      void exited.then((c) => (code = c))
      while (code === undefined) {
        const [row] = await rows('gpu-11')
        if (row && seen[seen.length - 1] !== row.status) seen.push(row.status)
        await new Promise((r) => setTimeout(r, 25))
      }
      expect(code, out).toBe(0)
      expect(JSON.parse(out).result).toMatchObject({ agent: 'ranker', version: 'v1', digest: digests.v1, node: 'gpu-11', channel: 'current' })
    } finally {
      await slow.close()
    }
    expect(seen[0]).toBe('loading')
    const [row] = await rows('gpu-11')
    expect(row).toMatchObject({ version: 'v1', status: 'available', details: expect.objectContaining({ digest: digests.v1 }) })
    const found = cli(['registry', 'search', '--available-on', 'gpu-11', '--registry', url, '--json'], { env })
    expect(found.code, found.stdout + found.stderr).toBe(0)
    expect(offered(found.stdout)).toEqual(['ranker/v1'])
  }, 120_000)

  it('a pull that fails verification leaves the row failed, with the error, and search does not offer it', async () => {
    const node = join(makeTemp('mf-node-'), 'store')
    // The registry's own copy of v2's model.onnx is damaged (same size, other bytes).
    const manifest = JSON.parse(await (await reg.api(`/v2/fleet/ranker/manifests/${digests.v2}`, { headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' } })).text()) as { layers: { digest: string; size: number; annotations?: Record<string, string> }[] }
    const layer = manifest.layers.find((l) => l.annotations?.['org.opencontainers.image.title'] === 'model.onnx')!
    writeFileSync(reg.blobPath(layer.digest), randomBytes(layer.size))
    const pull = cli(['store', 'pull', `${reg.host}/fleet/ranker:v2`, '--node', 'gpu-12', '--registry', url, '--store', node, '--json'], { env })
    expect(pull.code, pull.stdout + pull.stderr).toBe(4)
    expect(JSON.parse(pull.stdout).error).toMatchObject({ code: 'OCI_BLOB_MISMATCH' })
    const [row] = await rows('gpu-12')
    expect(row).toMatchObject({ version: 'v2', status: 'failed', details: expect.objectContaining({ code: 'OCI_BLOB_MISMATCH', digest: digests.v2 }) })
    expect(String(row!.details.message)).toContain('model.onnx')
    const found = cli(['registry', 'search', '--available-on', 'gpu-12', '--registry', url, '--json'], { env })
    expect(found.code, found.stdout + found.stderr).toBe(0)
    expect(offered(found.stdout)).toEqual([])
  }, 120_000)
})
