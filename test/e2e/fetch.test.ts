/** `modelforge fetch` end to end: the built CLI against the loopback mock Hub. */
import { readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { addTinyRepo, listTree, tempDir } from '../helpers/hub-fixtures.js'
import { assertBuilt, cliEnv, runCli } from '../helpers/hub-cli.js'
import { MockHub } from '../helpers/mock-hub.js'

let hub: MockHub
let dir: string
let cacheDir: string
let repo: { v1: string; main: string }

beforeAll(async () => {
  assertBuilt()
  hub = new MockHub()
  repo = addTinyRepo(hub)
  addTinyRepo(hub, 'org/private', { private: true })
  await hub.start()
  dir = await tempDir('mf-e2e-fetch-')
})
afterAll(async () => {
  await hub.stop()
  await rm(dir, { recursive: true, force: true })
})
beforeEach(async () => {
  cacheDir = join(dir, `cache-${Math.random().toString(36).slice(2)}`)
  hub.resetCounts()
  hub.clearFaults()
})

const env = (extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv => cliEnv({ HF_ENDPOINT: hub.url, HF_HUB_CACHE: cacheDir, ...extra })

describe('modelforge fetch (CLI)', () => {
  it('fetches with --json, then answers from the cache with zero requests, and offline with the Hub down', async () => {
    const first = await runCli(['fetch', 'org/tiny', '--json'], env())
    expect(first.code, first.stderr).toBe(0)
    expect(first.json!.status).toBe(0)
    const r = first.json!.result!
    expect(r).toMatchObject({ repo: 'org/tiny', revision: 'main', commit: repo.main, fromCache: false, snapshot: join(cacheDir, 'models--org--tiny', 'snapshots', repo.main) })
    expect(r.requests).toBe(hub.count())
    expect(r.bytesDownloaded).toBe(80_120)
    expect((r.files as { path: string; size: number; sha256: string }[]).map((f) => f.path)).toEqual(['config.json', 'model.safetensors', 'onnx/model.onnx', 'tokenizer.json', 'vocab.txt'])
    expect(first.stderr).toBe('')

    hub.resetCounts()
    const second = await runCli(['fetch', 'org/tiny', '--json'], env())
    expect(second.json!.result).toMatchObject({ requests: 0, fromCache: true, commit: repo.main })
    expect(hub.count()).toBe(0)

    const offline = await runCli(['fetch', 'org/tiny', '--offline', '--json'], env({ HF_ENDPOINT: 'http://127.0.0.1:9' }))
    expect(offline.code).toBe(0)
    const missing = await runCli(['fetch', 'org/tiny', '--revision', 'v1.0', '--json'], env({ HF_HUB_OFFLINE: '1', HF_ENDPOINT: 'http://127.0.0.1:9' }))
    expect(missing.code).toBe(6)
    expect(missing.json!.error).toMatchObject({ code: 'NOT_CACHED', message: expect.stringContaining('refs/v1.0') })
  })

  it('prints human output with plain progress lines on stderr when not a TTY', async () => {
    const r = await runCli(['fetch', 'org/tiny', '--include', '*.json', '--include', 'onnx/*'], env())
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toContain(`org/tiny@main -> ${repo.main}`)
    expect(r.stdout).toMatch(/onnx\/model\.onnx {2}19\.5 KiB {2}sha256:[0-9a-f]{64} {2}\(new\)/)
    expect(r.stderr).toMatch(/\[COMPLETED\] onnx\/model\.onnx 19\.5 KiB verified/)
    expect(r.stderr).toMatch(/\[COMPLETED\] Fetch org\/tiny@\w+: 3 files/)
  })

  it('exit 7 on policy refusals without a request; --yes approves', async () => {
    const config = join(dir, 'policy.json')
    await writeFile(config, JSON.stringify({ download: { allowedSources: ['sentence-transformers/*'] } }))
    const refused = await runCli(['fetch', 'org/tiny', '--json'], env({ MODELFORGE_CONFIG: config }))
    expect(refused.code).toBe(7)
    expect(refused.json!.error).toMatchObject({ code: 'SOURCE_NOT_ALLOWED', hint: expect.stringContaining(config) })

    await writeFile(config, JSON.stringify({ download: { requireApproval: true } }))
    const unapproved = await runCli(['fetch', 'org/tiny', '--json'], env({ MODELFORGE_CONFIG: config }))
    expect(unapproved.code).toBe(7)
    expect(unapproved.json!.error!.code).toBe('APPROVAL_REQUIRED')
    expect(hub.count()).toBe(0)
    const approved = await runCli(['fetch', 'org/tiny', '--yes', '--include', 'config.json', '--json'], env({ MODELFORGE_CONFIG: config }))
    expect(approved.code).toBe(0)
  })

  it('exit 6 with clear messages for an unknown repo (401) and an unknown revision; exit 3 when access is refused; exit 4 for corrupt bytes', async () => {
    const unknown = await runCli(['fetch', 'org/unknown', '--json'], env())
    expect(unknown.code).toBe(6)
    expect(unknown.json!.error).toMatchObject({ code: 'REPO_NOT_FOUND', message: expect.stringContaining('org/unknown') })
    const rev = await runCli(['fetch', 'org/tiny', '--revision', 'nope', '--json'], env())
    expect(rev.code).toBe(6)
    expect(rev.json!.error).toMatchObject({ code: 'REVISION_NOT_FOUND', message: 'Revision "nope" does not exist in org/tiny' })

    hub.fault({ kind: 'status', status: 403, errorCode: 'GatedRepo', match: /\/revision\// })
    const gated = await runCli(['fetch', 'org/tiny', '--json'], env())
    expect(gated.code).toBe(3)
    expect(gated.json!.error).toMatchObject({ code: 'ACCESS_DENIED', hint: expect.stringContaining('gated') })

    hub.fault({ kind: 'corrupt', path: 'model.safetensors' })
    const corrupt = await runCli(['fetch', 'org/tiny'], env())
    expect(corrupt.code).toBe(4)
    expect(corrupt.stderr).toMatch(/Error: model\.safetensors: downloaded content does not match its sha256/)
    expect(corrupt.stderr).toMatch(/Hint: /)
    expect(await listTree(join(cacheDir, 'models--org--tiny', 'snapshots'))).toEqual([])
    expect(await listTree(join(cacheDir, 'models--org--tiny', 'refs'))).toEqual([])
    const retry = await runCli(['fetch', 'org/tiny', '--json'], env())
    expect(retry.code).toBe(0)
  })

  it('a private repo needs the token (HF_TOKEN or --token), which is never printed', async () => {
    const secret = 'hf_not_the_right_one_123456'
    const denied = await runCli(['fetch', 'org/private', '--json'], env({ HF_TOKEN: secret }))
    expect(denied.code).toBe(6)
    expect(denied.stdout + denied.stderr).not.toContain(secret)
    const ok = await runCli(['fetch', 'org/private', '--token', hub.token, '--include', 'config.json', '--json'], env())
    expect(ok.code).toBe(0)
    expect(ok.stdout + ok.stderr).not.toContain(hub.token)
    const audit = await readFile(join(cacheDir, '.modelforge', 'audit.jsonl'), 'utf8')
    expect(audit).toContain('"repo":"org/private"')
    expect(audit).not.toContain(hub.token)
  })

  it('--verify re-hashes the cache and exits 4 naming a damaged blob; a short blob offline is exit 4, not 6', async () => {
    const first = await runCli(['fetch', 'org/tiny', '--json'], env())
    expect(first.code).toBe(0)
    const files = first.json!.result!.files as { path: string; blob: string }[]
    const blob = (p: string): string => join(cacheDir, 'models--org--tiny', 'blobs', files.find((f) => f.path === p)!.blob)
    const verified = await runCli(['fetch', 'org/tiny', '--verify'], env({ HF_HUB_OFFLINE: '1' }))
    expect(verified.code, verified.stderr).toBe(0)
    expect(verified.stdout).toMatch(/5 files re-hashed from the cache: every one matches/)

    const weights = await readFile(blob('model.safetensors'))
    weights[0] = weights[0]! ^ 1
    await writeFile(blob('model.safetensors'), weights)
    hub.resetCounts()
    const damaged = await runCli(['fetch', 'org/tiny', '--verify'], env())
    expect(damaged.code).toBe(4)
    expect(damaged.stderr).toMatch(/Error: 1 cached file of org\/tiny@main no longer match: model\.safetensors \(its sha256 is [0-9a-f]+, not [0-9a-f]+\)/)
    expect(damaged.stderr).toContain(`Hint: Remove ${blob('model.safetensors')} and run`)
    expect(hub.count()).toBe(0)

    await writeFile(blob('model.safetensors'), weights.subarray(0, 10))
    const short = await runCli(['fetch', 'org/tiny', '--json'], env({ HF_HUB_OFFLINE: '1' }))
    expect(short.code).toBe(4)
    expect(short.json!.error).toMatchObject({ code: 'CACHE_CORRUPT', message: expect.stringContaining('model.safetensors (holds 10 bytes, the listing says 60000)') })
    // Online, the short blob is downloaded again and the run says so.
    const healed = await runCli(['fetch', 'org/tiny'], env())
    expect(healed.code).toBe(0)
    expect(healed.stderr).toMatch(/^Warning: model\.safetensors: the cached blob held 10 bytes, the listing says 60000; it was downloaded again$/m)
  })

  it('a ref that holds no commit is exit 4 naming it (with --refresh in the hint); a cache that is a file is exit 2 before any request', async () => {
    expect((await runCli(['fetch', 'org/tiny', '--include', 'config.json'], env())).code).toBe(0)
    const ref = join(cacheDir, 'models--org--tiny', 'refs', 'main')
    await writeFile(ref, 'garbage\n')
    hub.resetCounts()
    const bad = await runCli(['fetch', 'org/tiny', '--include', 'config.json', '--json'], env())
    expect(bad.code).toBe(4)
    expect(bad.json!.error).toMatchObject({ code: 'REF_INVALID', message: `${ref} holds "garbage", not a 40-hex commit`, hint: expect.stringContaining('--refresh') })
    expect(hub.count()).toBe(0)
    expect((await runCli(['fetch', 'org/tiny', '--include', 'config.json', '--refresh'], env())).code).toBe(0)

    const file = join(dir, 'cache-is-a-file')
    await writeFile(file, 'x')
    hub.resetCounts()
    const viaEnv = await runCli(['fetch', 'org/tiny', '--json'], env({ HF_HUB_CACHE: file }))
    expect(viaEnv.code).toBe(2)
    expect(viaEnv.json!.error).toMatchObject({ code: 'CACHE_NOT_DIRECTORY', message: `The Hugging Face cache ${file} (from HF_HUB_CACHE) is not a directory: it is a file` })
    const viaFlag = await runCli(['fetch', 'org/tiny', '--cache-dir', join(file, 'hub'), '--json'], env())
    expect(viaFlag.code).toBe(2)
    expect(viaFlag.json!.error).toMatchObject({ code: 'CACHE_NOT_DIRECTORY', message: expect.stringContaining('(from --cache-dir) is not a directory: a part of the path is a file') })
    expect(hub.count()).toBe(0)
  })

  it('--cache-dir overrides HF_HUB_CACHE; a local directory is used without fetching', async () => {
    const other = join(dir, 'other-cache')
    const r = await runCli(['fetch', 'org/tiny', '--cache-dir', other, '--include', 'config.json', '--json'], env())
    expect(r.json!.result!.snapshot).toBe(join(other, 'models--org--tiny', 'snapshots', repo.main))
    hub.resetCounts()
    const local = await runCli(['fetch', r.json!.result!.snapshot as string, '--json'], env())
    expect(local.json!.result).toMatchObject({ source: 'local', requests: 0, files: [{ path: 'config.json' }] })
    expect(hub.count()).toBe(0)
  })
})
