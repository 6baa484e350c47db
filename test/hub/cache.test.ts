import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  blobLinkTarget,
  readRef,
  readTree,
  repoCache,
  repoFolderName,
  resolveCachedSnapshot,
  safeRepoPath,
  validateRepoId,
  validateRevision,
  writeRef,
  writeTree,
} from '../../src/hub/cache.js'
import { NotFoundError, UsageError } from '../../src/lib/errors.js'

const commit = 'a'.repeat(40)
let cacheDir: string

beforeEach(async () => {
  cacheDir = await mkdtemp(join(tmpdir(), 'mf-cache-'))
})
afterEach(async () => {
  await rm(cacheDir, { recursive: true, force: true })
})

describe('cache layout', () => {
  it('names repo folders like huggingface_hub', () => {
    expect(repoFolderName('google-bert/bert-base-uncased')).toBe('models--google-bert--bert-base-uncased')
    expect(repoFolderName('gpt2')).toBe('models--gpt2')
  })

  it('refuses repo ids, revisions and paths that could escape the cache', () => {
    for (const bad of ['../x', 'a/b/c', 'a--b/c', '', 'org/name.git', '/abs']) expect(() => validateRepoId(bad)).toThrow(UsageError)
    for (const bad of ['..', 'a/../b', '', 'a//b']) expect(() => validateRevision(bad)).toThrow(UsageError)
    for (const bad of ['../etc/passwd', '/abs', 'a/./b', 'a\\b']) expect(() => safeRepoPath(bad)).toThrow(UsageError)
    expect(() => validateRevision('refs/pr/1')).not.toThrow()
  })

  it('links snapshots to blobs with relative targets, one ../ per folder level', () => {
    expect(blobLinkTarget('config.json', 'b1')).toBe('../../blobs/b1')
    expect(blobLinkTarget('onnx/model.onnx', 'b2')).toBe('../../../blobs/b2')
  })

  it('writes refs without a newline, atomically, including nested refs/pr/N', async () => {
    const repo = repoCache(cacheDir, 'org/name')
    await writeRef(repo, 'refs/pr/1', commit)
    expect(await readFile(join(repo.refsDir, 'refs', 'pr', '1'), 'utf8')).toBe(commit)
    expect(await readRef(repo, 'refs/pr/1')).toBe(commit)
    expect(await readRef(repo, 'main')).toBeUndefined()
  })
})

describe('trees/<commit>.json', () => {
  it('is read back as written, and ignored when an entry could escape blobs/ or the snapshot', async () => {
    const repo = repoCache(cacheDir, 'org/name')
    const good = { format_version: 1 as const, files: { 'onnx/model.onnx': { size: 3, blob_id: 'b'.repeat(40), lfs_sha256: 'c'.repeat(64), lfs_size: 3 } } }
    await writeTree(repo, commit, good)
    expect(await readTree(repo, commit)).toEqual(good)
    for (const files of [
      { 'config.json': { size: 3, blob_id: '../../../../etc/passwd' } },
      { 'config.json': { size: 3, blob_id: 'b'.repeat(40), lfs_sha256: '../x' } },
      { '../config.json': { size: 3, blob_id: 'b'.repeat(40) } },
      { 'config.json': { size: -1, blob_id: 'b'.repeat(40) } },
    ]) {
      await writeFile(join(repo.treesDir, `${commit}.json`), JSON.stringify({ format_version: 1, files }))
      expect(await readTree(repo, commit)).toBeUndefined()
    }
  })
})

describe('resolveCachedSnapshot', () => {
  it('resolves a branch through refs/ and a commit as is, offline', async () => {
    const repo = repoCache(cacheDir, 'org/name')
    await mkdir(join(repo.snapshotsDir, commit), { recursive: true })
    await mkdir(repo.blobsDir, { recursive: true })
    await writeFile(join(repo.blobsDir, 'b1'), '{}')
    await symlink(blobLinkTarget('config.json', 'b1'), join(repo.snapshotsDir, commit, 'config.json'))
    await writeRef(repo, 'main', commit)
    const dir = await resolveCachedSnapshot('org/name', { cacheDir })
    expect(dir).toBe(join(repo.snapshotsDir, commit))
    expect(await readFile(join(dir, 'config.json'), 'utf8')).toBe('{}')
    expect(await resolveCachedSnapshot('org/name', { cacheDir, revision: commit })).toBe(dir)
  })

  it('throws NotFoundError (exit 6) for an unknown repo, revision or a commit without snapshot', async () => {
    await expect(resolveCachedSnapshot('org/none', { cacheDir })).rejects.toBeInstanceOf(NotFoundError)
    await expect(resolveCachedSnapshot('org/none', { cacheDir, revision: 'v1' })).rejects.toMatchObject({ exitCode: 6, code: 'NOT_CACHED' })
    await expect(resolveCachedSnapshot('org/none', { cacheDir, revision: commit })).rejects.toMatchObject({ exitCode: 6 })
  })
})
