/**
 * A pulled artifact is untrusted input (issue 15, acceptance 4): artifacts written straight to the registry
 * with curl, the way an attacker with push access would, each refused with exit 4 before anything lands
 * outside the pull's own directory, and nothing published.
 */
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { pullVersion } from '../../src/distribution/index.js'
import { MEDIA_TYPES, TITLE } from '../../src/distribution/artifact.js'
import { checksumFilesV1, CHECKSUM_ALGORITHM, MANIFEST_SCHEMA } from '../../src/publish/manifest.js'
import { ModelStore } from '../../src/publish/store.js'
import { makeTemp, removeTemps, snapshot } from '../helpers/store-helpers.js'
import { ociRegistryAvailable, startOciRegistry, type OciRegistry } from '../helpers/oci-registry.js'

const skip = !ociRegistryAvailable()
let reg: OciRegistry
const env = { HOME: '/nonexistent' }

beforeAll(async () => {
  if (!skip) reg = await startOciRegistry()
}, 60_000)

afterAll(async () => {
  await reg?.stop()
  removeTemps()
})

const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex')

function curl(args: string[], body?: Buffer): string {
  const tmp = join(makeTemp('mf-curl-'), 'body')
  if (body) writeFileSync(tmp, body)
  const r = spawnSync('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', ...(body ? ['--data-binary', `@${tmp}`] : []), ...args], { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`curl failed: ${r.stderr}`)
  return r.stdout
}

/** A blob uploaded as curl users push one: POST for an upload, then PUT its bytes with the digest. */
function putBlob(repo: string, bytes: Buffer): void {
  const r = spawnSync('curl', ['-sS', '-X', 'POST', '-D', '-', '-o', '/dev/null', `http://${reg.host}/v2/${repo}/blobs/uploads/`], { encoding: 'utf8' })
  const location = /^location:\s*(\S+)/im.exec(r.stdout)?.[1]
  expect(location, r.stdout).toBeDefined()
  const url = new URL(location!, `http://${reg.host}`)
  url.searchParams.set('digest', `sha256:${sha(bytes)}`)
  expect(curl(['-X', 'PUT', '-H', 'Content-Type: application/octet-stream', url.toString()], bytes)).toBe('201')
}

interface Layer { title: string; bytes: Buffer; declaredSize?: number }

/**
 * An artifact of our layout, with what the caller makes of it: layers and their titles, the sizes they
 * declare, and the manifest.json inside (by default one that agrees with the layers as declared).
 */
function pushHostile(repo: string, layers: Layer[], editManifest: (m: Record<string, unknown>) => void = () => undefined): void {
  const files = layers.map((l) => ({ path: l.title, size: l.declaredSize ?? l.bytes.length, sha256: sha(l.bytes) }))
  const vm: Record<string, unknown> = {
    version: 'v1', checksum: checksumFilesV1(files), metadata: {}, schema: MANIFEST_SCHEMA, agent: 'evil',
    created_at: '2026-12-01T00:00:00.000Z', checksum_algorithm: CHECKSUM_ALGORITHM, files,
  }
  editManifest(vm)
  const vmBytes = Buffer.from(JSON.stringify(vm))
  const config = Buffer.from('{}')
  for (const b of [...layers.map((l) => l.bytes), vmBytes, config]) putBlob(repo, b)
  const manifest = {
    schemaVersion: 2, mediaType: MEDIA_TYPES.imageManifest, artifactType: MEDIA_TYPES.artifactType,
    config: { mediaType: MEDIA_TYPES.config, digest: `sha256:${sha(config)}`, size: config.length },
    layers: [
      ...layers.map((l) => ({ mediaType: MEDIA_TYPES.weight, digest: `sha256:${sha(l.bytes)}`, size: l.declaredSize ?? l.bytes.length, annotations: { [TITLE]: l.title } })),
      { mediaType: MEDIA_TYPES.versionManifest, digest: `sha256:${sha(vmBytes)}`, size: vmBytes.length, annotations: { [TITLE]: 'manifest.json' } },
    ],
  }
  const code = curl(['-X', 'PUT', '-H', `Content-Type: ${MEDIA_TYPES.imageManifest}`, `http://${reg.host}/v2/${repo}/manifests/v1`], Buffer.from(JSON.stringify(manifest)))
  expect(code).toBe('201')
}

