import { mkdir, readFile, readdir, readlink, rm, stat, writeFile } from 'node:fs/promises'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { repoCache } from '../../src/hub/cache.js'
import { fetchModel, type FetchOptions } from '../../src/hub/fetch.js'
import { resolveCachedSnapshot } from '../../src/hub/index.js'
import { ExternalError, IntegrityError, NotFoundError, PolicyError, UsageError } from '../../src/lib/errors.js'
import { addTinyRepo, bytes, listTree, sha256, tempDir } from '../helpers/hub-fixtures.js'
import { gitBlobSha1, MockHub } from '../helpers/mock-hub.js'

let hub: MockHub
let cacheDir: string
let repo: { v1: string; main: string }
const fast = { attempts: 3, baseDelayMs: 5 }

function opts(extra: FetchOptions = {}): FetchOptions {
  return { endpoint: hub.url, cacheDir, config: {}, offline: false, retry: fast, token: undefined, ...extra }
}

beforeEach(async () => {
  hub = new MockHub()
  hub.pageSize = 3
  repo = addTinyRepo(hub)
  await hub.start()
  cacheDir = await tempDir()
})
afterEach(async () => {
  await hub.stop()
  await rm(cacheDir, { recursive: true, force: true })
})

const repoDir = (): string => join(cacheDir, 'models--org--tiny')

/** Nothing a half-done fetch wrote may be reachable: no snapshot dir and no refs. */
async function expectNothingReachable(): Promise<void> {
  expect(await listTree(join(repoDir(), 'snapshots'))).toEqual([])
  expect(await listTree(join(repoDir(), 'refs'))).toEqual([])
  expect(await listTree(join(repoDir(), 'trees'))).toEqual([])
}

