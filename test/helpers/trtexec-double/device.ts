/**
 * The GPU the double pretends to have (TRTEXEC_DOUBLE_GPU = "name;compute capability;memory MiB", default
 * an A100 80GB) and trtexec's "=== Device Information ===" block for it. The facts trtexec prints that the
 * variable does not give (SMs, shared memory, bus, clocks) come from a table of real boards, or are made up
 * consistently for an unknown one; the UUID is derived from the name so that it is stable across runs.
 */
import { createHash } from 'node:crypto'
import { Exit } from './exit.js'
import type { Log } from './log.js'
import type { Version } from './version.js'

export interface Gpu {
  name: string
  /** "8.0" */
  computeCapability: string
  /** major*10+minor, e.g. 80. */
  sm: number
  memoryMiB: number
  uuid: string
  sms: number
  sharedKiB: number
  busBits: number
  ecc: boolean
  clockGHz: number
  memClockGHz: number
}

// Real boards, as their trtexec device blocks show them.
const BOARDS: Record<string, Partial<Gpu>> = {
  'NVIDIA A100-SXM4-80GB': { sms: 108, sharedKiB: 164, busBits: 5120, ecc: true, clockGHz: 1.41, memClockGHz: 1.593 },
  'NVIDIA A100-SXM4-40GB': { sms: 108, sharedKiB: 164, busBits: 5120, ecc: true, clockGHz: 1.41, memClockGHz: 1.215 },
  'NVIDIA H100 PCIe': { sms: 114, sharedKiB: 228, busBits: 5120, ecc: true, clockGHz: 1.755, memClockGHz: 1.593 },
  'NVIDIA GeForce RTX 3090': { sms: 82, sharedKiB: 100, busBits: 384, ecc: false, clockGHz: 1.695, memClockGHz: 9.751 },
  'NVIDIA GeForce RTX 3070': { sms: 46, sharedKiB: 100, busBits: 256, ecc: false, clockGHz: 1.845, memClockGHz: 7.001 },
  'Tesla T4': { sms: 40, sharedKiB: 64, busBits: 256, ecc: true, clockGHz: 1.59, memClockGHz: 5.001 },
}

export const DEFAULT_GPU = 'NVIDIA A100-SXM4-80GB;8.0;81037'

export function parseGpu(spec: string | undefined): Gpu {
  const [name, cc, mem] = (spec || DEFAULT_GPU).split(';').map((s) => s.trim())
  if (!name || !cc || !/^\d+\.\d+$/.test(cc)) {
    throw new Error(`TRTEXEC_DOUBLE_GPU must look like "${DEFAULT_GPU}" (got "${spec}")`)
  }
  const [major, minor] = cc.split('.').map(Number) as [number, number]
  const known = BOARDS[name] ?? {}
  const h = createHash('sha256').update(name).digest('hex')
  return {
    name,
    computeCapability: cc,
    sm: major * 10 + minor,
    memoryMiB: mem ? Number(mem) : 16384,
    uuid: `GPU-${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`,
    sms: known.sms ?? 48,
    sharedKiB: known.sharedKiB ?? 100,
    busBits: known.busBits ?? 256,
    ecc: known.ecc ?? false,
    clockGHz: known.clockGHz ?? 1.5,
    memClockGHz: known.memClockGHz ?? 5.001,
  }
}

/** setCudaDevice's block. 8.x printed no device list and no UUIDs. */
export function deviceBlock(log: Log, gpu: Gpu, v: Version, device: number): void {
  log.info('=== Device Information ===')
  if (v.major >= 10) {
    log.info('Available Devices: ')
    log.info(`  Device 0: "${gpu.name}" UUID: ${gpu.uuid}`)
  }
  if (device !== 0) {
    log.info(`Cannot find device ID ${device}!`)
    throw new Exit(1, null)
  }
  log.info(`Selected Device: ${gpu.name}`)
  if (v.major >= 10) {
    log.info('Selected Device ID: 0')
    log.info(`Selected Device UUID: ${gpu.uuid}`)
  }
  log.info(`Compute Capability: ${gpu.computeCapability}`)
  log.info(`SMs: ${gpu.sms}`)
  log.info(`Device Global Memory: ${gpu.memoryMiB} MiB`)
  log.info(`Shared Memory per SM: ${gpu.sharedKiB} KiB`)
  log.info(`Memory Bus Width: ${gpu.busBits} bits (ECC ${gpu.ecc ? 'enabled' : 'disabled'})`)
  log.info(`Application Compute Clock Rate: ${gpu.clockGHz} GHz`)
  log.info(`Application Memory Clock Rate: ${gpu.memClockGHz} GHz`)
  log.info()
  log.info('Note: The application clock rates do not reflect the actual clock rates that the GPU is currently running at.')
}
