/**
 * Which GPU a build runs on, known before trtexec runs, so that the timing cache (keyed by GPU and TensorRT
 * version) can be named in its argument list: from nvidia-smi when the machine has it, else from the device
 * an earlier run of the same trtexec reported in its log (remembered in a small file next to the probe
 * cache). Without either, the GPU is only known from the build's own log.
 */
import { realpath, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { ModelforgeError } from '../lib/errors.js'
import { run } from '../lib/exec.js'
import { writeFileAtomic } from '../lib/fs.js'
import { readJsonFile } from '../lib/json.js'
import type { DeviceInfo } from './types.js'

type Env = Record<string, string | undefined>

export interface SmiGpu extends DeviceInfo {
  index: number
}

const QUERY = ['index', 'uuid', 'name', 'compute_cap', 'memory.total']

/**
 * The rows of `nvidia-smi --query-gpu=index,uuid,name,compute_cap,memory.total --format=csv,noheader,nounits`
 * (compute_cap may be missing: drivers before 510 do not know the field, and the query is then made
 * without it). GPU names hold no commas, so a plain split is enough.
 */
export function parseSmiCsv(text: string, fields: readonly string[] = QUERY): SmiGpu[] {
  const gpus: SmiGpu[] = []
  for (const line of text.split('\n')) {
    if (!line.trim()) continue
    const cells = line.split(',').map((c) => c.trim())
    const get = (f: string): string | undefined => {
      const v = cells[fields.indexOf(f)]
      return v === undefined || v === '' || /^\[(N\/A|Not Supported)\]$/.test(v) ? undefined : v
    }
    const index = Number(get('index'))
    const name = get('name')
    if (!Number.isInteger(index) || !name) continue
    const memory = Number(get('memory.total'))
    const cc = get('compute_cap')
    gpus.push({
      index,
      name,
      ...(cc ? { computeCapability: cc } : {}),
      ...(Number.isFinite(memory) && memory > 0 ? { memoryMiB: memory } : {}),
      ...(get('uuid') ? { uuid: get('uuid') } : {}),
      source: 'nvidia-smi',
    })
  }
  return gpus
}

/**
 * The GPU CUDA calls device 0, the one trtexec builds on by default: the first of CUDA_VISIBLE_DEVICES
 * (an index or a UUID, possibly abbreviated) when it is set, else nvidia-smi's index 0. An empty
 * CUDA_VISIBLE_DEVICES hides every GPU.
 */
export function deviceZero(gpus: readonly SmiGpu[], env: Env = process.env): SmiGpu | undefined {
  const visible = env.CUDA_VISIBLE_DEVICES
  if (visible === undefined) return gpus.find((g) => g.index === 0) ?? gpus[0]
  const first = visible.split(',')[0]!.trim()
  if (first === '') return undefined
  if (/^\d+$/.test(first)) return gpus.find((g) => g.index === Number(first))
  return gpus.find((g) => g.uuid !== undefined && g.uuid.startsWith(first))
}

/** nvidia-smi's view of device 0, or undefined when there is no nvidia-smi or it sees no GPU. Never throws. */
export async function queryNvidiaSmi(env: Env = process.env): Promise<SmiGpu | undefined> {
  for (const fields of [QUERY, QUERY.filter((f) => f !== 'compute_cap')]) {
    try {
      const r = await run('nvidia-smi', [`--query-gpu=${fields.join(',')}`, '--format=csv,noheader,nounits'], { env, reject: false, timeout: 15_000 })
      if (r.exitCode === 0) return deviceZero(parseSmiCsv(r.stdout, fields), env)
    } catch (err) {
      // No nvidia-smi (TOOL_NOT_FOUND), or one that hangs: the GPU is then learnt from trtexec's log.
      if (err instanceof ModelforgeError) return undefined
      throw err
    }
  }
  return undefined
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
