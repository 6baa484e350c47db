import { createHash } from 'node:crypto'
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, utimesSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { type KnownDigest } from '../../src/publish/finalize.js'
import { ModelStore } from '../../src/publish/store.js'
import { makeTemp, publish, removeTemps, snapshot, writeTree } from '../helpers/store-helpers.js'

afterAll(removeTemps)

/**
 * The state a finalize leaves when it fails after writing its own manifest.json and before the rename
 * (a crash, a full disk while syncing, a failed rename): the staged tree with a complete manifest in it.
 */
async function finalizedThenUnrenamed(store: ModelStore, agent: string, version: string, files: Record<string, string>): Promise<string> {
  const dir = await store.stage(agent, version)
  writeTree(dir, files)
  const r = await store.finalize(agent, version, { publish: false, metadata: { run: 1 } })
  renameSync(r.path, dir)
  return dir
}

describe('finalize again after a failure', () => {
  it('recognises the manifest.json an earlier finalize of this version wrote, and rewrites it', async () => {
    const root = makeTemp()
    const store = new ModelStore(root)
    await publish(store, 'a', 'v1')
    const dir = await finalizedThenUnrenamed(store, 'a', 'v2', { 'model.onnx': 'two', 'cfg/config.json': '{}' })
    const first = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'))
    const r = await store.finalize('a', 'v2', { metadata: { run: 2 } })
    expect(r).toMatchObject({ version: 'v2', files: 2, bytes: 5, published: true, previous: 'v1', checksum: first.checksum })
    const m = JSON.parse(readFileSync(join(r.path, 'manifest.json'), 'utf8'))
    expect(m.metadata).toEqual({ run: 2 })
    expect(m.files.map((f: { path: string }) => f.path)).toEqual(['cfg/config.json', 'model.onnx'])
    expect(readdirSync(r.path).sort()).toEqual(['cfg', 'manifest.json', 'model.onnx'])
    expect((await store.verify('a', 'v2'))[0]!.ok).toBe(true)
  })

  it('removes what a finalize killed while writing the manifest left (its temporary file)', async () => {
    const store = new ModelStore(makeTemp())
    const dir = await store.stage('a', 'v1')
    writeTree(dir, { 'model.onnx': 'one' })
    writeFileSync(join(dir, 'manifest.json-4242-0a1b2c3d.tmp'), '{"version": "v1", "chec')
    const r = await store.finalize('a', 'v1')
    expect(r.files).toBe(1)
    expect(readdirSync(r.path).sort()).toEqual(['manifest.json', 'model.onnx'])
    expect((await store.verify('a', 'v1'))[0]!.ok).toBe(true)
  })

  it.each([
    ['an empty object', () => '{}', /not one a finalize of a\/v2 wrote: .*"version" is missing/],
    ['the manifest of another version', (other: string) => readFileSync(join(other, 'manifest.json'), 'utf8'), /not one a finalize of a\/v2 wrote: it names a\/v1/],
    ['a modelforge manifest of this version that lists other files', (_other: string, own: string) => own, /not one a finalize of a\/v2 wrote: it lists 1 file\(s\), the tree holds 2/],
  ])('still refuses a caller\'s manifest.json (exit 4, MANIFEST_RESERVED): %s', async (_what, content, why) => {
    const root = makeTemp()
    const store = new ModelStore(root)
    const v1 = await publish(store, 'a', 'v1')
    const own = await finalizedThenUnrenamed(store, 'a', 'v2', { 'model.onnx': 'two' })
    const ownManifest = readFileSync(join(own, 'manifest.json'), 'utf8')
    writeFileSync(join(own, 'extra.bin'), 'added after')
    writeFileSync(join(own, 'manifest.json'), content(v1.path, ownManifest))
    const before = snapshot(root)
    await expect(store.finalize('a', 'v2')).rejects.toMatchObject({ exitCode: 4, code: 'MANIFEST_RESERVED', message: expect.stringMatching(why) })
    expect(snapshot(root)).toEqual(before)
    expect(existsSync(join(root, 'a', 'versions', 'v2'))).toBe(false)
  })

  it('a manifest copied in from a finalized version of the same name but another agent is refused', async () => {
    const root = makeTemp()
    const store = new ModelStore(root)
    const b = await publish(store, 'b', 'v2', { 'model.onnx': 'two' })
    const dir = await store.stage('a', 'v2')
    cpSync(b.path, dir, { recursive: true })
    await expect(store.finalize('a', 'v2')).rejects.toMatchObject({ code: 'MANIFEST_RESERVED', message: expect.stringContaining('it names b/v2') })
  })
})

