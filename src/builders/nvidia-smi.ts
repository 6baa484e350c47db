/**
 * The machine's GPUs as nvidia-smi reports them (name, compute capability, memory, driver), for doctor and
 * for a build's record of where it ran. trtexec's own device block says the same for the device it used;
 * nvidia-smi also answers when trtexec is missing, and says why there is no GPU when there is none.
 */
import { run } from '../lib/exec.js'
import { findOnPath } from '../lib/which.js'
import type { DeviceInfo } from './types.js'

type Env = Record<string, string | undefined>

export const NVIDIA_SMI_QUERY = ['--query-gpu=name,compute_cap,memory.total,driver_version', '--format=csv,noheader']

export interface GpuInfo extends DeviceInfo {
  source: 'nvidia-smi'
  driverVersion?: string
}

export interface GpuQuery {
  /** Where nvidia-smi was found on PATH. */
  nvidiaSmi?: string
  gpus: GpuInfo[]
  /** Why there are no GPUs: nvidia-smi is missing, failed, or listed none. */
  problem?: string
}

/** Lines of `nvidia-smi --query-gpu=name,compute_cap,memory.total,driver_version --format=csv,noheader`. */
export function parseGpuCsv(text: string): GpuInfo[] {
  const known = (s: string | undefined): string | undefined => (s === undefined || s === '' || /^\[.*\]$/.test(s) ? undefined : s)
  return text.split('\n').map((l) => l.trim()).filter((l) => l !== '').map((line) => {
    const fields = line.split(',').map((f) => f.trim())
    // The last three fields are never a name; a name with a comma keeps its parts.
    const [cc, memory, driver] = fields.slice(-3)
    const name = fields.slice(0, -3).join(', ')
    const mib = known(memory) ? /^(\d+)\s*MiB$/i.exec(memory!) : null
    const gpu: GpuInfo = { name, source: 'nvidia-smi' }
    if (known(cc)) gpu.computeCapability = cc
    if (mib) gpu.memoryMiB = Number(mib[1])
    if (known(driver)) gpu.driverVersion = driver
    return gpu
  })
}

export async function queryGpus(o: { env?: Env; timeoutMs?: number } = {}): Promise<GpuQuery> {
  const nvidiaSmi = await findOnPath('nvidia-smi', o.env ?? process.env)
  if (!nvidiaSmi) return { gpus: [], problem: 'nvidia-smi not found' }
  let r
  try {
    r = await run(nvidiaSmi, NVIDIA_SMI_QUERY, { reject: false, timeout: o.timeoutMs ?? 15_000, env: o.env })
  } catch (err) {
    return { nvidiaSmi, gpus: [], problem: (err as Error).message }
  }
  if (r.exitCode !== 0) {
    // Its failures are one sentence, e.g. "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. ..."
    const said = r.all.trim().split('\n')[0]
    return { nvidiaSmi, gpus: [], problem: `nvidia-smi exited with code ${r.exitCode}${said ? `: ${said}` : ''}` }
  }
  const gpus = parseGpuCsv(r.stdout)
  return gpus.length > 0 ? { nvidiaSmi, gpus } : { nvidiaSmi, gpus, problem: 'nvidia-smi listed no GPU' }
}