/** Pulls into a fresh store in a fresh directory: exit 4, and nothing but the pull's directory changed. */
async function refused(repo: string, code: string, message: RegExp): Promise<void> {
  const parent = makeTemp('mf-victim-')
  const store = new ModelStore(join(parent, 'store'))
  await store.init()
  writeFileSync(join(parent, 'x'), 'mine')
  // The store sits in a directory of its own, beside a file of the user's: a ../ path would land in there.
  const before = snapshot(parent)
  const err = await pullVersion(store, `${reg.host}/${repo}:v1`, { publish: true, env }).then(() => undefined, (e: unknown) => e)
  expect(err, 'the pull must fail').toMatchObject({ code, exitCode: 4 })
  expect((err as Error).message).toMatch(message)
  expect(existsSync(join(store.root, 'evil'))).toBe(false)
  const after = snapshot(parent).filter((l) => !l.includes('.modelforge/pulls'))
  expect(after).toEqual(before)
}

describe.skipIf(skip)('hostile artifacts', () => {
  it('a layer titled ../../x is refused before any download', async () => {
    pushHostile('evil/dotdot', [{ title: '../../x', bytes: Buffer.from('overwritten') }])
    await refused('evil/dotdot', 'OCI_ARTIFACT_INVALID', /"\.\.\/\.\.\/x" has an empty, \. or \.\. segment/)
  })

  it('an absolute path is refused', async () => {
    const target = join(makeTemp('mf-abs-'), 'planted')
    pushHostile('evil/absolute', [{ title: target, bytes: Buffer.from('planted') }])
    await refused('evil/absolute', 'OCI_ARTIFACT_INVALID', /an absolute path/)
    expect(existsSync(target)).toBe(false)
  })

  it('a name with a newline, and two layers of one name, are refused', async () => {
    pushHostile('evil/newline', [{ title: 'model\n.onnx', bytes: Buffer.from('a') }])
    await refused('evil/newline', 'OCI_ARTIFACT_INVALID', /newline/)
    pushHostile('evil/twice', [{ title: 'model.onnx', bytes: Buffer.from('a') }, { title: 'model.onnx', bytes: Buffer.from('b') }])
    await refused('evil/twice', 'OCI_ARTIFACT_INVALID', /two layers are titled "model.onnx"/)
  })

  it('a size that lies: the stream longer than declared is cut and refused', async () => {
    pushHostile('evil/size', [{ title: 'model.onnx', bytes: Buffer.alloc(256 * 1024, 7), declaredSize: 1000 }])
    await refused('evil/size', 'OCI_BLOB_MISMATCH', /longer than the 1000 bytes/)
  })

  it('a manifest.json that disagrees with the layers is refused', async () => {
    pushHostile('evil/disagree', [{ title: 'model.onnx', bytes: Buffer.from('weights') }], (m) => {
      const files = m.files as { path: string; size: number; sha256: string }[]
      files.push({ path: 'extra.bin', size: 3, sha256: sha('abc') })
      m.checksum = checksumFilesV1(files)
    })
    await refused('evil/disagree', 'OCI_ARTIFACT_INVALID', /disagree; listed without a matching layer: extra\.bin/)
    pushHostile('evil/checksum', [{ title: 'model.onnx', bytes: Buffer.from('weights') }], (m) => {
      m.checksum = sha('something else')
    })
    await refused('evil/checksum', 'OCI_ARTIFACT_INVALID', /checksum/)
  })
})