describe('fetchModel: cache layout', () => {
  it('writes the HF layout for a branch and a tag: blobs by sha256/git sha1, relative links, refs, trees', async () => {
    const main = await fetchModel('org/tiny', opts())
    const tag = await fetchModel('org/tiny', opts({ revision: 'v1.0' }))
    expect(main.commit).toBe(repo.main)
    expect(tag.commit).toBe(repo.v1)
    expect(main.snapshot).toBe(join(repoDir(), 'snapshots', repo.main))

    expect(await readFile(join(repoDir(), 'refs', 'main'), 'utf8')).toBe(repo.main)
    expect(await readFile(join(repoDir(), 'refs', 'v1.0'), 'utf8')).toBe(repo.v1)

    const onnx = bytes(20_000, 'org/tiny:onnx')
    const config = JSON.stringify({ model_type: 'bert', hidden_size: 16 })
    const snap = join(repoDir(), 'snapshots', repo.main)
    expect(await readlink(join(snap, 'onnx', 'model.onnx'))).toBe(`../../../blobs/${sha256(onnx)}`)
    expect(await readlink(join(snap, 'config.json'))).toBe(`../../blobs/${gitBlobSha1(Buffer.from(config))}`)
    expect(await readFile(join(snap, 'config.json'), 'utf8')).toBe(config)
    expect(sha256(await readFile(join(snap, 'model.safetensors')))).toBe(main.files.find((f) => f.path === 'model.safetensors')!.blob)

    // The default set: no README, no TF weights.
    expect(main.files.map((f) => f.path)).toEqual(['config.json', 'model.safetensors', 'onnx/model.onnx', 'tokenizer.json', 'vocab.txt'])
    // Blobs shared by both commits are stored once and downloaded once.
    const blobs = await readdir(join(repoDir(), 'blobs'))
    expect(blobs).toHaveLength(7)
    expect(tag.files.filter((f) => f.fromCache).map((f) => f.path)).toEqual(['onnx/model.onnx', 'tokenizer.json', 'vocab.txt'])
    expect(hub.requests.filter((r) => r.path.endsWith('/onnx/model.onnx'))).toHaveLength(1)

    const tree = JSON.parse(await readFile(join(repoDir(), 'trees', `${repo.main}.json`), 'utf8'))
    expect(tree.format_version).toBe(1)
    expect(Object.keys(tree.files)).toContain('README.md')
    expect(tree.files['onnx/model.onnx']).toEqual({ size: 20_000, blob_id: gitBlobSha1(Buffer.from(`version https://git-lfs.github.com/spec/v1\noid sha256:${sha256(onnx)}\nsize 20000\n`)), lfs_sha256: sha256(onnx), lfs_size: 20_000 })

    // Every download is in the audit log, with source, commit, bytes and hashes.
    const audit = (await readFile(join(cacheDir, '.modelforge', 'audit.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l))
    expect(audit).toHaveLength(2)
    expect(audit[0]).toMatchObject({ event: 'fetch', repo: 'org/tiny', revision: 'main', commit: repo.main, endpoint: hub.url, bytesDownloaded: main.bytesDownloaded })
    expect(audit[0].files.find((f: { path: string }) => f.path === 'onnx/model.onnx')).toMatchObject({ sha256: sha256(onnx), downloaded: true })

    expect(await resolveCachedSnapshot('org/tiny', { cacheDir, revision: 'v1.0' })).toBe(tag.snapshot)
    // No staging leftovers.
    expect((await readdir(repoDir())).sort()).toEqual(['blobs', 'refs', 'snapshots', 'trees'])
  })

  it('pins a commit given as the revision without writing a ref', async () => {
    const r = await fetchModel('org/tiny', opts({ revision: repo.v1, include: ['config.json'] }))
    expect(r.commit).toBe(repo.v1)
    expect(await listTree(join(repoDir(), 'refs'))).toEqual([])
    expect(await listTree(r.snapshot)).toEqual([`config.json -> ../../blobs/${r.files[0]!.blob}`])
  })
})

describe('fetchModel: offline-first', () => {
  it('makes zero requests the second time, and works offline with the Hub stopped', async () => {
    const first = await fetchModel('org/tiny', opts())
    expect(first.requests).toBeGreaterThan(0)
    hub.resetCounts()
    const second = await fetchModel('org/tiny', opts())
    expect(hub.count()).toBe(0)
    expect(second).toMatchObject({ requests: 0, fromCache: true, commit: first.commit, snapshot: first.snapshot, bytesDownloaded: 0 })
    // LFS files are not re-hashed from the cache: their sha256 is then the listing's (sha256From).
    expect(second.files).toEqual(first.files.map((f) => ({ ...f, fromCache: true, sha256From: f.hashAlgorithm === 'sha256' ? 'listing' : 'content' })))

    await hub.stop()
    const offline = await fetchModel('org/tiny', opts({ offline: true }))
    expect(offline.commit).toBe(first.commit)
    await expect(fetchModel('org/tiny', opts({ offline: true, revision: 'v1.0' }))).rejects.toMatchObject({
      exitCode: 6,
      code: 'NOT_CACHED',
      message: expect.stringContaining('refs/v1.0'),
    })
    const missing = fetchModel('org/tiny', opts({ offline: true, include: ['README.md'] }))
    await expect(missing).rejects.toBeInstanceOf(NotFoundError)
    await expect(missing).rejects.toThrow(/README\.md/)
  })

  it('fetches only the missing files of a cached commit (no revision or listing request)', async () => {
    await fetchModel('org/tiny', opts({ include: ['*.json'] }))
    hub.resetCounts()
    const r = await fetchModel('org/tiny', opts({ include: ['*.json', 'README.md'] }))
    expect(hub.requests.map((q) => q.path)).toEqual([`/org/tiny/resolve/${repo.main}/README.md`])
    expect(r.files.map((f) => [f.path, f.fromCache])).toEqual([
      ['README.md', false],
      ['config.json', true],
      ['tokenizer.json', true],
    ])
  })

  it('--refresh asks the Hub for the current commit of a branch; without it the cached commit is used', async () => {
    await fetchModel('org/tiny', opts({ include: ['config.json'] }))
    hub.setBranch('org/tiny', 'main', repo.v1)
    hub.resetCounts()
    expect((await fetchModel('org/tiny', opts({ include: ['config.json'] }))).commit).toBe(repo.main)
    expect(hub.count()).toBe(0)
    const refreshed = await fetchModel('org/tiny', opts({ include: ['config.json'], refresh: true }))
    expect(refreshed.commit).toBe(repo.v1)
    expect(await readFile(join(repoDir(), 'refs', 'main'), 'utf8')).toBe(repo.v1)
    await expect(fetchModel('org/tiny', opts({ refresh: true, offline: true }))).rejects.toBeInstanceOf(UsageError)
  })

  it('reads a cache without trees/ (older huggingface_hub): judges by the snapshot content', async () => {
    await fetchModel('org/tiny', opts())
    await rm(join(repoDir(), 'trees'), { recursive: true })
    await hub.stop()
    const r = await fetchModel('org/tiny', opts({ offline: true }))
    expect(r.files.map((f) => f.path)).toEqual(['config.json', 'model.safetensors', 'onnx/model.onnx', 'tokenizer.json', 'vocab.txt'])
    expect(r.files.find((f) => f.path === 'onnx/model.onnx')!.hashAlgorithm).toBe('sha256')
    await expect(fetchModel('org/tiny', opts({ offline: true, include: ['README.md'] }))).rejects.toMatchObject({ exitCode: 6 })
  })

  it('online, a snapshot without trees/ (hf_hub_download of config.json alone) is completed from the listing, not taken as whole', async () => {
    await fetchModel('org/tiny', opts({ include: ['config.json'] }))
    await rm(join(repoDir(), 'trees'), { recursive: true })
    hub.resetCounts()
    const r = await fetchModel('org/tiny', opts())
    expect(r.fromCache).toBe(false)
    expect(r.commit).toBe(repo.main)
    expect(r.files.map((f) => [f.path, f.fromCache])).toEqual([
      ['config.json', true],
      ['model.safetensors', false],
      ['onnx/model.onnx', false],
      ['tokenizer.json', false],
      ['vocab.txt', false],
    ])
    // The cached ref is trusted (no revision request); only the listing of that commit is asked for.
    expect(hub.requests.some((q) => q.path.includes('/revision/'))).toBe(false)
    expect(hub.requests.some((q) => q.path.includes('/tree/'))).toBe(true)
    hub.resetCounts()
    expect((await fetchModel('org/tiny', opts())).fromCache).toBe(true)
    expect(hub.count()).toBe(0)
  })

  it('an abbreviated commit resolves offline against the cached snapshots; unknown or ambiguous ones exit 6', async () => {
    await fetchModel('org/tiny', opts({ include: ['config.json'] }))
    await fetchModel('org/tiny', opts({ include: ['config.json'], revision: 'v1.0' }))
    await hub.stop()
    const short = repo.v1.slice(0, 8)
    const r = await fetchModel('org/tiny', opts({ offline: true, revision: short, include: ['config.json'] }))
    expect(r).toMatchObject({ commit: repo.v1, fromCache: true, requests: 0 })
    expect(await resolveCachedSnapshot('org/tiny', { cacheDir, revision: short })).toBe(r.snapshot)
    expect(await listTree(join(repoDir(), 'refs'))).toEqual(['main', 'v1.0'])
    const unknown = repo.v1.startsWith('0000000') ? 'fffffff' : '0000000'
    await expect(fetchModel('org/tiny', opts({ offline: true, revision: unknown }))).rejects.toMatchObject({ exitCode: 6, code: 'NOT_CACHED' })
    // Two snapshots share the prefix: no guess.
    const twin = repo.v1.slice(0, 7) + 'f'.repeat(33)
    await mkdir(join(repoDir(), 'snapshots', twin === repo.v1 ? repo.v1.slice(0, 7) + 'e'.repeat(33) : twin), { recursive: true })
    await expect(fetchModel('org/tiny', opts({ offline: true, revision: repo.v1.slice(0, 7), include: ['config.json'] }))).rejects.toMatchObject({ exitCode: 6 })
  })

  it('a blob already in blobs/ is linked without waiting for its lock (held by another process)', async () => {
    const first = await fetchModel('org/tiny', opts({ include: ['config.json'] }))
    for (const d of ['snapshots', 'refs', 'trees']) await rm(join(repoDir(), d), { recursive: true })
    const lock = join(cacheDir, '.locks', 'models--org--tiny', `${first.files[0]!.blob}.lock`)
    await mkdir(join(lock, '..'), { recursive: true })
    await writeFile(lock, JSON.stringify({ pid: process.ppid, host: hostname(), token: 'busy' }))
    const r = await fetchModel('org/tiny', opts({ include: ['config.json'], lockTimeoutMs: 200 }))
    expect(r.files).toEqual(first.files.map((f) => ({ ...f, fromCache: true })))
    expect(hub.requests.filter((q) => q.path.includes('/resolve/'))).toHaveLength(1)
  })

  it('a branch whose name holds "/" is stored as nested refs/ files, like huggingface_hub', async () => {
    hub.setBranch('org/tiny', 'release/v2', repo.v1)
    const r = await fetchModel('org/tiny', opts({ revision: 'release/v2', include: ['config.json'] }))
    expect(r.commit).toBe(repo.v1)
    expect(await readFile(join(repoDir(), 'refs', 'release', 'v2'), 'utf8')).toBe(repo.v1)
    hub.resetCounts()
    expect(await fetchModel('org/tiny', opts({ revision: 'release/v2', include: ['config.json'], offline: true }))).toMatchObject({ commit: repo.v1, fromCache: true })
    expect(hub.count()).toBe(0)
  })

  it('uses a local directory as is, without the network', async () => {
    const dir = join(cacheDir, 'local-model')
    await mkdir(join(dir, 'onnx'), { recursive: true })
    await writeFile(join(dir, 'config.json'), '{}')
    await writeFile(join(dir, 'onnx', 'model.onnx'), 'x')
    const r = await fetchModel(dir, opts())
    expect(r).toMatchObject({ source: 'local', snapshot: dir, requests: 0, fromCache: true })
    expect(r.files.map((f) => [f.path, f.sha256])).toEqual([
      ['config.json', sha256('{}')],
      ['onnx/model.onnx', sha256('x')],
    ])
    expect(hub.count()).toBe(0)
  })
})

describe('fetchModel: a damaged cache says so', () => {
  const blobOf = (r: { files: { path: string; blob: string }[] }, path: string): string => join(repoDir(), 'blobs', r.files.find((f) => f.path === path)!.blob)

  /** Flips one byte of a file in place: same size, other content. */
  async function flipByte(path: string, at = 10): Promise<void> {
    const b = await readFile(path)
    b[at] = b[at]! ^ 0xff
    await writeFile(path, b)
  }

  it('a sha256 is never claimed without being computed or checked: sha256From says where it comes from', async () => {
    const first = await fetchModel('org/tiny', opts())
    // Downloaded: every file was hashed as it arrived.
    expect(first.files.map((f) => f.sha256From)).toEqual(['content', 'content', 'content', 'content', 'content'])
    const cached = await fetchModel('org/tiny', opts({ offline: true }))
    // From the cache: LFS files are not re-hashed (gigabytes on every run); their sha256 is the listing's.
    expect(cached.files.map((f) => [f.path, f.hashAlgorithm, f.sha256From])).toEqual([
      ['config.json', 'git-sha1', 'content'],
      ['model.safetensors', 'sha256', 'listing'],
      ['onnx/model.onnx', 'sha256', 'listing'],
      ['tokenizer.json', 'git-sha1', 'content'],
      ['vocab.txt', 'git-sha1', 'content'],
    ])
    expect(cached.verified).toBeUndefined()
  })

  it('verify re-hashes every file of the result from the cache, without a request', async () => {
    const first = await fetchModel('org/tiny', opts())
    hub.resetCounts()
    const r = await fetchModel('org/tiny', opts({ verify: true }))
    expect(hub.count()).toBe(0)
    expect(r).toMatchObject({ fromCache: true, verified: true })
    expect(r.files.map((f) => f.sha256From)).toEqual(['content', 'content', 'content', 'content', 'content'])
    expect(r.files.map((f) => f.sha256)).toEqual(first.files.map((f) => f.sha256))
    // The worker-thread hasher (for large files) checks the same way.
    expect((await fetchModel('org/tiny', opts({ verify: true, hashWorkerMinBytes: 0 }))).files.map((f) => f.sha256)).toEqual(first.files.map((f) => f.sha256))
    // Downloaded in the same run: checked again after the snapshot is linked.
    await rm(cacheDir, { recursive: true, force: true })
    expect(await fetchModel('org/tiny', opts({ verify: true, include: ['*.json'] }))).toMatchObject({ fromCache: false, verified: true })
  })

  it('verify: a blob that no longer matches its hash is exit 4 naming the file (LFS sha256 and git blob sha1), with the blob to remove', async () => {
    const first = await fetchModel('org/tiny', opts())
    await flipByte(blobOf(first, 'model.safetensors'))
    await flipByte(blobOf(first, 'vocab.txt'), 2)
    // Without verify the cache is trusted by size, as huggingface_hub trusts it.
    expect((await fetchModel('org/tiny', opts({ offline: true }))).fromCache).toBe(true)
    const err = await fetchModel('org/tiny', opts({ offline: true, verify: true })).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(IntegrityError)
    expect(err).toMatchObject({ exitCode: 4, code: 'CACHE_CORRUPT' })
    const e = err as IntegrityError
    expect(e.message).toMatch(/^2 cached files of org\/tiny@main no longer match: model\.safetensors \(its sha256 is [0-9a-f]{64}, not [0-9a-f]{64}\); vocab\.txt \(its git blob sha1 is [0-9a-f]{40}, not [0-9a-f]{40}\)$/)
    expect(e.hint).toContain(blobOf(first, 'model.safetensors'))
    expect(e.hint).toContain('modelforge fetch org/tiny --revision main')
    expect(e.details).toMatchObject({ files: [{ path: 'model.safetensors', blob: first.files[1]!.blob }, { path: 'vocab.txt' }] })
    // Removing the named blob and fetching again repairs it.
    await rm(blobOf(first, 'model.safetensors'))
    await rm(blobOf(first, 'vocab.txt'))
    expect(await fetchModel('org/tiny', opts({ verify: true }))).toMatchObject({ verified: true })
  })

  it('a short blob offline is corrupt (exit 4), not missing; online it is downloaded again, with a warning', async () => {
    const first = await fetchModel('org/tiny', opts())
    const blob = blobOf(first, 'model.safetensors')
    await writeFile(blob, (await readFile(blob)).subarray(0, 100))
    const err = await fetchModel('org/tiny', opts({ offline: true })).catch((e: unknown) => e)
    expect(err).toMatchObject({ exitCode: 4, code: 'CACHE_CORRUPT', message: expect.stringContaining('model.safetensors (holds 100 bytes, the listing says 60000)') })
    const r = await fetchModel('org/tiny', opts())
    expect(r.files.find((f) => f.path === 'model.safetensors')).toMatchObject({ fromCache: false, sha256: sha256(bytes(60_000, 'org/tiny:w1')) })
    expect(r.warnings).toEqual(['model.safetensors: the cached blob held 100 bytes, the listing says 60000; it was downloaded again'])
  })

  it('a ref that holds no commit is exit 4 naming the file, with --refresh as the way out; --refresh rewrites it', async () => {
    await fetchModel('org/tiny', opts({ include: ['config.json'] }))
    const ref = join(repoDir(), 'refs', 'main')
    for (const garbage of ['not a commit', '', 'abc123']) {
      await writeFile(ref, garbage)
      hub.resetCounts()
      for (const offline of [true, false]) {
        const err = await fetchModel('org/tiny', opts({ offline, include: ['config.json'] })).catch((e: unknown) => e)
        expect(err).toMatchObject({ exitCode: 4, code: 'REF_INVALID', message: `${ref} holds ${JSON.stringify(garbage)}, not a 40-hex commit`, hint: expect.stringContaining('--refresh') })
      }
      expect(hub.count()).toBe(0)
      await expect(resolveCachedSnapshot('org/tiny', { cacheDir })).rejects.toMatchObject({ exitCode: 4, code: 'REF_INVALID' })
    }
    expect(await fetchModel('org/tiny', opts({ refresh: true, include: ['config.json'] }))).toMatchObject({ commit: repo.main })
    expect(await readFile(ref, 'utf8')).toBe(repo.main)
  })

  it('a cache directory that is a file (or a path through one) is exit 2 before any request', async () => {
    const file = join(cacheDir, 'a-file')
    await mkdir(cacheDir, { recursive: true })
    await writeFile(file, 'x')
    for (const dir of [file, join(file, 'hub')]) {
      for (const offline of [true, false]) {
        const err = await fetchModel('org/tiny', opts({ cacheDir: dir, offline })).catch((e: unknown) => e)
        expect(err).toMatchObject({ exitCode: 2, code: 'CACHE_NOT_DIRECTORY', message: expect.stringContaining(`The Hugging Face cache ${dir} (from --cache-dir) is not a directory`) })
      }
      await expect(resolveCachedSnapshot('org/tiny', { cacheDir: dir })).rejects.toMatchObject({ exitCode: 2, code: 'CACHE_NOT_DIRECTORY' })
    }
    expect(hub.count()).toBe(0)
  })
})

describe('fetchModel: faults', () => {
  it('a truncated body is retried with a Range request and completes', async () => {
    hub.fault({ kind: 'truncate', path: 'model.safetensors', atByte: 20_000 })
    const r = await fetchModel('org/tiny', opts())
    const gets = hub.requests.filter((q) => q.path.endsWith('/model.safetensors'))
    expect(gets.map((q) => q.range)).toEqual([undefined, 'bytes=20000-'])
    expect(r.files.find((f) => f.path === 'model.safetensors')!.sha256).toBe(sha256(bytes(60_000, 'org/tiny:w1')))
  })

  it('a body truncated on every attempt exits 3, leaves nothing reachable, and a rerun resumes the partial file', async () => {
    hub.fault({ kind: 'truncate', path: 'model.safetensors', atByte: 10_000, times: 1 })
    hub.fault({ kind: 'reset', path: 'model.safetensors', times: Infinity })
    const err = await fetchModel('org/tiny', opts()).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ExternalError)
    expect(err).toMatchObject({ exitCode: 3, code: 'HUB_UNREACHABLE' })
    await expectNothingReachable()
    const blobs = await readdir(join(repoDir(), 'blobs'))
    const partial = blobs.find((b) => b.endsWith('.incomplete'))!
    expect((await stat(join(repoDir(), 'blobs', partial))).size).toBe(10_000)

    hub.clearFaults()
    hub.resetCounts()
    const r = await fetchModel('org/tiny', opts())
    expect(hub.requests.filter((q) => q.path.includes('/resolve/')).map((q) => [q.path.split('/').pop(), q.range])).toEqual([['model.safetensors', 'bytes=10000-']])
    expect(r.bytesResumed).toBe(10_000)
    expect((await readdir(join(repoDir(), 'blobs'))).some((b) => b.endsWith('.incomplete'))).toBe(false)
  })

  it('corrupted bytes are rejected with exit 4, the partial is removed, and a rerun completes', async () => {
    hub.fault({ kind: 'corrupt', path: 'onnx/model.onnx' })
    const err = await fetchModel('org/tiny', opts()).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(IntegrityError)
    expect(err).toMatchObject({ exitCode: 4, code: 'HASH_MISMATCH', message: expect.stringContaining('onnx/model.onnx') })
    await expectNothingReachable()
    // The corrupted file's bytes are gone; other files' partials (stopped when the fetch failed) may stay for a resume.
    expect(await readdir(join(repoDir(), 'blobs'))).not.toContain(`${sha256(bytes(20_000, 'org/tiny:onnx'))}.incomplete`)
    const r = await fetchModel('org/tiny', opts())
    expect(r.files).toHaveLength(5)
  })

  it('the worker-thread hasher (used for large files) verifies, resumes and rejects the same way', async () => {
    hub.fault({ kind: 'truncate', path: 'model.safetensors', atByte: 30_000 })
    hub.fault({ kind: 'corrupt', path: 'onnx/model.onnx' })
    const workerOpts = opts({ hashWorkerMinBytes: 0, concurrency: 1 })
    await expect(fetchModel('org/tiny', workerOpts)).rejects.toMatchObject({ exitCode: 4, code: 'HASH_MISMATCH' })
    await expectNothingReachable()
    const r = await fetchModel('org/tiny', workerOpts)
    expect(r.files.find((f) => f.path === 'model.safetensors')!.sha256).toBe(sha256(bytes(60_000, 'org/tiny:w1')))
    expect(r.files.find((f) => f.path === 'config.json')!.sha256).toBe(sha256(JSON.stringify({ model_type: 'bert', hidden_size: 16 })))
    expect(hub.requests.filter((q) => q.path.endsWith('/model.safetensors')).map((q) => q.range)).toEqual([undefined, 'bytes=30000-'])
  })

  it('downloads in worker threads (used for large files) resume, verify, count requests and rebuild our errors', async () => {
    const threaded = opts({ threadMinBytes: 0 })
    hub.fault({ kind: 'truncate', path: 'model.safetensors', atByte: 30_000 })
    const r = await fetchModel('org/tiny', threaded)
    expect(r.requests).toBe(hub.count())
    expect(hub.requests.filter((q) => q.path.endsWith('/model.safetensors')).map((q) => q.range)).toEqual([undefined, 'bytes=30000-'])
    expect(r.files.map((f) => f.sha256)).toEqual((await fetchModel('org/tiny', opts({ offline: true }))).files.map((f) => f.sha256))

    await rm(cacheDir, { recursive: true, force: true })
    hub.fault({ kind: 'corrupt', path: 'onnx/model.onnx' })
    const corrupt = await fetchModel('org/tiny', threaded).catch((e: unknown) => e)
    expect(corrupt).toBeInstanceOf(IntegrityError)
    expect(corrupt).toMatchObject({ exitCode: 4, code: 'HASH_MISMATCH', details: { path: 'onnx/model.onnx' } })
    await expectNothingReachable()

    hub.fault({ kind: 'status', status: 404, errorCode: 'EntryNotFound', path: 'vocab.txt' })
    await expect(fetchModel('org/tiny', threaded)).rejects.toMatchObject({ exitCode: 6, code: 'ENTRY_NOT_FOUND' })
    await expect(fetchModel('org/tiny', threaded)).resolves.toMatchObject({ commit: repo.main })
  })

  it('a corrupted non-LFS file fails its git blob sha1', async () => {
    hub.fault({ kind: 'corrupt', path: 'vocab.txt', atByte: 3 })
    await expect(fetchModel('org/tiny', opts())).rejects.toMatchObject({ exitCode: 4, message: expect.stringContaining('git blob sha1') })
    await expectNothingReachable()
  })

  it('a listing whose sha256 disagrees with the content (wrong hash upstream) exits 4', async () => {
    const h = new MockHub()
    h.addRepo('org/bad', [[{ path: 'model.safetensors', content: bytes(1000, 'bad'), advertisedSha256: 'f'.repeat(64) }]])
    await h.start()
    try {
      const err = await fetchModel('org/bad', { ...opts(), endpoint: h.url }).catch((e: unknown) => e)
      expect(err).toMatchObject({ exitCode: 4, code: 'HASH_MISMATCH' })
      expect(await listTree(join(cacheDir, 'models--org--bad', 'snapshots'))).toEqual([])
      expect(await listTree(join(cacheDir, 'models--org--bad', 'refs'))).toEqual([])
    } finally {
      await h.stop()
    }
  })

  it('a listing with a path that would escape the cache exits 3 and writes nothing', async () => {
    const h = new MockHub()
    h.addRepo('org/evil', [[{ path: 'config.json', content: '{}' }, { path: 'a/../../../escape.txt', content: 'x' }]])
    await h.start()
    try {
      const err = await fetchModel('org/evil', { ...opts(), endpoint: h.url, include: ['*'] }).catch((e: unknown) => e)
      expect(err).toMatchObject({ exitCode: 3, code: 'HUB_UNSAFE_PATH' })
      expect(await listTree(join(cacheDir, 'models--org--evil'))).toEqual([])
      expect(h.requests.some((q) => q.path.includes('/resolve/'))).toBe(false)
    } finally {
      await h.stop()
    }
  })

  it('retries 500 and reset connections on API and file requests; gives up with exit 3 on a persistent 500', async () => {
    hub.fault({ kind: 'status500', match: /\/revision\// })
    hub.fault({ kind: 'reset', match: /\/tree\// })
    hub.fault({ kind: 'status500', path: 'config.json' })
    const r = await fetchModel('org/tiny', opts())
    expect(r.requests).toBe(hub.count())
    expect(hub.requests.filter((q) => q.path.includes('/revision/'))).toHaveLength(2)
    expect(hub.requests.filter((q) => q.path.endsWith('/config.json'))).toHaveLength(2)

    await rm(cacheDir, { recursive: true, force: true })
    hub.resetCounts()
    hub.fault({ kind: 'status500', match: /\/revision\//, times: Infinity })
    await expect(fetchModel('org/tiny', opts())).rejects.toMatchObject({ exitCode: 3, code: 'HUB_SERVER_ERROR' })
    expect(hub.count()).toBe(fast.attempts)
  })

  it('LFS files redirected to a CDN on another origin: no token sent there, resume through the redirect, durable mode', async () => {
    const h = new MockHub()
    addTinyRepo(h, 'org/private', { private: true })
    await h.start()
    const cdn = new URL(await h.startCdn()).host
    try {
      h.fault({ kind: 'truncate', path: 'model.safetensors', atByte: 25_000 })
      const r = await fetchModel('org/private', { ...opts(), endpoint: h.url, token: h.token, durable: true })
      expect(r.files.find((f) => f.path === 'model.safetensors')!.sha256).toBe(sha256(bytes(60_000, 'org/private:w1')))
      const toCdn = h.requests.filter((q) => q.host === cdn)
      expect(toCdn.map((q) => q.path.split('/').pop()).sort()).toEqual(['model.onnx', 'model.safetensors', 'model.safetensors'])
      expect(toCdn.every((q) => !q.authorized)).toBe(true)
      expect(h.requests.filter((q) => q.host !== cdn).every((q) => q.authorized)).toBe(true)
      expect(toCdn.filter((q) => q.path.endsWith('model.safetensors')).map((q) => q.range)).toEqual([undefined, 'bytes=25000-'])
    } finally {
      await h.stop()
    }
  })

  it('4xx answers are not retried: 403 GatedRepo exits 3, EntryNotFound exits 6, 429 exits 3', async () => {
    hub.fault({ kind: 'status', status: 403, errorCode: 'GatedRepo', path: 'config.json' })
    await expect(fetchModel('org/tiny', opts())).rejects.toMatchObject({ exitCode: 3, code: 'ACCESS_DENIED', hint: expect.stringContaining('gated') })
    expect(hub.requests.filter((q) => q.path.endsWith('/config.json'))).toHaveLength(1)
    hub.fault({ kind: 'status', status: 404, errorCode: 'EntryNotFound', path: 'vocab.txt' })
    await expect(fetchModel('org/tiny', opts())).rejects.toMatchObject({ exitCode: 6, code: 'ENTRY_NOT_FOUND' })
    hub.fault({ kind: 'status', status: 429, match: /\/tree\// })
    await rm(cacheDir, { recursive: true, force: true })
    await expect(fetchModel('org/tiny', opts())).rejects.toMatchObject({ exitCode: 3, code: 'HUB_HTTP_ERROR' })
    await expectNothingReachable()
  })

  it('a server that ignores Range sends the whole file again: the partial restarts from byte 0', async () => {
    hub.fault({ kind: 'truncate', path: 'model.safetensors', atByte: 20_000 })
    hub.fault({ kind: 'ignore-range', path: 'model.safetensors' })
    const r = await fetchModel('org/tiny', opts())
    expect(r.files.find((f) => f.path === 'model.safetensors')!.sha256).toBe(sha256(bytes(60_000, 'org/tiny:w1')))
    expect(r.bytesDownloaded).toBeGreaterThan(80_000)
  })

  it('a complete partial file left by a kill just before the rename is verified without a request; a wrong one is dropped', async () => {
    const weights = bytes(60_000, 'org/tiny:w1')
    const blobs = join(repoDir(), 'blobs')
    await mkdir(blobs, { recursive: true })
    await writeFile(join(blobs, `${sha256(weights)}.incomplete`), weights)
    await fetchModel('org/tiny', opts())
    expect(hub.requests.filter((q) => q.path.endsWith('/model.safetensors'))).toHaveLength(0)

    await rm(cacheDir, { recursive: true, force: true })
    await mkdir(blobs, { recursive: true })
    await writeFile(join(blobs, `${sha256(weights)}.incomplete`), Buffer.alloc(60_000))
    await expect(fetchModel('org/tiny', opts())).rejects.toMatchObject({ exitCode: 4, code: 'HASH_MISMATCH' })
    expect(await readdir(blobs)).not.toContain(`${sha256(weights)}.incomplete`)
    await fetchModel('org/tiny', opts())
  })

  it('a stalled body is aborted and resumed', async () => {
    hub.fault({ kind: 'slow', path: 'model.safetensors', delayMs: 1500 })
    const r = await fetchModel('org/tiny', opts({ stallTimeoutMs: 300 }))
    const ranges = hub.requests.filter((q) => q.path.endsWith('/model.safetensors')).map((q) => q.range)
    expect(ranges[0]).toBeUndefined()
    expect(ranges[1]).toMatch(/^bytes=\d+-$/)
    expect(r.files.find((f) => f.path === 'model.safetensors')!.sha256).toBe(sha256(bytes(60_000, 'org/tiny:w1')))
  })
})

describe('fetchModel: errors and policy', () => {
  it('policy: a source outside allowedSources is refused (exit 7) before any request, even when cached', async () => {
    await expect(fetchModel('org/tiny', opts({ config: { download: { allowedSources: ['sentence-transformers/*'] } } }))).rejects.toMatchObject({
      exitCode: 7,
      code: 'SOURCE_NOT_ALLOWED',
    })
    expect(hub.count()).toBe(0)
    expect((await fetchModel('org/tiny', opts({ include: ['config.json'], config: { download: { allowedSources: ['org/*'] } } }))).commit).toBe(repo.main)
  })

  it('policy: requireApproval needs approved (--yes) for a download, not for a cache hit', async () => {
    const config = { download: { requireApproval: true } }
    const err = await fetchModel('org/tiny', opts({ config })).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(PolicyError)
    expect(err).toMatchObject({ exitCode: 7, code: 'APPROVAL_REQUIRED', hint: expect.stringContaining('--yes') })
    expect(hub.count()).toBe(0)
    await fetchModel('org/tiny', opts({ config, approved: true }))
    hub.resetCounts()
    expect((await fetchModel('org/tiny', opts({ config }))).fromCache).toBe(true)
  })

  it('policy: a config given by a library caller is checked by its keys like MODELFORGE_CONFIG, before the policy reads it', async () => {
    // "no" is truthy: read unchecked, it demanded approval (exit 7) where the key itself is wrong.
    const err = await fetchModel('org/tiny', opts({ config: { download: { requireApproval: 'no' } } as never })).catch((e: unknown) => e)
    expect(err).toMatchObject({ exitCode: 4, code: 'CONFIG_INVALID', message: 'download.requireApproval in the config option of fetchModel must be true or false, got "no"' })
    const sources = await fetchModel('org/tiny', opts({ config: { download: { allowedSources: 'org/*' } } as never })).catch((e: unknown) => e)
    expect(sources).toMatchObject({ exitCode: 4, code: 'CONFIG_INVALID', message: expect.stringMatching(/^download\.allowedSources in the config option of fetchModel must be a list/) })
    expect(hub.count()).toBe(0)
  })

  it('401 RepoNotFound and an unknown revision give clear errors (exit 6) and are not retried', async () => {
    const e1 = await fetchModel('org/nope', opts()).catch((e: unknown) => e)
    expect(e1).toMatchObject({ exitCode: 6, code: 'REPO_NOT_FOUND', message: expect.stringContaining('org/nope'), hint: expect.stringContaining('HF_TOKEN') })
    expect(hub.count()).toBe(1)
    const e2 = await fetchModel('org/tiny', opts({ revision: 'v9' })).catch((e: unknown) => e)
    expect(e2).toMatchObject({ exitCode: 6, code: 'REVISION_NOT_FOUND', message: 'Revision "v9" does not exist in org/tiny' })
    expect(hub.count()).toBe(2)
    await expect(fetchModel('org/tiny', opts({ include: ['nothing-*'] }))).rejects.toMatchObject({ exitCode: 6, code: 'NO_MATCHING_FILES' })
    // An abbreviated commit that is not cached goes to the Hub; if the Hub does not know it, say what to pass.
    await expect(fetchModel('org/tiny', opts({ revision: 'abcdef1' }))).rejects.toMatchObject({ exitCode: 6, code: 'REVISION_NOT_FOUND', hint: expect.stringContaining('full 40-hex') })
    expect(await listTree(repoCache(cacheDir, 'org/tiny').refsDir)).toEqual([])
  })

  it('private repos: the token is sent to the Hub and never appears in errors', async () => {
    const h = new MockHub()
    addTinyRepo(h, 'org/private', { private: true })
    await h.start()
    try {
      const wrong = 'hf_wrong_secret_token_value'
      const err = (await fetchModel('org/private', { ...opts(), endpoint: h.url, token: wrong }).catch((e: unknown) => e)) as NotFoundError
      expect(err).toMatchObject({ exitCode: 6, code: 'REPO_NOT_FOUND', hint: expect.stringContaining('token') })
      expect(JSON.stringify({ m: err.message, h: err.hint, d: err.details })).not.toContain(wrong)
      const r = await fetchModel('org/private', { ...opts(), endpoint: h.url, token: h.token, include: ['config.json'] })
      expect(r.files).toHaveLength(1)
      expect(h.requests.every((q) => q.authorized)).toBe(true)
    } finally {
      await h.stop()
    }
  })

  it('cleans the token as huggingface_hub does (CRLF, spaces) and refuses one that cannot be sent, without echoing it', async () => {
    const h = new MockHub()
    addTinyRepo(h, 'org/private', { private: true })
    await h.start()
    try {
      const r = await fetchModel('org/private', { ...opts(), endpoint: h.url, token: ` ${h.token}\r\n`, include: ['config.json'] })
      expect(r.files).toHaveLength(1)
      const secret = 'hf_secret_with_a_tab'
      const err = await fetchModel('org/private', { ...opts(), endpoint: h.url, token: `${secret}\tx`, include: ['vocab.txt'] }).catch((e: unknown) => e)
      expect(err).toMatchObject({ exitCode: 2, code: 'INVALID_TOKEN' })
      expect(JSON.stringify(err) + String(err)).not.toContain(secret)
    } finally {
      await h.stop()
    }
  })

  it('refuses an endpoint that is no http(s) URL or holds credentials, without echoing them (exit 2)', async () => {
    const withCreds = hub.url.replace('http://', 'http://user:hf_secret_in_url@')
    const err = await fetchModel('org/tiny', opts({ endpoint: withCreds })).catch((e: unknown) => e)
    expect(err).toMatchObject({ exitCode: 2, code: 'INVALID_ENDPOINT' })
    expect(JSON.stringify(err) + String(err)).not.toContain('hf_secret_in_url')
    await expect(fetchModel('org/tiny', opts({ endpoint: 'huggingface.co' }))).rejects.toMatchObject({ exitCode: 2 })
    expect(hub.count()).toBe(0)
  })

  it('refuses invalid repo ids and revisions before any request (exit 2)', async () => {
    await expect(fetchModel('../etc', opts())).rejects.toMatchObject({ exitCode: 2 })
    await expect(fetchModel('org/tiny', opts({ revision: '../x' }))).rejects.toMatchObject({ exitCode: 2 })
    expect(hub.count()).toBe(0)
  })
})
