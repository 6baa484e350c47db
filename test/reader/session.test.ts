/** openSession and resolveCurrent as a service uses them: real stores, real onnxruntime, a hand-made HF cache. */
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { ModelStore } from '../../src/publish/store.js'
import { openSession, resolveCurrent, servedOnnx } from '../../src/reader/index.js'
import { readReferenceJson } from '../../src/validate/reference.js'
import { compareOutput } from '../../src/validate/compare.js'
import { repoRoot } from '../helpers/store-helpers.js'

const TINY = join(repoRoot, 'fixtures', 'hf-tiny', 'tiny-bert')
let dir: string
let root: string
const saved = { MODEL_STORE_ROOT: process.env.MODEL_STORE_ROOT, STRICT_MODEL_STORE: process.env.STRICT_MODEL_STORE }

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mf-reader-'))
  root = join(dir, 'store')
  const store = new ModelStore(root, { strict: false })
  // v1: a version as toy-store or the Python ModelStore wrote them: model.onnx, no artifacts.
  await store.withStaging('analyst', 'v1', async (d) => copyFileSync(join(TINY, 'model.onnx'), join(d, 'model.onnx')))
  await store.finalize('analyst', 'v1')
  // v2: as build-engine's onnx target writes it: the served model and the fp32 reference beside it.
  await store.withStaging('analyst', 'v2', async (d) => {
    mkdirSync(join(d, 'fp32'))
    copyFileSync(join(TINY, 'model.onnx'), join(d, 'fp32', 'model.onnx'))
    copyFileSync(join(TINY, 'model.onnx'), join(d, 'served.onnx'))
    copyFileSync(join(TINY, 'config.json'), join(d, 'config.json'))
  })
  await store.finalize('analyst', 'v2', { manifest: { artifacts: [
    { path: 'served.onnx', kind: 'onnx', precision: 'fp32', role: 'serve' },
    { path: 'fp32/model.onnx', kind: 'onnx', precision: 'fp32', role: 'reference' },
  ] } })
})
afterEach(() => {
  for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k]; else process.env[k] = v
})
afterAll(() => {
  rmSync(dir, { recursive: true, force: true })
})

