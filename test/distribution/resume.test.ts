/**
 * Interrupted transfers (issue 15, acceptance 3): a pull whose blob connection is cut half-way continues
 * from the byte it reached; a pull SIGKILLed mid-blob continues on the next run without downloading again
 * what it has; a chunked push whose PATCH is cut lands all the same (Distribution drops such an upload).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readdirSync, statSync, watch, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { pullVersion, pushVersion } from '../../src/distribution/index.js'
import { ModelStore } from '../../src/publish/store.js'
import { cli, makeTemp, publish, removeTemps, runJs } from '../helpers/store-helpers.js'
import { ociRegistryAvailable, startOciRegistry, type OciRegistry } from '../helpers/oci-registry.js'
import { startOciProxy } from '../helpers/oci-proxy.js'

const skip = !ociRegistryAvailable()
const MiB = 1024 * 1024
let reg: OciRegistry
let source: ModelStore
const big = randomBytes(12 * MiB)
const env = { HOME: '/nonexistent' }

/** `store pull <ref> --store <target> --json` as a child process: its exit code and stdout, when it ends. */
function spawnPull(ref: string, target: string): { child: ChildProcess; exited: Promise<number | null>; stdout: () => string } {
  const child = spawn(process.execPath, [runJs, 'store', 'pull', ref, '--store', target, '--json'], { env: { ...process.env, ...env, CI: '1' }, stdio: ['ignore', 'pipe', 'ignore'] })
  let out = ''
  child.stdout!.on('data', (c: Buffer) => (out += c))
  return { child, exited: new Promise((r) => child.once('exit', r)), stdout: () => out }
}

/** Polls until `ready` holds (at most 30 s; the caller's assertion says what did not happen). */
async function waitFor(ready: () => unknown): Promise<void> {
  for (let i = 0; i < 1500 && !ready(); i++) await new Promise((r) => setTimeout(r, 20))
}

/** The names in the store's pulls directory: work directories (`locks: false`) or locks (not the temporary files a lock is written as). */
function pullEntries(target: string, locks: boolean): string[] {
  const pulls = join(target, '.modelforge', 'pulls')
  return existsSync(pulls) ? readdirSync(pulls).filter((n) => (locks ? /^[0-9a-f]{64}\.lock$/ : /^[0-9a-f]{64}$/).test(n)) : []
}

beforeAll(async () => {
  if (skip) return
  reg = await startOciRegistry()
  source = new ModelStore(join(makeTemp('mf-resume-'), 'store'))
  await publish(source, 'big', 'v1', { 'model.onnx': big as unknown as string, 'config.json': '{"model_type": "bert"}' })
  await pushVersion(source, 'big', 'v1', `${reg.host}/models/big`, { env })
}, 120_000)

afterAll(async () => {
  await reg?.stop()
  removeTemps()
})

