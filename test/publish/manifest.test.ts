import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { checksumFilesV1, legacyChecksum, parseManifest, sha256sumText } from '../../src/publish/manifest.js'
import { ModelStore } from '../../src/publish/store.js'
import { IntegrityError } from '../../src/lib/errors.js'
import { makeTemp, removeTemps, writeTree } from '../helpers/store-helpers.js'
import { pythonChecksum } from '../helpers/store-legacy.js'

afterAll(removeTemps)

// Names chosen so that byte order, locale order and walk order all differ.
const tricky: Record<string, string | Uint8Array> = {
  'B.txt': 'upper',
  'a.txt': 'lower',
  'a-b': 'dash',
  'a/b': 'in dir a',
  'a/z/deep.bin': new Uint8Array([0, 1, 2, 255]),
  'a.b/c': 'dot dir',
  'with space.json': '{}',
  'ünïcode.txt': 'utf-8 name',
  'sub/manifest.json': 'a nested manifest.json is an ordinary file',
  'empty': '',
}

describe('sha256-files-v1', () => {
  it('equals the sha256 of the sha256sum pipeline of acceptance 4 (real coreutils)', async () => {
    const root = makeTemp()
    const store = new ModelStore(root)
    const dir = await store.stage('scout', 'v1')
    writeTree(dir, tricky)
    const r = await store.finalize('scout', 'v1')
    const pipeline = `cd "$1" && find . -type f ! -path ./manifest.json | sed 's#^\\./##' | LC_ALL=C sort | xargs -d '\\n' sha256sum | sha256sum`
    const out = spawnSync('bash', ['-c', pipeline, 'bash', r.path], { encoding: 'utf8' })
    expect(out.status).toBe(0)
    expect(out.stdout.split(' ')[0]).toBe(r.checksum)
    const manifest = JSON.parse(readFileSync(join(r.path, 'manifest.json'), 'utf8'))
    expect(manifest.checksum).toBe(r.checksum)
    expect(manifest.files.map((f: { path: string }) => f.path)).toContain('sub/manifest.json')
    // The file list is exactly what sha256sum prints, line for line.
    const lines = spawnSync('bash', ['-c', `cd "$1" && find . -type f ! -path ./manifest.json | sed 's#^\\./##' | LC_ALL=C sort | xargs -d '\\n' sha256sum`, 'bash', r.path], { encoding: 'utf8' })
    expect(sha256sumText(manifest.files)).toBe(lines.stdout)
  })

  it('does not depend on the order of the list', () => {
    const files = [
      { path: 'b', sha256: 'b'.repeat(64) },
      { path: 'a', sha256: 'a'.repeat(64) },
    ]
    expect(checksumFilesV1(files)).toBe(checksumFilesV1([...files].reverse()))
    expect(sha256sumText(files)).toBe(`${'a'.repeat(64)}  a\n${'b'.repeat(64)}  b\n`)
  })
})

describe('legacy checksum', () => {
  it('matches an independent implementation of the Python algorithm, skipping every manifest.json', async () => {
    const dir = makeTemp()
    writeTree(dir, { ...tricky, 'manifest.json': '{"version": "x"}' })
    expect(await legacyChecksum(dir)).toBe(pythonChecksum(dir))
    writeTree(dir, { 'sub/manifest.json': 'changed' })
    expect(await legacyChecksum(dir)).toBe(pythonChecksum(dir))
  })

  it('changes when a file name changes, even with the same bytes', async () => {
    const a = makeTemp()
    const b = makeTemp()
    writeTree(a, { x: 'same' })
    writeTree(b, { y: 'same' })
    expect(await legacyChecksum(a)).not.toBe(await legacyChecksum(b))
  })
})

describe('parseManifest', () => {
  const good = {
    version: 'v1', checksum: 'a'.repeat(64), metadata: {}, schema: 'modelforge/manifest@1', agent: 'scout',
    created_at: '2026-11-23T10:00:00.000Z', checksum_algorithm: 'sha256-files-v1', files: [{ path: 'm.onnx', size: 1, sha256: 'b'.repeat(64) }],
  }
  it('reads manifest@1 and legacy manifests', () => {
    expect(parseManifest(good, 'm').kind).toBe('v1')
    expect(parseManifest({ version: 'v1', checksum: 'c'.repeat(64), metadata: { acc: 1 } }, 'm').kind).toBe('legacy')
    // store.legacyChecksum: the Python value in checksum, the sha256-files-v1 value beside it.
    expect(parseManifest({ ...good, checksum_algorithm: 'legacy-python-sha256', files_checksum: 'd'.repeat(64) }, 'm').kind).toBe('v1')
  })
  it.each([
    [[], /not a JSON object/],
    [{ ...good, version: undefined }, /"version"/],
    [{ ...good, checksum: 'XYZ' }, /"checksum"/],
    [{ ...good, files: 'no' }, /"files"/],
    [{ ...good, files: [{ path: 'a', size: -1, sha256: 'b'.repeat(64) }] }, /bad entry/],
    [{ ...good, files: [good.files[0], good.files[0]] }, /twice/],
    [{ ...good, checksum_algorithm: 'md5' }, /checksum_algorithm/],
    [{ ...good, checksum_algorithm: 'legacy-python-sha256' }, /"files_checksum"/],
    [{ ...good, checksum_algorithm: 'legacy-python-sha256', files_checksum: 'XYZ' }, /"files_checksum"/],
    [{ ...good, created_at: 'yesterday' }, /created_at/],
    [{ ...good, schema: 'modelforge/manifest@9' }, /does not know/],
  ])('refuses a malformed manifest (%#)', (value, why) => {
    expect(() => parseManifest(value, 'm')).toThrow(IntegrityError)
    expect(() => parseManifest(value, 'm')).toThrow(why)
  })
})
