import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { FetchResult } from '../../src/hub/fetch.js'
import { buildKey, buildKeyInputs, canonicalJson, contentDigest } from '../../src/pipeline/build-key.js'
import { checkOptions, type BuildEngineOptions } from '../../src/pipeline/options.js'

const source = (files: [string, string][], commit = 'a'.repeat(40)): FetchResult => ({
  source: 'hub', repo: 'org/m', revision: 'main', commit, snapshot: '/s', bytesDownloaded: 0, bytesResumed: 0, requests: 0, fromCache: true,
  files: files.map(([path, sha256]) => ({ path, size: 1, blob: sha256, hashAlgorithm: 'sha256', sha256, sha256From: 'listing', fromCache: true })),
})

async function key(o: Partial<BuildEngineOptions>, s = source([['config.json', '1'.repeat(64)]])): Promise<string> {
  const opts = { agent: 'a', modelId: 'org/m', ...o }
  return buildKey(await buildKeyInputs(opts, checkOptions(opts), s, { onnxruntime: '1.30.0' }))
}

describe('the build key', () => {
  it('canonical JSON: sorted keys at every depth, undefined members dropped', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { y: 2, x: undefined }], c: null } })).toBe('{"a":{"c":null,"d":[1,{"y":2}]},"b":1}')
  })

  it('is the same for the same build, whatever the order of the source files', async () => {
    const a = await key({ target: 'onnx' }, source([['a', '1'.repeat(64)], ['b', '2'.repeat(64)]]))
    const b = await key({ target: 'onnx' }, source([['b', '2'.repeat(64)], ['a', '1'.repeat(64)]]))
    expect(a).toBe(b)
    expect(a).toMatch(/^[0-9a-f]{64}$/)
  })

  it('changes with the commit, a file, the precision, the shapes and the exporter', async () => {
    const base = await key({})
    const others = [
      await key({}, source([['config.json', '1'.repeat(64)]], 'b'.repeat(40))),
      await key({}, source([['config.json', '2'.repeat(64)]])),
      await key({ precision: 'fp32' }),
      await key({ batch: '1:8:64' }),
      await key({ exporter: 'native' }),
    ]
    expect(new Set([base, ...others]).size).toBe(others.length + 1)
  })

  it('counts calibration data by its bytes, not its path', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mf-key-'))
    try {
      writeFileSync(join(dir, 'a.txt'), 'the model\n')
      writeFileSync(join(dir, 'b.txt'), 'the model\n')
      writeFileSync(join(dir, 'c.txt'), 'the store\n')
      const k = (f: string) => key({ precision: 'int8', transform: { calibData: join(dir, f) } })
      expect(await k('a.txt')).toBe(await k('b.txt'))
      expect(await k('a.txt')).not.toBe(await k('c.txt'))
      mkdirSync(join(dir, 'set'))
      writeFileSync(join(dir, 'set', 'x.txt'), 'x')
      const before = await contentDigest(join(dir, 'set'))
      writeFileSync(join(dir, 'set', 'x.txt'), 'y')
      expect(await contentDigest(join(dir, 'set'))).not.toBe(before)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