describe('an empty version', () => {
  it('is refused (exit 4, EMPTY_VERSION), the store unchanged, unless allowEmpty', async () => {
    const root = makeTemp()
    const store = new ModelStore(root)
    await publish(store, 'a', 'v1')
    const dir = await store.stage('a', 'v2')
    mkdirSync(join(dir, 'only', 'directories'), { recursive: true })
    const before = snapshot(root)
    await expect(store.finalize('a', 'v2')).rejects.toMatchObject({ exitCode: 4, code: 'EMPTY_VERSION', message: 'The staged tree of a/v2 holds no files: an empty version would be published' })
    expect(snapshot(root)).toEqual(before)
    const r = await store.finalize('a', 'v2', { allowEmpty: true })
    expect(r).toMatchObject({ files: 0, bytes: 0, published: true, checksum: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' })
    expect((await store.verify('a', 'v2'))[0]!.ok).toBe(true)
  })
})

describe('known digests (what store pull computed while writing its blobs)', () => {
  const sha = (s: string): string => createHash('sha256').update(s).digest('hex')
  const known = (path: string, sha256: string): KnownDigest => {
    const st = statSync(path)
    return { sha256, size: st.size, ino: st.ino, mtimeMs: st.mtimeMs }
  }

  it('are taken for files that are still the ones hashed, and not read again', async () => {
    const store = new ModelStore(makeTemp())
    const dir = await store.stage('a', 'v1')
    writeTree(dir, { 'engine.plan': 'engine bytes', 'config.json': '{}' })
    // A digest that is not the file's: finalize writing it proves it did not read the file.
    const r = await store.finalize('a', 'v1', { knownDigests: new Map([['engine.plan', known(join(dir, 'engine.plan'), sha('other bytes'))]]) })
    const m = JSON.parse(readFileSync(join(r.path, 'manifest.json'), 'utf8'))
    expect(m.files).toEqual([
      { path: 'config.json', size: 2, sha256: sha('{}') },
      { path: 'engine.plan', size: 12, sha256: sha('other bytes') },
    ])
  })

  it('are ignored for a file changed since (another inode, size or mtime): it is hashed', async () => {
    const store = new ModelStore(makeTemp())
    const dir = await store.stage('a', 'v1')
    writeTree(dir, { 'a.bin': 'first', 'b.bin': 'same size', 'c.bin': 'replaced' })
    const digests = new Map<string, KnownDigest>()
    for (const f of ['a.bin', 'b.bin', 'c.bin']) digests.set(f, known(join(dir, f), sha('stale')))
    writeFileSync(join(dir, 'a.bin'), 'first, then longer')
    writeFileSync(join(dir, 'b.bin'), 'SAME SIZE')
    utimesSync(join(dir, 'b.bin'), new Date(Date.now() + 5_000), new Date(Date.now() + 5_000))
    writeFileSync(join(dir, 'c.tmp'), 'replaced')
    renameSync(join(dir, 'c.tmp'), join(dir, 'c.bin'))
    digests.set('c.bin', { ...digests.get('c.bin')!, size: 8 })
    const r = await store.finalize('a', 'v1', { knownDigests: digests })
    const m = JSON.parse(readFileSync(join(r.path, 'manifest.json'), 'utf8'))
    expect(m.files.map((f: { sha256: string }) => f.sha256)).toEqual([sha('first, then longer'), sha('SAME SIZE'), sha('replaced')])
    expect((await store.verify('a', 'v1'))[0]!.ok).toBe(true)
  })
})
