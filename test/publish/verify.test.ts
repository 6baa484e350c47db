import { cpSync, mkdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { assertVerified, ModelStore } from '../../src/publish/store.js'
import { makeTemp, publish, removeTemps } from '../helpers/store-helpers.js'

afterAll(removeTemps)

describe('verify', () => {
  it('verify names modified, missing and extra files and a tampered manifest', async () => {
    const store = new ModelStore(makeTemp())
    const r = await publish(store, 'a', 'v1', { 'model.onnx': 'weights', 'labels.json': '[]', 'vocab.txt': 'a\nb\n' })
    expect((await store.verify()).every((x) => x.ok)).toBe(true)
    writeFileSync(join(r.path, 'model.onnx'), 'weighte')
    unlinkSync(join(r.path, 'labels.json'))
    writeFileSync(join(r.path, 'new.bin'), 'x')
    const [report] = await store.verify('a', 'v1')
    expect(report!.ok).toBe(false)
    expect(report!.problems.map((p) => `${p.kind} ${p.path}`)).toEqual(['missing labels.json', 'modified model.onnx', 'extra new.bin'])
    expect(() => assertVerified([report!])).toThrow(/a\/v1: .*missing: labels\.json.*modified: model\.onnx.*extra file: new\.bin/)
    const manifestPath = join(r.path, 'manifest.json')
    const m = JSON.parse(readFileSync(manifestPath, 'utf8'))
    m.files = m.files.filter((f: { path: string }) => f.path !== 'labels.json')
    writeFileSync(manifestPath, JSON.stringify(m))
    const [again] = await store.verify('a', 'v1')
    expect(again!.problems.map((p) => p.kind)).toContain('checksum')
    // A version copied from another agent is intact file by file but was not published by this agent.
    const other = await publish(store, 'b', 'v1')
    cpSync(other.path, join(store.root, 'a', 'versions', 'v9'), { recursive: true })
    const m9 = JSON.parse(readFileSync(join(store.root, 'a', 'versions', 'v9', 'manifest.json'), 'utf8'))
    m9.version = 'v9'
    writeFileSync(join(store.root, 'a', 'versions', 'v9', 'manifest.json'), JSON.stringify(m9))
    const [copied] = await store.verify('a', 'v9')
    expect(copied!.problems).toEqual([{ kind: 'manifest', path: 'manifest.json', message: 'manifest names agent b, directory is under a' }])
  })

  it('verify names exactly the file whose one byte changed, for every file at every depth', async () => {
    const store = new ModelStore(makeTemp())
    const files = { 'model.onnx': 'weights', 'cfg/config.json': '{"a": 1}', 'tok/sub/vocab.txt': 'a\nb\n', 'z.bin': 'zz' }
    const r = await publish(store, 'a', 'v1', files)
    for (const rel of Object.keys(files)) {
      const p = join(r.path, rel)
      const original = readFileSync(p)
      const changed = Buffer.from(original)
      changed[changed.length - 1] = changed[changed.length - 1]! ^ 0x20
      writeFileSync(p, changed)
      const [report] = await store.verify('a', 'v1')
      expect(report!.problems, rel).toEqual([{ kind: 'modified', path: rel, message: `modified: ${rel}` }])
      writeFileSync(p, original)
    }
    expect((await store.verify('a', 'v1'))[0]!.ok).toBe(true)
  })

  it('a version it cannot read is one problem of that version; the other versions are still checked', async () => {
    const store = new ModelStore(makeTemp())
    for (const v of ['v1', 'v2', 'v3']) await publish(store, 'a', v)
    await publish(store, 'b', 'v1')
    // A manifest.json that cannot be read as a file (here a directory: EISDIR, which even root gets).
    const m2 = join(store.root, 'a', 'versions', 'v2', 'manifest.json')
    rmSync(m2)
    mkdirSync(m2)
    writeFileSync(join(store.root, 'a', 'versions', 'v3', 'model.onnx'), 'changed')
    // (v2's directory time is now the newest, and without a readable manifest that is its place)
    const reports = (await store.verify()).sort((x, y) => `${x.agent}/${x.version}`.localeCompare(`${y.agent}/${y.version}`))
    expect(reports.map((r) => [r.agent, r.version, r.ok])).toEqual([['a', 'v1', true], ['a', 'v2', false], ['a', 'v3', false], ['b', 'v1', true]])
    expect(reports[1]!.problems).toEqual([{ kind: 'unreadable', path: 'manifest.json', message: expect.stringMatching(/^cannot read manifest\.json: .*EISDIR/) }])
    expect(reports[2]!.problems.map((p) => p.kind)).toEqual(['modified'])
    expect(() => assertVerified(reports)).toThrow(expect.objectContaining({ exitCode: 4, message: expect.stringMatching(/a\/v2: cannot read manifest\.json: EISDIR.*\na\/v3: modified: model\.onnx/) }))
    // store list shows it as that version's manifest problem, and still lists the others.
    const [a] = await store.list('a')
    expect(a!.versions.map((v) => [v.version, v.manifestError ?? null])).toEqual([['v1', null], ['v3', null], ['v2', expect.stringContaining('EISDIR')]])
  })
})
