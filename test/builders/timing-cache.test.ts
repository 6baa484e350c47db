import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { planTimingCache, prepareTimingCache, settleTimingCache, STAGED_CACHE, timingCacheFile } from '../../src/builders/timing-cache.js'
import { parseVersionText } from '../../src/builders/trtexec-version.js'
import type { DeviceInfo } from '../../src/builders/types.js'
import { tryLock } from '../../src/lib/lock.js'

let dir: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mf-tcache-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

const v10 = parseVersionText('10.16.1')!
const v84 = parseVersionText('8.4.1')!
const a100: DeviceInfo = { name: 'NVIDIA A100-SXM4-80GB', computeCapability: '8.0', source: 'trtexec' }

async function fresh(name: string): Promise<{ root: string; staging: string }> {
  const root = join(dir, name, 'cache')
  const staging = join(dir, name, 'staging')
  await mkdir(staging, { recursive: true })
  return { root, staging }
}

describe('the timing cache of a build', () => {
  it('is keyed by TensorRT version and GPU model', () => {
    expect(timingCacheFile('/c', v10, a100)).toBe('/c/10.16.1/nvidia-a100-sxm4-80gb-sm80/timing.cache')
  })

  it('hands the keyed file to a trtexec that locks it itself (8.6+), when the GPU is known', () => {
    expect(planTimingCache('/c', v10, a100)).toEqual({ argvFile: '/c/10.16.1/nvidia-a100-sxm4-80gb-sm80/timing.cache', mode: 'shared', keyed: '/c/10.16.1/nvidia-a100-sxm4-80gb-sm80/timing.cache' })
  })

  it('builds with a staged copy when the GPU is unknown, or trtexec writes without a lock (before 8.6)', () => {
    expect(planTimingCache('/c', v10, undefined)).toEqual({ argvFile: STAGED_CACHE, mode: 'staged', reason: 'gpu-unknown' })
    expect(planTimingCache('/c', v84, a100)).toMatchObject({ argvFile: STAGED_CACHE, mode: 'staged', reason: 'no-trtexec-lock', keyed: '/c/8.4.1/nvidia-a100-sxm4-80gb-sm80/timing.cache' })
  })

  it('creates the keyed directory for trtexec to write in (shared)', async () => {
    const { root, staging } = await fresh('shared')
    const plan = planTimingCache(root, v10, a100)
    await prepareTimingCache(plan, staging)
    expect(existsSync(join(root, '10.16.1', 'nvidia-a100-sxm4-80gb-sm80'))).toBe(true)
    expect(await settleTimingCache(plan, { root, version: v10, staging, device: a100 })).toEqual({ file: plan.keyed, mode: 'shared', action: 'shared' })
  })

  it('files a first build\'s cache under the GPU its log reported, and the staged copy goes', async () => {
    const { root, staging } = await fresh('first')
    const plan = planTimingCache(root, v10, undefined)
    await prepareTimingCache(plan, staging)
    await writeFile(join(staging, STAGED_CACHE), 'entries-of-the-first-build')
    const outcome = await settleTimingCache(plan, { root, version: v10, staging, device: a100 })
    expect(outcome).toEqual({ file: timingCacheFile(root, v10, a100), mode: 'staged', action: 'created' })
    expect(await readFile(outcome.file!, 'utf8')).toBe('entries-of-the-first-build')
    expect(existsSync(join(staging, STAGED_CACHE))).toBe(false)
  })

  it('seeds the copy of an old trtexec from the keyed file and keeps the larger one on write-back', async () => {
    const { root, staging } = await fresh('old')
    const plan = planTimingCache(root, v84, a100)
    await mkdir(join(root, '8.4.1', 'nvidia-a100-sxm4-80gb-sm80'), { recursive: true })
    await writeFile(plan.keyed!, 'abc')
    await prepareTimingCache(plan, staging)
    expect(await readFile(join(staging, STAGED_CACHE), 'utf8')).toBe('abc')
    await writeFile(join(staging, STAGED_CACHE), 'abc+more')
    expect((await settleTimingCache(plan, { root, version: v84, staging })).action).toBe('replaced')
    expect(await readFile(plan.keyed!, 'utf8')).toBe('abc+more')
    // Another build wrote back a larger cache meanwhile: this smaller one does not replace it.
    await writeFile(join(staging, STAGED_CACHE), 'ab')
    expect((await settleTimingCache(plan, { root, version: v84, staging })).action).toBe('kept-existing')
    expect(await readFile(plan.keyed!, 'utf8')).toBe('abc+more')
  })

  it('never fails a build over the cache: a write-back it cannot do is a warning', async () => {
    const { root, staging } = await fresh('nodevice')
    const plan = planTimingCache(root, v10, undefined)
    await writeFile(join(staging, STAGED_CACHE), 'x')
    const outcome = await settleTimingCache(plan, { root, version: v10, staging })
    expect(outcome.action).toBe('none')
    expect(outcome.warning).toMatch(/reported no device/)
    expect(existsSync(join(staging, STAGED_CACHE))).toBe(false)
  })

  it('writes back under the lock: a held lock is waited for', async () => {
    const { root, staging } = await fresh('locked')
    const plan = planTimingCache(root, v84, a100)
    await mkdir(join(root, '8.4.1', 'nvidia-a100-sxm4-80gb-sm80'), { recursive: true })
    const held = tryLock(`${plan.keyed}.modelforge-lock`)
    expect(held.lock).toBeDefined()
    await writeFile(join(staging, STAGED_CACHE), 'new')
    const settling = settleTimingCache(plan, { root, version: v84, staging })
    await new Promise((r) => setTimeout(r, 200))
    expect(existsSync(plan.keyed!)).toBe(false)
    held.lock!.release()
    expect((await settling).action).toBe('created')
  })
})
