import { createHash } from 'node:crypto'
import { cpSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { resolveCurrent } from '../../src/publish/current.js'
import { checksumFilesV1, legacyChecksum, parseManifest } from '../../src/publish/manifest.js'
import { ModelStore } from '../../src/publish/store.js'
import { makeTemp, removeTemps, writeTree } from '../helpers/store-helpers.js'
import { hasPython3, python, pythonChecksum, unsortedSubdirs, writeLegacyAgent, type LegacyVersion } from '../helpers/store-legacy.js'

afterAll(removeTemps)

const versions: LegacyVersion[] = [
  { version: 'v1', files: { 'model.onnx': 'one', 'tokenizer/vocab.txt': 'a\nb\n' }, metadata: { trained: '2025-01-01' } },
  { version: 'v2', files: { 'model.onnx': 'two', 'tokenizer/vocab.txt': 'a\nb\nc\n', 'config.json': '{}' }, metadata: { trained: '2025-02-01' } },
]

describe('stores written by the Python ModelStore', () => {
  it('resolves an absolute current link, lists and verifies the old manifests', async () => {
    const root = makeTemp()
    writeLegacyAgent(root, 'scout', versions, 'absolute-link')
    const store = new ModelStore(root)
    expect(resolveCurrent(root, 'scout')).toEqual({ agent: 'scout', channel: 'current', version: 'v2', path: join(root, 'scout', 'versions', 'v2'), layout: 'absolute-link' })
    expect(await store.versions('scout')).toHaveLength(2)
    expect(await store.manifest('scout', 'v1')).toEqual({ version: 'v1', checksum: expect.stringMatching(/^[0-9a-f]{64}$/), metadata: { trained: '2025-01-01' } })
    const reports = await store.verify()
    expect(reports.map((r) => [r.version, r.ok, r.algorithm])).toEqual([['v1', true, 'legacy-python-sha256'], ['v2', true, 'legacy-python-sha256']])
  })

  it('follows an absolute link into the moved store', () => {
    const parent = makeTemp()
    writeLegacyAgent(join(parent, 'old'), 'scout', versions, 'absolute-link')
    renameSync(join(parent, 'old'), join(parent, 'new'))
    expect(resolveCurrent(join(parent, 'new'), 'scout')?.path).toBe(join(parent, 'new', 'scout', 'versions', 'v2'))
  })

  it('a copied store reads its own version, not the original that the absolute link still names', () => {
    const parent = makeTemp()
    writeLegacyAgent(join(parent, 'orig'), 'scout', versions, 'absolute-link')
    cpSync(join(parent, 'orig'), join(parent, 'copy'), { recursive: true, verbatimSymlinks: true })
    expect(readlinkSync(join(parent, 'copy', 'scout', 'current'))).toBe(join(parent, 'orig', 'scout', 'versions', 'v2'))
    expect(resolveCurrent(join(parent, 'copy'), 'scout')).toMatchObject({ version: 'v2', path: join(parent, 'copy', 'scout', 'versions', 'v2'), layout: 'absolute-link' })
    expect(resolveCurrent(join(parent, 'orig'), 'scout')?.path).toBe(join(parent, 'orig', 'scout', 'versions', 'v2'))
  })

  it('reads a real current directory, verifies it, and detects a changed byte (exit 4)', async () => {
    const root = makeTemp()
    writeLegacyAgent(root, 'memory', versions, 'directory')
    const store = new ModelStore(root)
    expect(resolveCurrent(root, 'memory')).toMatchObject({ version: 'v2', path: join(root, 'memory', 'current'), layout: 'directory' })
    expect(store.channels('memory')).toEqual({ current: 'v2' })
    expect((await store.verify('memory')).map((r) => r.ok)).toEqual([true, true, true])
    writeFileSync(join(root, 'memory', 'versions', 'v1', 'model.onnx'), 'ona')
    const [bad] = (await store.verify('memory')).filter((r) => !r.ok)
    expect(bad).toMatchObject({ version: 'v1', problems: [{ kind: 'checksum', message: expect.stringContaining('checksum mismatch') }] })
  })

  it('publishing into a Python-made agent keeps the old current directory aside and links current', async () => {
    const root = makeTemp()
    writeLegacyAgent(root, 'memory', versions, 'directory')
    const store = new ModelStore(root)
    writeTree(await store.stage('memory', 'v3'), { 'model.onnx': 'three' })
    const r = await store.finalize('memory', 'v3')
    expect(r.previous).toBe('v2')
    expect(readlinkSync(join(root, 'memory', 'current'))).toBe('versions/v3')
    const aside = readdirSync(join(root, 'memory')).filter((n) => n.startsWith('current.legacy-'))
    expect(aside).toHaveLength(1)
    expect(lstatSync(join(root, 'memory', aside[0]!)).isDirectory()).toBe(true)
    await store.promote('memory', 'v1')
    expect(store.current('memory')).toBe(join(root, 'memory', 'versions', 'v1'))
    expect((await store.verify('memory')).every((x) => x.ok)).toBe(true)
  })

  it('a legacy version with an extra file fails verification', async () => {
    const root = makeTemp()
    writeLegacyAgent(root, 'a', versions, 'absolute-link')
    cpSync(join(root, 'a', 'versions', 'v1', 'model.onnx'), join(root, 'a', 'versions', 'v1', 'copy.onnx'))
    const store = new ModelStore(root)
    expect((await store.verify('a', 'v1'))[0]!.ok).toBe(false)
  })
})

describe("the legacy checksum in both of os.walk's orders", () => {
  /** A version directory whose subdirectories the filesystem lists unsorted (null: it lists sorted). */
  function unsortedVersion(root: string): { dir: string; listed: string[] } | null {
    const dir = join(root, 'scout', 'versions', 'v1')
    mkdirSync(dir, { recursive: true })
    writeTree(dir, { 'model.onnx': 'weights', 'config.json': '{}', 'mid/b/deep.txt': 'b', 'mid/a/deep.txt': 'a', 'mid/manifest.json': 'skipped at any depth' })
    const listed = unsortedSubdirs(dir)
    return listed && { dir, listed }
  }

  it.skipIf(!hasPython3)('a version python3 hashed as os.walk lists it verifies, and the report says listing (the sorted walk alone refused it)', async (ctx) => {
    const root = makeTemp()
    const v = unsortedVersion(root)
    if (!v) return ctx.skip('this filesystem lists every directory sorted: listing and sorted order cannot differ here')
    // The original helper, run by python3 (standard library only): os.walk + hashlib, then json.dump.
    const written = python('write', v.dir, 'v1', JSON.stringify({ trained: '2025-01-01' }))
    expect(written.code, written.stderr).toBe(0)
    const manifest = JSON.parse(readFileSync(join(v.dir, 'manifest.json'), 'utf8')) as { checksum: string }
    expect(Object.keys(manifest)).toEqual(['version', 'checksum', 'metadata'])
    expect(await legacyChecksum(v.dir, { order: 'listing' })).toBe(manifest.checksum)
    // What verify computed before: an intact version read as damaged.
    expect(await legacyChecksum(v.dir)).not.toBe(manifest.checksum)
    const [report] = await new ModelStore(root).verify('scout', 'v1')
    expect(report).toMatchObject({ ok: true, algorithm: 'legacy-python-sha256', checksumOrder: 'listing', problems: [] })
    expect(python('verify', v.dir).code).toBe(0)
  })

  it('a version hashed with sorted subdirectories verifies too, and the report says sorted', async (ctx) => {
    const root = makeTemp()
    const v = unsortedVersion(root)
    if (!v) return ctx.skip('this filesystem lists every directory sorted: listing and sorted order cannot differ here')
    writeFileSync(join(v.dir, 'manifest.json'), JSON.stringify({ version: 'v1', checksum: pythonChecksum(v.dir), metadata: {} }))
    const store = new ModelStore(root)
    expect((await store.verify('scout', 'v1'))[0]).toMatchObject({ ok: true, checksumOrder: 'sorted' })
    // A changed byte matches neither order; the message gives what each order computed.
    writeFileSync(join(v.dir, 'model.onnx'), 'weightz')
    const [bad] = await store.verify('scout', 'v1')
    expect(bad).toMatchObject({ ok: false, problems: [{ kind: 'checksum', message: expect.stringMatching(/^checksum mismatch: manifest [0-9a-f]{64}, files [0-9a-f]{64} in listing order, [0-9a-f]{64} in sorted order/) }] })
    expect(bad!.checksumOrder).toBeUndefined()
  })
})

describe('legacyChecksum: new versions the Python helper accepts', () => {
  /** Stages agent/version with subdirectories listed unsorted (null: this filesystem lists sorted). */
  async function stageUnsorted(store: ModelStore, version: string): Promise<string[] | null> {
    const dir = await store.stage('scout', version)
    writeTree(dir, { 'model.onnx': 'weights', 'tokenizer/vocab.txt': 'a\nb\n', 'tokenizer/manifest.json': 'skipped by the Python helper only' })
    return unsortedSubdirs(dir)
  }

  it.skipIf(!hasPython3)("python3's verify_manifest accepts a version finalized with legacyChecksum and refuses one without; our verify accepts both", async (ctx) => {
    const root = makeTemp()
    const store = new ModelStore(root)
    if (!(await stageUnsorted(store, 'v1'))) return ctx.skip('this filesystem lists every directory sorted: the listing order would prove nothing here')
    const r = await store.finalize('scout', 'v1', { legacyChecksum: true })
    await stageUnsorted(store, 'v2')
    const plain = await store.finalize('scout', 'v2')
    const m = parseManifest(JSON.parse(readFileSync(join(r.path, 'manifest.json'), 'utf8')), 'v1')
    expect(m.kind).toBe('v1')
    const manifest = m.manifest as Record<string, unknown> & { files: { path: string; size: number; sha256: string }[] }
    // The per-file list as always, its sha256-files-v1 value moved to files_checksum; checksum is Python's.
    expect(manifest).toMatchObject({ checksum_algorithm: 'legacy-python-sha256', checksum: python('checksum', r.path).stdout, files_checksum: checksumFilesV1(manifest.files) })
    expect(manifest.files.map((f) => f.path)).toContain('tokenizer/manifest.json')
    expect(r).toMatchObject({ checksum: manifest.checksum, checksumAlgorithm: 'legacy-python-sha256', filesChecksum: manifest.files_checksum })
    expect(plain).toMatchObject({ checksumAlgorithm: 'sha256-files-v1' })
    expect(plain.filesChecksum).toBeUndefined()
    // The Python helper's own check, run by python3: it recomputes the legacy checksum and compares.
    expect(python('verify', r.path)).toMatchObject({ code: 0, stdout: 'ok' })
    expect(python('verify', plain.path)).toMatchObject({ code: 1, stdout: 'checksum mismatch' })
    const reports = await store.verify('scout')
    expect(reports.map((x) => [x.version, x.ok, x.algorithm, x.checksumOrder])).toEqual([['v1', true, 'legacy-python-sha256', 'listing'], ['v2', true, 'sha256-files-v1', undefined]])
  })

  it('verify checks both values of a legacyChecksum manifest: files_checksum against the list, checksum against the files', async () => {
    const root = makeTemp()
    const store = new ModelStore(root)
    writeTree(await store.stage('scout', 'v1'), { 'model.onnx': 'weights', 'a/x': '1', 'b/y': '2' })
    const r = await store.finalize('scout', 'v1', { legacyChecksum: true })
    expect((await store.verify('scout', 'v1'))[0]).toMatchObject({ ok: true, algorithm: 'legacy-python-sha256' })
    // A changed file is named by the per-file list (the legacy checksum alone could not name it).
    writeFileSync(join(r.path, 'a', 'x'), '9')
    expect((await store.verify('scout', 'v1'))[0]!.problems).toEqual([{ kind: 'modified', path: 'a/x', message: 'modified: a/x' }])
    writeFileSync(join(r.path, 'a', 'x'), '1')
    const path = join(r.path, 'manifest.json')
    const original = readFileSync(path, 'utf8')
    const edited = JSON.parse(original) as Record<string, unknown>
    writeFileSync(path, JSON.stringify({ ...edited, files_checksum: 'f'.repeat(64) }))
    expect((await store.verify('scout', 'v1'))[0]!.problems).toEqual([{ kind: 'checksum', path: 'manifest.json', message: 'manifest files_checksum does not match its own file list (manifest.json was edited)' }])
    writeFileSync(path, JSON.stringify({ ...edited, checksum: 'e'.repeat(64) }))
    expect((await store.verify('scout', 'v1'))[0]!.problems).toEqual([{ kind: 'checksum', path: 'manifest.json', message: expect.stringContaining('the legacy-python-sha256 checksum matches the files in neither os.walk order, though every file matches its sha256') }])
    // A legacy checksum without files_checksum is no manifest modelforge wrote.
    writeFileSync(path, JSON.stringify({ ...edited, files_checksum: undefined }))
    expect((await store.verify('scout', 'v1'))[0]!.problems).toMatchObject([{ kind: 'manifest', message: expect.stringContaining('"files_checksum"') }])
  })

  it('an interrupted finalize with legacyChecksum leaves a manifest the next finalize recognises and rewrites', async () => {
    const root = makeTemp()
    const store = new ModelStore(root)
    const dir = await store.stage('scout', 'v1')
    writeTree(dir, { 'model.onnx': 'weights' })
    const files = [{ path: 'model.onnx', size: 7, sha256: createHash('sha256').update('weights').digest('hex') }]
    const earlier = {
      version: 'v1', checksum: await legacyChecksum(dir), metadata: {}, schema: 'modelforge/manifest@1', agent: 'scout',
      created_at: new Date().toISOString(), checksum_algorithm: 'legacy-python-sha256', files_checksum: checksumFilesV1(files), files,
    }
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify(earlier))
    const r = await store.finalize('scout', 'v1')
    expect(r).toMatchObject({ checksumAlgorithm: 'sha256-files-v1', checksum: checksumFilesV1(files), files: 1 })
  })
})
