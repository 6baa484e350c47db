import { cpSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs'
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
})
