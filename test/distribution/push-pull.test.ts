/**
 * store push and pull against a real Distribution 2.8 (Debian's docker-registry) on loopback (issue 15,
 * acceptance 1 to 3). What the registry stored is read through its own API, not through our client.
 */
import { createHash } from 'node:crypto'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { pullVersion, pushVersion } from '../../src/distribution/index.js'
import { MEDIA_TYPES, TITLE } from '../../src/distribution/artifact.js'
import { ModelStore } from '../../src/publish/store.js'
import { createToyStore } from '../../src/toy/toy-store.js'
import { readAudit } from '../../src/publish/audit.js'
import { makeTemp, removeTemps, snapshot } from '../helpers/store-helpers.js'
import { ociRegistryAvailable, startOciRegistry, type OciRegistry } from '../helpers/oci-registry.js'

const skip = !ociRegistryAvailable()
let reg: OciRegistry
let source: ModelStore
const env = { HOME: '/nonexistent' }

beforeAll(async () => {
  if (skip) return
  reg = await startOciRegistry()
  const root = join(makeTemp('mf-dist-'), 'toy')
  await createToyStore(root)
  source = new ModelStore(root)
}, 120_000)

afterAll(async () => {
  await reg?.stop()
  removeTemps()
})

async function registryManifest(repo: string, ref: string): Promise<{ digest: string; body: { layers: { digest: string; size: number; mediaType: string; annotations: Record<string, string> }[]; artifactType: string; config: { mediaType: string } } }> {
  const r = await reg.api(`/v2/${repo}/manifests/${ref}`, { headers: { Accept: MEDIA_TYPES.imageManifest } })
  expect(r.status).toBe(200)
  const bytes = Buffer.from(await r.arrayBuffer())
  return { digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}`, body: JSON.parse(bytes.toString('utf8')) }
}

describe.skipIf(skip)('store push / pull on Distribution 2.8', () => {
  it('acceptance 1: the registry holds one raw layer per file, with the sha256 of manifest.json; a second push uploads nothing', async () => {
    const current = source.channels('scout').current!
    const r = await pushVersion(source, 'scout', current, `${reg.host}/models/scout`, { env })
    expect(r).toMatchObject({ agent: 'scout', version: current, ref: `${reg.host}/models/scout:${current}`, present: 0 })
    expect(r.uploaded).toBe(r.blobs)
    const m = JSON.parse(readFileSync(join(source.versionDir('scout', current), 'manifest.json'), 'utf8')) as { files: { path: string; sha256: string; size: number }[] }
    const got = await registryManifest('models/scout', current)
    expect(got.digest).toBe(r.digest)
    expect(got.body.artifactType).toBe(MEDIA_TYPES.artifactType)
    expect(got.body.config.mediaType).toBe(MEDIA_TYPES.config)
    const files = got.body.layers.filter((l) => l.mediaType !== MEDIA_TYPES.versionManifest)
    expect(files.map((l) => [l.annotations[TITLE], l.digest, l.size]).sort()).toEqual(m.files.map((f) => [f.path, `sha256:${f.sha256}`, f.size]).sort())
    // Each blob is really there, with those bytes.
    for (const f of m.files) {
      const b = await reg.api(`/v2/models/scout/blobs/sha256:${f.sha256}`)
      expect(createHash('sha256').update(Buffer.from(await b.arrayBuffer())).digest('hex')).toBe(f.sha256)
    }

    const again = await pushVersion(source, 'scout', current, `${reg.host}/models/scout`, { env })
    expect(again).toMatchObject({ digest: r.digest, uploaded: 0, mounted: 0, bytesUploaded: 0, present: r.blobs })
    expect(readAudit(source.root).filter((a) => a.op === 'push').at(-1)).toMatchObject({ agent: 'scout', version: current, digest: r.digest })

    // Another repository of the same registry: the blobs this store pushed before are mounted, not uploaded.
    const mounted = await pushVersion(source, 'scout', current, `${reg.host}/mirror/scout:stable`, { env })
    expect(mounted.mounted).toBeGreaterThan(0)
    expect(mounted.digest).toBe(r.digest)
    expect(mounted.bytesUploaded).toBeLessThan(2048)
  }, 60_000)

  it('acceptance 2: pull into an empty store: verify passes, the checksum is the source\'s, --publish moves current; again is a no-op', async () => {
    const current = source.channels('analyst').current!
    const pushed = await pushVersion(source, 'analyst', current, `${reg.host}/models/analyst`, { env })
    const target = new ModelStore(join(makeTemp('mf-node-'), 'store'))
    const r = await pullVersion(target, `${reg.host}/models/analyst:${current}`, { publish: true, env })
    expect(r).toMatchObject({ agent: 'analyst', version: current, digest: pushed.digest, unchanged: false, channel: 'current', previous: null })
    const [report] = await target.verify('analyst', current)
    expect(report!.ok).toBe(true)
    const src = JSON.parse(readFileSync(join(source.versionDir('analyst', current), 'manifest.json'), 'utf8')) as { checksum: string; metadata: unknown }
    const dst = JSON.parse(readFileSync(join(target.versionDir('analyst', current), 'manifest.json'), 'utf8')) as { checksum: string; metadata: unknown }
    expect(dst.checksum).toBe(src.checksum)
    expect(dst.metadata).toEqual(src.metadata)
    expect(target.channels('analyst').current).toBe(current)
    expect(existsSync(join(target.root, '.modelforge', 'pulls', pushed.digest.slice(7)))).toBe(false)

    const before = snapshot(target.root).filter((l) => !l.includes('audit.jsonl') && !l.includes('locks'))
    const again = await pullVersion(target, `${reg.host}/models/analyst@${pushed.digest}`, { publish: true, env })
    expect(again).toMatchObject({ unchanged: true, blobsDownloaded: 0, bytesDownloaded: 0 })
    expect(snapshot(target.root).filter((l) => !l.includes('audit.jsonl') && !l.includes('locks'))).toEqual(before)
    expect(readAudit(target.root).filter((a) => a.op === 'pull')).toHaveLength(1)
  }, 60_000)

  it('acceptance 3: a blob corrupted in the registry\'s storage is exit 4 naming the file; the target store is unchanged', async () => {
    const current = source.channels('memory').current!
    const pushed = await pushVersion(source, 'memory', current, `${reg.host}/models/memory`, { env })
    const m = JSON.parse(readFileSync(join(source.versionDir('memory', current), 'manifest.json'), 'utf8')) as { files: { path: string; sha256: string; size: number }[] }
    const onnx = m.files.find((f) => f.path.endsWith('.onnx'))!
    const blob = reg.blobPath(`sha256:${onnx.sha256}`)
    const bytes = readFileSync(blob)
    bytes[bytes.length >> 1] ^= 0xff
    writeFileSync(blob, bytes)
    const target = new ModelStore(join(makeTemp('mf-node-'), 'store'))
    await target.init()
    const before = snapshot(target.root)
    const err = await pullVersion(target, `${reg.host}/models/memory@${pushed.digest}`, { publish: true, env }).then(() => undefined, (e: unknown) => e)
    expect(err).toMatchObject({ code: 'OCI_BLOB_MISMATCH', exitCode: 4 })
    expect((err as Error).message).toContain(onnx.path)
    expect(existsSync(target.versionDir('memory', current))).toBe(false)
    expect(target.channels('memory')).toEqual({})
    // Only the pull's own directory under .modelforge/pulls holds what arrived (the verified blobs, kept for a rerun).
    expect(snapshot(target.root).filter((l) => !l.includes('.modelforge/pulls'))).toEqual(before)
  }, 60_000)
})