describe.skipIf(skip)('interrupted transfers', () => {
  it('a blob cut half-way is continued from where it broke, not downloaded again', async () => {
    const proxy = await startOciProxy(reg.host, { cutAfter: 5 * MiB, cuts: 1 })
    try {
      const target = new ModelStore(join(makeTemp('mf-node-'), 'store'))
      const r = await pullVersion(target, `${proxy.host}/models/big:v1`, { env })
      expect(proxy.cut).toBe(1)
      const ranged = proxy.blobGets.filter((g) => g.range)
      expect(ranged).toHaveLength(1)
      expect(Number(/bytes=(\d+)-/.exec(ranged[0]!.range!)![1])).toBeGreaterThan(4 * MiB)
      // Every byte arrived once: the cut part was not fetched again.
      expect(r.bytesDownloaded).toBe(r.bytes)
      expect((await target.verify('big', 'v1'))[0]!.ok).toBe(true)
    } finally {
      await proxy.close()
    }
  }, 60_000)

  it('a pull SIGKILLed mid-blob continues on the next run from the bytes it kept', async () => {
    const slow = await startOciProxy(reg.host, { slowBlobsMs: 20 })
    const target = join(makeTemp('mf-node-'), 'store')
    const { child, exited } = spawnPull(`${slow.host}/models/big:v1`, target)
    const pulls = join(target, '.modelforge', 'pulls')
    const partial = (): { path: string; size: number } | undefined => {
      for (const d of pullEntries(target, false)) {
        for (const f of readdirSync(join(pulls, d))) {
          const size = statSync(join(pulls, d, f)).size
          if (size > 2 * MiB) return { path: join(pulls, d, f), size }
        }
      }
      return undefined
    }
    try {
      await waitFor(partial)
      expect(partial(), 'the pull wrote part of the big blob').toBeDefined()
      child.kill('SIGKILL')
      await exited
    } finally {
      await slow.close()
    }
    const kept = partial()!
    expect(kept.size).toBeLessThan(big.length)
    expect(existsSync(join(target, 'big', 'versions', 'v1'))).toBe(false)

    const watch = await startOciProxy(reg.host)
    try {
      const r = await pullVersion(new ModelStore(target), `${watch.host}/models/big:v1`, { env })
      expect(r.blobsResumed).toBe(1)
      const ranged = watch.blobGets.filter((g) => g.range)
      expect(ranged).toHaveLength(1)
      expect(Number(/bytes=(\d+)-/.exec(ranged[0]!.range!)![1])).toBe(kept.size)
      expect(r.bytesDownloaded).toBeLessThanOrEqual(r.bytes - kept.size + 1024)
      expect((await new ModelStore(target).verify('big', 'v1'))[0]!.ok).toBe(true)
    } finally {
      await watch.close()
    }
  }, 90_000)

  it.each([
    ['the staging directory appears', ['big', 'versions'], 'v1.tmp'],
    ['finalize takes the agent lock (the blobs are in staging)', ['.modelforge', 'locks'], 'big.lock'],
  ])('a pull SIGKILLed when %s continues on the next run from its blobs: nothing downloaded again', async (_when, watched, name) => {
    // The kill lands when that name appears (inotify), before finalize renames the staging directory: in
    // the rare run where finalize wins the race, the store is fresh and the kill is tried again.
    let target = ''
    for (let attempt = 0; attempt < 5; attempt++) {
      target = join(makeTemp('mf-node-'), 'store')
      const versions = join(target, 'big', 'versions')
      const dir = join(target, ...watched)
      mkdirSync(dir, { recursive: true })
      const { child, exited } = spawnPull(`${reg.host}/models/big:v1`, target)
      const watcher = watch(dir, (_event, file) => {
        if (file === name) child.kill('SIGKILL')
      })
      await exited
      watcher.close()
      if (existsSync(join(versions, 'v1.tmp')) && !existsSync(join(versions, 'v1'))) break
    }
    const versions = join(target, 'big', 'versions')
    expect(existsSync(join(versions, 'v1.tmp')), 'the kill left the staging directory').toBe(true)
    expect(readdirSync(join(target, '.modelforge', 'pulls')).some((f) => f.endsWith('.lock')), 'and the dead pull\'s lock').toBe(true)

    const again = cli(['store', 'pull', `${reg.host}/models/big:v1`, '--store', target, '--json'], { env })
    expect(again.code, again.stdout + again.stderr).toBe(0)
    expect(JSON.parse(again.stdout).result).toMatchObject({ agent: 'big', version: 'v1', unchanged: false, blobsDownloaded: 0, bytesDownloaded: 0 })
    expect(existsSync(join(versions, 'v1.tmp'))).toBe(false)
    expect((await new ModelStore(target).verify('big', 'v1'))[0]!.ok).toBe(true)
    expect(readdirSync(join(target, '.modelforge', 'pulls'))).toEqual([])
  }, 120_000)

  it('a second pull of the same artifact into the store while one runs is refused (LOCKED, exit 5) and changes nothing', async () => {
    const slow = await startOciProxy(reg.host, { slowBlobsMs: 20 })
    const target = join(makeTemp('mf-node-'), 'store')
    try {
      const { child: first, exited, stdout } = spawnPull(`${slow.host}/models/big:v1`, target)
      await waitFor(() => pullEntries(target, true).length > 0)
      // Straight to the registry: the proxy lives in this process, which cli() blocks.
      const second = cli(['store', 'pull', `${reg.host}/models/big:v1`, '--store', target, '--json'], { env })
      expect(second.code, second.stdout + second.stderr).toBe(5)
      const error = JSON.parse(second.stdout).error
      expect(error).toMatchObject({ code: 'LOCKED' })
      expect(error.message).toContain(`process ${first.pid}`)
      expect(await exited, stdout()).toBe(0)
      expect(JSON.parse(stdout()).result).toMatchObject({ agent: 'big', version: 'v1', unchanged: false })
      expect((await new ModelStore(target).verify('big', 'v1'))[0]!.ok).toBe(true)
    } finally {
      await slow.close()
    }
  }, 120_000)

  it('store gc keeps a running pull\'s work directory and removes an abandoned one, with its lock', async () => {
    const slow = await startOciProxy(reg.host, { slowBlobsMs: 20 })
    const target = join(makeTemp('mf-node-'), 'store')
    const pulls = join(target, '.modelforge', 'pulls')
    try {
      const { child, exited } = spawnPull(`${slow.host}/models/big:v1`, target)
      await waitFor(() => pullEntries(target, false).length > 0)
      const running = cli(['store', 'gc', '--older-than', '0', '--store', target, '--json'], { env })
      expect(running.code, running.stdout + running.stderr).toBe(0)
      expect(JSON.parse(running.stdout).result.removed.filter((r: { kind: string }) => r.kind === 'pull')).toEqual([])
      child.kill('SIGKILL')
      await exited
    } finally {
      await slow.close()
    }
    const [dir] = pullEntries(target, false)
    expect(dir).toMatch(/^[0-9a-f]{64}$/)
    // Young: the default age (24h) keeps it.
    const young = cli(['store', 'gc', '--store', target, '--json'], { env })
    expect(JSON.parse(young.stdout).result.removed).toEqual([])
    const old = cli(['store', 'gc', '--older-than', '0', '--store', target, '--json'], { env })
    expect(old.code, old.stdout + old.stderr).toBe(0)
    expect(JSON.parse(old.stdout).result.removed).toEqual([{ path: join(pulls, dir!), kind: 'pull' }])
    expect(readdirSync(pulls)).toEqual([])
  }, 120_000)

  it('a staging directory that is not a pull\'s own is left alone: the pull stops on STAGING_EXISTS (exit 5)', async () => {
    const target = join(makeTemp('mf-node-'), 'store')
    const store = new ModelStore(target)
    const staging = await store.stage('big', 'v1')
    writeFileSync(join(staging, 'mine.txt'), 'a build in progress')
    const r = cli(['store', 'pull', `${reg.host}/models/big:v1`, '--store', target, '--json'], { env })
    expect(r.code, r.stdout + r.stderr).toBe(5)
    expect(JSON.parse(r.stdout).error).toMatchObject({ code: 'STAGING_EXISTS' })
    expect(readdirSync(staging)).toEqual(['mine.txt'])
  }, 60_000)

  it('a chunked push whose PATCH is cut still lands: Distribution 2.8 drops the upload, and the blob is sent again in a new one', async () => {
    const other = new ModelStore(join(makeTemp('mf-resume-'), 'store'))
    const bytes = randomBytes(10 * MiB)
    await publish(other, 'big', 'v1', { 'model.onnx': bytes as unknown as string })
    const proxy = await startOciProxy(reg.host, { cutUploadsAfter: MiB, uploadCuts: 1 })
    try {
      const r = await pushVersion(other, 'big', 'v1', `${proxy.host}/other/big:v1`, { env, monolithicMax: MiB, chunkBytes: 4 * MiB })
      expect(proxy.uploadsCut).toBe(1)
      expect(r).toMatchObject({ mounted: 0, present: 0 })
      expect(r.uploaded).toBe(r.blobs)
      const sha = createHash('sha256').update(bytes).digest('hex')
      const blob = await reg.api(`/v2/other/big/blobs/sha256:${sha}`)
      expect(blob.status).toBe(200)
      expect(createHash('sha256').update(Buffer.from(await blob.arrayBuffer())).digest('hex')).toBe(sha)
    } finally {
      await proxy.close()
    }
  }, 60_000)
})
