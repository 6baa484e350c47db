import { mkdtemp, rm, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { deviceZero, gpuBeforeBuild, gpuSlug, rememberDevice, rememberedDevice } from '../../src/builders/gpu.js'
import type { GpuInfo } from '../../src/builders/nvidia-smi.js'
import type { DeviceInfo } from '../../src/builders/types.js'

let dir: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mf-gpu-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

const a100: GpuInfo = { name: 'NVIDIA A100-SXM4-80GB', computeCapability: '8.0', memoryMiB: 81920, source: 'nvidia-smi' }
const t4: GpuInfo = { name: 'Tesla T4', computeCapability: '7.5', memoryMiB: 15360, source: 'nvidia-smi' }

describe('the GPU a build runs on', () => {
  it('names a GPU model by name and compute capability, the key of its timing cache', () => {
    expect(gpuSlug(a100)).toBe('nvidia-a100-sxm4-80gb-sm80')
    expect(gpuSlug({ name: 'NVIDIA GeForce RTX 3070', computeCapability: '8.6' })).toBe('nvidia-geforce-rtx-3070-sm86')
    expect(gpuSlug({ name: 'Tesla T4' })).toBe('tesla-t4')
  })

  it('takes device 0 as CUDA does: the first GPU, or the first CUDA_VISIBLE_DEVICES names', () => {
    expect(deviceZero([a100, t4], {})).toBe(a100)
    expect(deviceZero([a100, t4], { CUDA_VISIBLE_DEVICES: '1,0' })).toBe(t4)
    expect(deviceZero([a100, t4], { CUDA_VISIBLE_DEVICES: '' })).toBeUndefined()
    // A UUID cannot be matched with nvidia-smi's query: the build's own log tells instead.
    expect(deviceZero([a100, t4], { CUDA_VISIBLE_DEVICES: 'GPU-84a8068b' })).toBeUndefined()
    expect(deviceZero([], {})).toBeUndefined()
  })

  it('knows no GPU before the build on a machine without nvidia-smi', async () => {
    expect(await gpuBeforeBuild({ PATH: dir })).toBeUndefined()
  })

  it('remembers the device a trtexec reported, for that very binary only', async () => {
    const trtexec = join(dir, 'trtexec')
    await writeFile(trtexec, '#!/bin/sh\n', { mode: 0o755 })
    const device: DeviceInfo = { name: 'NVIDIA A100-SXM4-80GB', computeCapability: '8.0', memoryMiB: 81037, source: 'trtexec' }
    const state = join(dir, 'state')
    expect(await rememberedDevice(state, trtexec)).toBeUndefined()
    await rememberDevice(state, trtexec, device)
    expect(await rememberedDevice(state, trtexec)).toEqual(device)
    // Another binary at the same path (TensorRT reinstalled, perhaps with the GPU changed) inherits nothing.
    await utimes(trtexec, new Date(), new Date(Date.now() + 5000))
    expect(await rememberedDevice(state, trtexec)).toBeUndefined()
  })

  it('treats a damaged memory as none', async () => {
    const state = join(dir, 'damaged')
    const trtexec = join(dir, 'trtexec')
    await rememberDevice(state, trtexec, { name: 'x', source: 'trtexec' })
    await writeFile(join(state, 'trtexec-devices.json'), '{ not json')
    expect(await rememberedDevice(state, trtexec)).toBeUndefined()
  })
})
