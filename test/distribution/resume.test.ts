/**
 * Interrupted transfers (issue 15, acceptance 3): a pull whose blob connection is cut half-way continues
 * from the byte it reached; a pull SIGKILLed mid-blob continues on the next run without downloading again
 * what it has; a chunked push whose PATCH is cut lands all the same (Distribution drops such an upload).
 */
import { spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { pullVersion, pushVersion } from '../../src/distribution/index.js'
import { ModelStore } from '../../src/publish/store.js'
import { makeTemp, publish, removeTemps, runJs } from '../helpers/store-helpers.js'
import { ociRegistryAvailable, startOciRegistry, type OciRegistry } from '../helpers/oci-registry.js'
import { startOciProxy } from '../helpers/oci-proxy.js'

const skip = !ociRegistryAvailable()
const MiB = 1024 * 1024
let reg: OciRegistry
let source: ModelStore
const big = randomBytes(12 * MiB)
const env = { HOME: '/nonexistent' }

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
    const child = spawn(process.execPath, [runJs, 'store', 'pull', `${slow.host}/models/big:v1`, '--store', target, '--json'], { env: { ...process.env, ...env, CI: '1' }, stdio: 'ignore' })
    const pulls = join(target, '.modelforge', 'pulls')
    const partial = (): { path: string; size: number } | undefined => {
      if (!existsSync(pulls)) return undefined
      for (const d of readdirSync(pulls)) {
        for (const f of readdirSync(join(pulls, d))) {
          const size = statSync(join(pulls, d, f)).size
          if (size > 2 * MiB) return { path: join(pulls, d, f), size }
        }
      }
      return undefined
    }
    try {
      for (let i = 0; i < 600 && !partial(); i++) await new Promise((r) => setTimeout(r, 50))
      expect(partial(), 'the pull wrote part of the big blob').toBeDefined()
      child.kill('SIGKILL')
      await new Promise((r) => child.once('exit', r))
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
