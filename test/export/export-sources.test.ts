/**
 * Where `export` reads from and which exporter auto picks: repo ids through the HF cache layout, shipped
 * ONNX vs native vs optimum, --out conflicts and --force.
 */
import { cp, mkdir, readdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { exportModel, optimumArgs } from '../../src/export/index.js'
import { fetchModel } from '../../src/hub/index.js'
import { tryLock } from '../../src/lib/lock.js'
import { copyFixture, FIXTURES, loadReference, maxAbsDiff, referenceFeeds, runOnnx, tempDir, expectFailure } from './export-helpers.js'

let dir: string
beforeAll(async () => {
  dir = await tempDir('sources')
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

const fail = expectFailure

/** A Hugging Face cache holding fixture `model` as `repoId` at one commit, with blobs and relative links. */
async function hfCache(model: string, withOnnx: boolean, repoId = `test-org/${model}`): Promise<{ cache: string; commit: string }> {
  const cache = join(dir, `cache-${repoId.replace('/', '--')}-${withOnnx}`)
  const repo = join(cache, `models--${repoId.replace('/', '--')}`)
  const commit = 'a'.repeat(39) + (withOnnx ? '1' : '0')
  await mkdir(join(repo, 'blobs'), { recursive: true })
  await mkdir(join(repo, 'refs'))
  await mkdir(join(repo, 'snapshots', commit), { recursive: true })
  await writeFile(join(repo, 'refs', 'main'), commit)
  for (const f of await readdir(join(FIXTURES, model))) {
    if (f === 'model.onnx' && !withOnnx) continue
    await cp(join(FIXTURES, model, f), join(repo, 'blobs', `blob-${f}`))
    await symlink(`../../blobs/blob-${f}`, join(repo, 'snapshots', commit, f))
  }
  return { cache, commit }
}

describe('repo ids through the Hugging Face cache', () => {
  it('exports test-org/tiny-roberta@main from the cache, following snapshot symlinks', async () => {
    const { cache } = await hfCache('tiny-roberta', false)
    const out = join(dir, 'hub-out')
    const result = await exportModel({ model: 'test-org/tiny-roberta', cacheDir: cache, out })
    expect(result.source).toMatchObject({ kind: 'hub', repo: 'test-org/tiny-roberta', revision: 'main' })
    expect(result.exporter).toBe('native')
    const ref = await loadReference('tiny-roberta')
    const got = await runOnnx(join(out, 'model.onnx'), referenceFeeds(ref))
    expect(maxAbsDiff(got.last_hidden_state!.data, ref.outputs.last_hidden_state!.data)).toBeLessThan(1e-4)
  })

  it('a commit hash works without refs; an uncached revision is exit 6 with the fetch command', async () => {
    const { cache, commit } = await hfCache('tiny-bert', true)
    const result = await exportModel({ model: 'test-org/tiny-bert', revision: commit, cacheDir: cache, out: join(dir, 'by-commit') })
    expect(result.exporter).toBe('repo')
    const err = await fail(exportModel({ model: 'test-org/tiny-bert', revision: 'v9', cacheDir: cache, out: join(dir, 'v9') }))
    expect(err.exitCode).toBe(6)
    expect(err.hint).toMatch(/modelforge fetch test-org\/tiny-bert --revision v9/)
    expect(existsSync(join(dir, 'v9'))).toBe(false)
  })

  it('a canonical repo id without a namespace resolves as fetch resolves it', async () => {
    const { cache, commit } = await hfCache('tiny-bert', false, 'bert-base-uncased')
    const fetched = await fetchModel('bert-base-uncased', { offline: true, cacheDir: cache, config: {} })
    const result = await exportModel({ model: 'bert-base-uncased', cacheDir: cache, out: join(dir, 'canonical') })
    expect(result.source).toEqual({ kind: 'hub', dir: fetched.snapshot, repo: 'bert-base-uncased', revision: 'main' })
    expect(fetched.commit).toBe(commit)
    expect(result).toMatchObject({ exporter: 'native', modelType: 'bert' })
  })

  it('an invalid repo id gets the same error from export as from fetch', async () => {
    const cache = join(dir, 'no-cache')
    for (const bad of ['a--b/c', 'org/name.git', 'has space']) {
      const fromFetch = await fail(fetchModel(bad, { offline: true, cacheDir: cache, config: {} }))
      const fromExport = await fail(exportModel({ model: bad, cacheDir: cache, out: join(dir, 'bad-id') }))
      expect(fromFetch).toMatchObject({ exitCode: 2, code: 'INVALID_REPO_ID', message: `Invalid repo id "${bad}"` })
      expect(fromExport).toMatchObject({ exitCode: fromFetch.exitCode, code: fromFetch.code, message: fromFetch.message, hint: fromFetch.hint })
    }
    expect(existsSync(join(dir, 'bad-id'))).toBe(false)
  })

  it('refuses --revision with a local directory, and names that are neither', async () => {
    const err = await fail(exportModel({ model: join(FIXTURES, 'tiny-bert'), revision: 'main', out: join(dir, 'x') }))
    expect(err.exitCode).toBe(2)
    expect(err.message).toMatch(/--revision applies to repo ids/)
    const err2 = await fail(exportModel({ model: join(dir, 'no-such-dir'), out: join(dir, 'x') }))
    expect(err2.exitCode).toBe(6)
    expect(err2.message).toMatch(/is neither a directory nor a repo id/)
    const err3 = await fail(exportModel({ model: join(FIXTURES, 'tiny-bert', 'config.json'), out: join(dir, 'x') }))
    expect(err3.message).toMatch(/is a file; export takes a model directory or a repo id/)
  })
})

describe('--exporter auto', () => {
  it('prefers the shipped ONNX when it has the task output', async () => {
    const result = await exportModel({ model: join(FIXTURES, 'tiny-bert-classifier'), out: join(dir, 'auto-repo') })
    expect(result).toMatchObject({ exporter: 'repo', task: 'text-classification', reason: 'the repository ships model.onnx' })
  })

  it('goes native when the shipped ONNX lacks the task output (sentence-transformers repo with a plain encoder)', async () => {
    const d = await copyFixture('tiny-bert', join(dir, 'st'), true)
    await writeFile(join(d, 'modules.json'), JSON.stringify([
      { idx: 0, name: '0', path: '', type: 'sentence_transformers.models.Transformer' },
      { idx: 1, name: '1', path: '1_Pooling', type: 'sentence_transformers.models.Pooling' },
    ]))
    await mkdir(join(d, '1_Pooling'))
    await writeFile(join(d, '1_Pooling', 'config.json'), JSON.stringify({ pooling_mode_mean_tokens: true }))
    const result = await exportModel({ model: d, out: join(d, 'out') })
    expect(result).toMatchObject({ exporter: 'native', task: 'sentence-embedding' })
  })

  it('with --variant, picks that shipped file, and refuses one lacking the task output instead of exporting fp32 natively', async () => {
    const d = await copyFixture('tiny-bert', join(dir, 'variant'), true)
    await mkdir(join(d, 'onnx'))
    await rename(join(d, 'model.onnx'), join(d, 'onnx', 'model_fp16.onnx'))
    const result = await exportModel({ model: d, out: join(d, 'out'), variant: 'fp16' })
    expect(result).toMatchObject({ exporter: 'repo', task: 'feature-extraction', reason: 'the repository ships onnx/model_fp16.onnx' })
    const err = await fail(exportModel({ model: d, out: join(d, 'out2'), variant: 'fp16', task: 'text-classification' }))
    expect(err.exitCode).toBe(2)
    expect(err.code).toBe('VARIANT_TASK_MISMATCH')
    expect(err.message).toMatch(/onnx\/model_fp16.onnx has no logits output, which task text-classification needs/)
    expect(err.hint).toMatch(/--task/)
    expect(existsSync(join(d, 'out2'))).toBe(false)
    const repo = await fail(exportModel({ model: d, out: join(d, 'out4'), exporter: 'repo', variant: 'fp16', task: 'text-classification' }))
    expect(repo).toMatchObject({ exitCode: 2, code: 'VARIANT_TASK_MISMATCH' })
    expect(repo.message).toMatch(/has no logits output, which --task text-classification needs \(it has last_hidden_state, pooler_output\)/)
    expect(existsSync(join(d, 'out4'))).toBe(false)
    const missing = await fail(exportModel({ model: d, out: join(d, 'out3'), variant: 'quantized' }))
    expect(missing).toMatchObject({ exitCode: 6, code: 'REPO_ONNX_NOT_FOUND' })
    expect(missing.hint).toMatch(/Available variants: fp16 \(onnx\/model_fp16.onnx\)/)
  })

  it('falls back to optimum for other architectures: exit 3 with an install hint when optimum-cli is missing', async () => {
    const d = await copyFixture('tiny-bert', join(dir, 'gpt2'))
    await writeFile(join(d, 'config.json'), JSON.stringify({ model_type: 'falcon', architectures: ['FalconForCausalLM'] }))
    const err = await fail(exportModel({ model: d, out: join(d, 'out'), optimumCli: 'modelforge-test-no-such-optimum-cli' }))
    expect(err.exitCode).toBe(3)
    expect(err.code).toBe('TOOL_NOT_FOUND')
    expect(err.hint).toMatch(/pip install "optimum\[exporters\]"/)
    expect(existsSync(join(d, 'out'))).toBe(false)
  })

  it('reports a failing optimum-cli as exit 3 with its exit code', async () => {
    const err = await fail(exportModel({ model: join(FIXTURES, 'tiny-bert'), exporter: 'optimum', out: join(dir, 'opt-false'), optimumCli: 'false' }))
    expect(err.exitCode).toBe(3)
    expect(err.message).toMatch(/false exited with code 1/)
  })

  it('passes the task and opset to optimum-cli (sentence-embedding as the sentence_transformers library)', () => {
    expect(optimumArgs('/m', '/o', { task: 'text-classification', opset: 17 })).toEqual(['export', 'onnx', '--model', '/m', '--task', 'text-classification', '--opset', '17', '/o'])
    expect(optimumArgs('/m', '/o', { task: 'sentence-embedding' })).toEqual(['export', 'onnx', '--model', '/m', '--library-name', 'sentence_transformers', '--task', 'feature-extraction', '/o'])
  })
})

describe('--out', () => {
  it('refuses to overwrite an export (exit 5) unless --force, which also drops the old data file', async () => {
    const out = join(dir, 'force')
    await exportModel({ model: join(FIXTURES, 'tiny-bert'), out, exporter: 'native', externalDataThreshold: 1 })
    expect(existsSync(join(out, 'model.onnx.data'))).toBe(true)
    const before = await readFile(join(out, 'model.onnx'))
    const err = await fail(exportModel({ model: join(FIXTURES, 'tiny-bert'), out, exporter: 'native' }))
    expect(err.exitCode).toBe(5)
    expect(err.hint).toMatch(/--force/)
    expect(await readFile(join(out, 'model.onnx'))).toEqual(before)
    await exportModel({ model: join(FIXTURES, 'tiny-bert'), out, exporter: 'native', force: true })
    expect(existsSync(join(out, 'model.onnx.data'))).toBe(false)
    expect((await readdir(out)).sort()).toEqual(['config.json', 'model.onnx', 'tokenizer.json', 'tokenizer_config.json', 'vocab.txt'])
  })

  it('--out that is a file, or runs through one, is exit 2 before any work (not EEXIST from mkdir)', async () => {
    const file = join(dir, 'out-is-a-file')
    await writeFile(file, 'not a directory')
    for (const out of [file, join(file, 'sub')]) {
      const events: unknown[] = []
      const err = await fail(exportModel({ model: join(FIXTURES, 'tiny-bert'), out, exporter: 'native', progress: (e) => events.push(e) }))
      expect(err).toMatchObject({ exitCode: 2, code: 'OUT_NOT_DIRECTORY', message: `--out ${out} is not a directory: ${out === file ? 'it is a file' : 'a part of the path is a file'}` })
      expect(events).toEqual([])
    }
    expect(await readFile(file, 'utf8')).toBe('not a directory')
  })

  it('an --out another export holds is exit 5 (OUT_LOCKED) and left alone; a lock whose holder died is taken over, its leftover staging removed', async () => {
    const out = join(dir, 'locked')
    await mkdir(out)
    const held = tryLock(join(out, '.modelforge-export.lock'))
    expect(held.lock).toBeDefined()
    try {
      const err = await fail(exportModel({ model: join(FIXTURES, 'tiny-bert'), out, exporter: 'native' }))
      expect(err).toMatchObject({ exitCode: 5, code: 'OUT_LOCKED', message: expect.stringContaining(`pid ${process.pid}`) })
      expect(await readdir(out)).toEqual(['.modelforge-export.lock'])
    } finally {
      held.lock!.release()
    }
    // A process that died holding the lock (its pid no longer runs) does not block --out for ever, and the
    // staging directory it left (killed mid-export) is removed by the export that takes the lock over.
    await writeFile(join(out, '.modelforge-export.lock'), JSON.stringify({ pid: 2 ** 22 + 12345, host: hostname(), token: 'dead' }))
    await mkdir(join(out, '.modelforge-export-k1LLed', 'half'), { recursive: true })
    await writeFile(join(out, '.modelforge-export-k1LLed', 'model.onnx'), 'half written')
    await exportModel({ model: join(FIXTURES, 'tiny-bert'), out, exporter: 'native' })
    expect((await readdir(out)).sort()).toEqual(['config.json', 'model.onnx', 'tokenizer.json', 'tokenizer_config.json', 'vocab.txt'])
  })

  it('refuses --out equal to the model directory', async () => {
    const d = await copyFixture('tiny-roberta', join(dir, 'same'))
    const err = await fail(exportModel({ model: d, out: d }))
    expect(err.message).toMatch(/--out is the model directory itself/)
  })
})
