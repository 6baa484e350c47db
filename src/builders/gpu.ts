/**
 * Which GPU a build runs on, known before trtexec runs, so that the timing cache (keyed by GPU and TensorRT
 * version) can be named in its argument list: from nvidia-smi (nvidia-smi.ts) when the machine has it,
 * else from the device an earlier run of the same trtexec reported in its log (remembered in a small file
 * next to the probe cache). Without either, the GPU is only known from the build's own log.
 */
import { realpath, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { writeFileAtomic } from '../lib/fs.js'
import { readJsonFile } from '../lib/json.js'
import { queryGpus, type GpuInfo } from './nvidia-smi.js'
import type { DeviceInfo } from './types.js'

type Env = Record<string, string | undefined>

/**
 * The GPU CUDA calls device 0, the one trtexec builds on by default: nvidia-smi's first GPU, or, with
 * CUDA_VISIBLE_DEVICES set, the one its first entry names by index (a UUID entry cannot be matched with
 * nvidia-smi's list: the GPU is then learnt from trtexec's log). An empty CUDA_VISIBLE_DEVICES hides every GPU.
 */
export function deviceZero(gpus: readonly GpuInfo[], env: Env = process.env): GpuInfo | undefined {
  const visible = env.CUDA_VISIBLE_DEVICES
  if (visible === undefined) return gpus[0]
  const first = visible.split(',')[0]!.trim()
  return /^\d+$/.test(first) ? gpus[Number(first)] : undefined
}

/** nvidia-smi's view of device 0, or undefined when there is no nvidia-smi or it sees no GPU. Never throws. */
export async function gpuBeforeBuild(env: Env = process.env): Promise<GpuInfo | undefined> {
  const q = await queryGpus({ env })
  return deviceZero(q.gpus, env)
}

/**
 * A directory name for a GPU model: what makes a timing cache reusable is the GPU's architecture and SKU,
 * not which card of that model it is. "NVIDIA A100-SXM4-80GB" at 8.0 is `nvidia-a100-sxm4-80gb-sm80`.
 */
export function gpuSlug(device: Pick<DeviceInfo, 'name' | 'computeCapability'>): string {
  const name = device.name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '') || 'gpu'
  const cc = device.computeCapability?.replace(/[^0-9]/g, '')
  return cc ? `${name}-sm${cc}` : name
}

interface RememberedDevices {
  /** trtexec's real path -> the binary it was (size, mtime) and the device its last build reported. */
  [trtexec: string]: { size: number; mtimeMs: number; device: DeviceInfo }
}

const REMEMBERED = 'trtexec-devices.json'

/** The binary behind the path (a link in PATH to a TensorRT install): its real path, size and mtime. */
async function binaryFacts(trtexec: string): Promise<{ key: string; size: number; mtimeMs: number } | undefined> {
  try {
    const key = await realpath(trtexec)
    const s = await stat(key)
    return { key, size: s.size, mtimeMs: s.mtimeMs }
  } catch {
    return undefined
  }
}

async function readRemembered(dir: string): Promise<RememberedDevices> {
  try {
    return await readJsonFile<RememberedDevices>(join(dir, REMEMBERED), { expect: 'object' })
  } catch {
    // Missing or damaged: a memory only, the next build's log writes it again.
    return {}
  }
}

/**
 * The device the last build with this very trtexec binary reported (same path, size and mtime: a
 * reinstalled TensorRT, or a machine whose GPU changed along with it, does not inherit the old answer).
 */
export async function rememberedDevice(dir: string, trtexec: string): Promise<DeviceInfo | undefined> {
  const facts = await binaryFacts(trtexec)
  const entry = facts && (await readRemembered(dir))[facts.key]
  if (!facts || !entry || entry.size !== facts.size || entry.mtimeMs !== facts.mtimeMs || typeof entry.device?.name !== 'string') return undefined
  return entry.device
}

/** Remembers the device a build's log reported, for the next build with the same trtexec. */
export async function rememberDevice(dir: string, trtexec: string, device: DeviceInfo): Promise<void> {
  const facts = await binaryFacts(trtexec)
  if (!facts) return
  const all = await readRemembered(dir)
  all[facts.key] = { size: facts.size, mtimeMs: facts.mtimeMs, device }
  // Atomic: two builds finishing together each leave a whole file (the last one's).
  await writeFileAtomic(join(dir, REMEMBERED), JSON.stringify(all, null, 2) + '\n')
}
