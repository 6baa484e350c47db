/**
 * Crash safety and concurrency of `modelforge fetch` with real processes: SIGKILL in the middle of a
 * download, then a rerun that resumes with Range and reuses verified blobs; and two processes fetching the
 * same repo at once.
 */
import { readFile, readdir, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { bytes, listTree, sha256, tempDir } from '../helpers/hub-fixtures.js'
import { assertBuilt, cliEnv, runCli, startCli } from '../helpers/hub-cli.js'
import { MockHub, streamedContent } from '../helpers/mock-hub.js'

// Over the 32 MiB from which downloads run in a worker thread, so the kill hits that path.
const BIG = 40 * 1024 * 1024
let hub: MockHub
let dir: string
let cacheDir: string
let commit: string
let midCommit: string
const weights = streamedContent(BIG, 'org/big:weights')
const mid = bytes(4 * 1024 * 1024, 'org/mid:weights')

beforeAll(async () => {
  assertBuilt()
  hub = new MockHub()
  commit = hub.addRepo('org/big', [
    [
      { path: 'config.json', content: '{"model_type":"bert"}' },
      { path: 'tokenizer.json', content: '{"version":"1.0"}' },
      { path: 'model.safetensors', content: weights },
    ],
  ]).commits[0]!
  midCommit = hub.addRepo('org/mid', [
    [
      { path: 'config.json', content: '{"model_type":"bert"}' },
      { path: 'tokenizer.json', content: '{"version":"1.0"}' },
      { path: 'model.safetensors', content: mid },
    ],
  ]).commits[0]!
  await hub.start()
  dir = await tempDir('mf-e2e-crash-')
})
afterAll(async () => {
  await hub.stop()
  await rm(dir, { recursive: true, force: true })
})
beforeEach(() => {
  cacheDir = join(dir, `cache-${Math.random().toString(36).slice(2)}`)
  hub.resetCounts()
  hub.clearFaults()
})

const env = (): NodeJS.ProcessEnv => cliEnv({ HF_ENDPOINT: hub.url, HF_HUB_CACHE: cacheDir })
const repoDir = (): string => join(cacheDir, 'models--org--big')
const partialPath = (): string => join(repoDir(), 'blobs', `${weights.sha256}.incomplete`)

async function size(path: string): Promise<number> {
  return stat(path).then((s) => s.size, () => -1)
}

describe('fetch: crash and concurrency', () => {
  it('SIGKILL midway, then a rerun resumes the partial blob with Range and reuses the verified ones', async () => {
    hub.fault({ kind: 'slow', path: 'model.safetensors', delayMs: 4, times: Infinity })
    const { child, done } = startCli(['fetch', 'org/big', '--json'], env())
    const deadline = Date.now() + 30_000
    while ((await size(partialPath())) < 2 * 1024 * 1024) {
      if (Date.now() > deadline) throw new Error('the download never got going')
      await new Promise((r) => setTimeout(r, 25))
    }
    child.kill('SIGKILL')
    const killed = await done
    expect(killed.signal).toBe('SIGKILL')

    // Nothing of the interrupted fetch is reachable; the small files' blobs are verified and kept.
    expect(await listTree(join(repoDir(), 'snapshots'))).toEqual([])
    expect(await listTree(join(repoDir(), 'refs'))).toEqual([])
    const blobsBefore = await readdir(join(repoDir(), 'blobs'))
    expect(blobsBefore).toHaveLength(3)
    const resumeFrom = await size(partialPath())
    expect(resumeFrom).toBeGreaterThan(0)
    expect(resumeFrom).toBeLessThan(BIG)
    // The dead process's lock is still there; the rerun must break it.
    expect((await readdir(join(cacheDir, '.locks', 'models--org--big'))).length).toBeGreaterThan(0)

    hub.clearFaults()
    hub.resetCounts()
    const rerun = await runCli(['fetch', 'org/big', '--json'], env())
    expect(rerun.code, rerun.stderr).toBe(0)
    const resolves = hub.requests.filter((r) => r.path.includes('/resolve/'))
    expect(resolves.map((r) => [r.path.split('/').pop(), r.range])).toEqual([['model.safetensors', `bytes=${resumeFrom}-`]])
    const result = rerun.json!.result as { bytesResumed: number; bytesDownloaded: number; files: { path: string; fromCache: boolean; sha256: string }[] }
    expect(result.bytesResumed).toBe(resumeFrom)
    expect(result.bytesDownloaded).toBe(BIG - resumeFrom)
    expect(result.files.find((f) => f.path === 'model.safetensors')!.sha256).toBe(weights.sha256)
    expect(sha256(await readFile(join(repoDir(), 'snapshots', commit, 'model.safetensors')))).toBe(weights.sha256)
    expect(await readFile(join(repoDir(), 'refs', 'main'), 'utf8')).toBe(commit)
    expect(await readdir(join(cacheDir, '.locks', 'models--org--big'))).toEqual([])
  })

  it('two processes fetching the same repo at once both succeed and download each blob once', async () => {
    hub.fault({ kind: 'slow', path: 'model.safetensors', delayMs: 6, times: Infinity })
    const a = startCli(['fetch', 'org/mid', '--json'], env())
    const b = startCli(['fetch', 'org/mid', '--json'], env())
    const [ra, rb] = await Promise.all([a.done, b.done])
    expect(ra.code, ra.stderr).toBe(0)
    expect(rb.code, rb.stderr).toBe(0)
    expect(ra.json!.result!.snapshot).toBe(rb.json!.result!.snapshot)
    for (const name of ['config.json', 'tokenizer.json', 'model.safetensors']) {
      expect(hub.requests.filter((r) => r.path.endsWith(`/resolve/${midCommit}/${name}`)), name).toHaveLength(1)
    }
    const midDir = join(cacheDir, 'models--org--mid')
    expect(sha256(await readFile(join(midDir, 'snapshots', midCommit, 'model.safetensors')))).toBe(sha256(mid))
    expect((await readdir(join(midDir, 'blobs'))).sort()).toHaveLength(3)
    const audit = (await readFile(join(cacheDir, '.modelforge', 'audit.jsonl'), 'utf8')).trim().split('\n')
    for (const line of audit) expect(() => JSON.parse(line)).not.toThrow()
  })
})