describe('openSession', () => {
  it('runs the model current serves, from the version directory it resolved once', async () => {
    const m = await openSession('analyst', { root })
    try {
      expect(m).toMatchObject({ agent: 'analyst', source: 'store', version: 'v2', dir: join(root, 'analyst', 'versions', 'v2'), model: join(root, 'analyst', 'versions', 'v2', 'served.onnx') })
      expect(m.inputs.map((i) => i.name)).toEqual(['input_ids', 'attention_mask', 'token_type_ids'])
      const ref = await readReferenceJson(join(TINY, 'reference.json'))
      const inputs = Object.fromEntries(ref.inputs.map((t) => [t.name!, t.tensor]))
      const out = await m.run(inputs)
      for (const expected of ref.outputs) {
        const r = compareOutput(expected.name!, 'reference', out[expected.name!]!, expected.tensor, { atol: 1e-4, rtol: 1e-3, precision: 'fp32' })
        expect(r.passed, expected.name).toBe(true)
      }
    } finally {
      await m.close()
    }
  })

  it('loads another file of the version when asked, and model.onnx of a version without artifacts', async () => {
    const ref = await openSession('analyst', { root, artifact: 'fp32/model.onnx' })
    expect(ref.model).toBe(join(root, 'analyst', 'versions', 'v2', 'fp32', 'model.onnx'))
    await ref.close()
    await new ModelStore(root).promote('analyst', 'v1')
    try {
      const legacy = await openSession('analyst', { root })
      expect(legacy).toMatchObject({ version: 'v1', model: join(root, 'analyst', 'versions', 'v1', 'model.onnx') })
      await legacy.close()
    } finally {
      await new ModelStore(root).promote('analyst', 'v2')
    }
    expect(servedOnnx(null)).toBe('model.onnx')
  })

  it('a file the version does not hold is exit 4 naming it (also one outside the version)', async () => {
    for (const artifact of ['missing.onnx', '../v1/model.onnx']) {
      await expect(openSession('analyst', { root, artifact })).rejects.toMatchObject({ code: 'ARTIFACT_MISSING', exitCode: 4 })
    }
  })

  it('honours MODEL_STORE_ROOT and STRICT_MODEL_STORE', async () => {
    process.env.MODEL_STORE_ROOT = root
    delete process.env.STRICT_MODEL_STORE
    expect(resolveCurrent('analyst')).toMatchObject({ version: 'v2' })
    const m = await openSession('analyst')
    expect(m.version).toBe('v2')
    await m.close()
    expect(resolveCurrent('nobody')).toBeNull()
    process.env.STRICT_MODEL_STORE = '1'
    expect(() => resolveCurrent('nobody')).toThrow(expect.objectContaining({ code: 'AGENT_NOT_FOUND', exitCode: 6 }))
  })

  it('strict: a missing store, agent or current is exit 6, and the fallback is never used', async () => {
    const cacheDir = makeCache('org/tiny-bert')
    await expect(openSession('analyst', { root: join(dir, 'nowhere'), strict: true, fallbackModelId: 'org/tiny-bert', cacheDir })).rejects.toMatchObject({ code: 'STORE_NOT_FOUND', exitCode: 6 })
    await expect(openSession('nobody', { root, strict: true, fallbackModelId: 'org/tiny-bert', cacheDir })).rejects.toMatchObject({ code: 'AGENT_NOT_FOUND', exitCode: 6 })
    const noCurrent = join(dir, 'no-current')
    const store = new ModelStore(noCurrent)
    await store.withStaging('a', 'v1', async (d) => writeFileSync(join(d, 'model.onnx'), 'x'))
    await store.finalize('a', 'v1', { publish: false })
    await expect(openSession('a', { root: noCurrent, strict: true, fallbackModelId: 'org/tiny-bert', cacheDir })).rejects.toMatchObject({ code: 'NO_CURRENT', exitCode: 6 })
  })

  it('strict off, nothing published: the model from the HF cache, offline', async () => {
    const cacheDir = makeCache('org/tiny-bert')
    const m = await openSession('analyst', { root: join(dir, 'nowhere'), strict: false, fallbackModelId: 'org/tiny-bert', cacheDir })
    expect(m).toMatchObject({ source: 'hf-cache', version: null, manifest: null })
    expect(m.model).toMatch(/models--org--tiny-bert\/snapshots\/[0-9a-f]{40}\/onnx\/model\.onnx$/)
    expect(Object.keys(await m.run({
      input_ids: { dtype: 'int64', dims: [1, 3], data: new BigInt64Array([2n, 5n, 3n]) },
      attention_mask: { dtype: 'int64', dims: [1, 3], data: new BigInt64Array([1n, 1n, 1n]) },
      token_type_ids: { dtype: 'int64', dims: [1, 3], data: new BigInt64Array(3) },
    }))).toEqual(['last_hidden_state', 'pooler_output'])
    await m.close()
  })

  it('strict off: no fallback given, a model not cached, a cached model without ONNX: exit 6, each said', async () => {
    await expect(openSession('analyst', { root: join(dir, 'nowhere'), strict: false })).rejects.toMatchObject({ code: 'MODEL_UNAVAILABLE', exitCode: 6 })
    await expect(openSession('analyst', { root: join(dir, 'nowhere'), strict: false, fallbackModelId: 'org/absent', cacheDir: makeCache('org/tiny-bert') })).rejects.toMatchObject({ code: 'NOT_CACHED', exitCode: 6 })
    await expect(openSession('analyst', { root: join(dir, 'nowhere'), strict: false, fallbackModelId: 'org/no-onnx', cacheDir: makeCache('org/no-onnx', false) })).rejects.toMatchObject({ code: 'FALLBACK_NO_ONNX', exitCode: 6 })
  })

  it('a damaged store is never papered over by the fallback', async () => {
    const damaged = join(dir, 'damaged')
    mkdirSync(join(damaged, 'a', 'versions'), { recursive: true })
    symlinkSync('versions/gone', join(damaged, 'a', 'current'))
    await expect(openSession('a', { root: damaged, strict: false, fallbackModelId: 'org/tiny-bert', cacheDir: makeCache('org/tiny-bert') })).rejects.toMatchObject({ exitCode: 4 })
  })
})

let caches = 0
/** An HF cache holding repo@main as huggingface_hub lays it out: refs/main, snapshots/<commit>/. */
function makeCache(repo: string, withOnnx = true): string {
  const cacheDir = join(dir, `hf-${caches++}`)
  const commit = 'c0ffee'.padEnd(40, '0')
  const repoDir = join(cacheDir, `models--${repo.replace('/', '--')}`)
  mkdirSync(join(repoDir, 'refs'), { recursive: true })
  writeFileSync(join(repoDir, 'refs', 'main'), commit)
  const snap = join(repoDir, 'snapshots', commit)
  mkdirSync(join(snap, 'onnx'), { recursive: true })
  copyFileSync(join(TINY, 'config.json'), join(snap, 'config.json'))
  if (withOnnx) copyFileSync(join(TINY, 'model.onnx'), join(snap, 'onnx', 'model.onnx'))
  return cacheDir
}
