/**
 * What this machine has for modelforge: trtexec and its version, the GPUs, onnxruntime's providers, the
 * store, the Hugging Face cache and the timing-cache directory (and whether they can be written), and
 * optimum-cli. It reports and never fails for what is missing: each missing piece is listed with how to get
 * it, so a machine without a GPU or TensorRT gets a useful answer rather than an error.
 */
import { constants } from 'node:fs'
import { access, stat } from 'node:fs/promises'
import { dirname } from 'node:path'
import { errnoCode, ModelforgeError } from '../lib/errors.js'
import { findOnPath } from '../lib/which.js'
import { runtimeInfo, type RuntimeInfo } from '../validate/backends.js'
import { assertSupported } from './argv.js'
import { findTrtexec, probeTrtexec, type TrtexecSource } from './locate.js'
import { queryGpus, type GpuQuery } from './nvidia-smi.js'

type Env = Record<string, string | undefined>

export interface DoctorOptions {
  /** --trtexec, as build takes it. */
  trtexecFlag?: string
  /** The environment to read (TRTEXEC, PATH); default process.env. */
  env?: Env
  storeRoot: string
  hubCache: string
  timingCacheDir: string
}

export interface TrtexecReport {
  found: boolean
  path?: string
  source?: TrtexecSource
  /** "10.16.1". */
  version?: string
  /** The `[bNN]` build tag of 10.4 and later. */
  build?: number
  /** Why there is no usable trtexec. */
  problem?: string
  hint?: string
}

export interface PathReport {
  path: string
  exists: boolean
  /** The path itself when it exists, else its nearest existing parent: what W_OK was asked of. */
  checked: string
  /** A directory can be written (or created) there. */
  writable: boolean
  problem?: string
}

export interface ToolReport {
  found: boolean
  path?: string
}

export interface DoctorReport {
  trtexec: TrtexecReport
  gpus: GpuQuery
  onnxruntime: RuntimeInfo
  store: PathReport
  hubCache: PathReport
  timingCache: PathReport
  optimumCli: ToolReport
  /** What is missing, each with how to get it; empty when nothing is. */
  missing: { what: string; how: string }[]
}

export async function doctor(o: DoctorOptions): Promise<DoctorReport> {
  const env = o.env ?? process.env
  const [trtexec, gpus, store, hubCache, timingCache, optimum] = await Promise.all([
    trtexecReport(o.trtexecFlag, env),
    queryGpus({ env }),
    pathReport(o.storeRoot),
    pathReport(o.hubCache),
    pathReport(o.timingCacheDir),
    findOnPath('optimum-cli', env),
  ])
  const onnxruntime = runtimeInfo()
  const optimumCli: ToolReport = optimum ? { found: true, path: optimum } : { found: false }
  const missing: DoctorReport['missing'] = []
  if (!trtexec.found) missing.push({ what: 'trtexec', how: `${trtexec.problem}. ${trtexec.hint}` })
  if (gpus.gpus.length === 0) {
    missing.push({
      what: 'an NVIDIA GPU',
      how: gpus.problem === 'nvidia-smi not found'
        ? 'nvidia-smi not found: TensorRT builds need an NVIDIA GPU and its driver (the driver installs nvidia-smi); run builds on a GPU machine.'
        : `${gpus.problem}: check the NVIDIA driver (nvidia-smi must list the GPU).`,
    })
  } else if (!onnxruntime.backends.some((b) => b.name === 'cuda' && b.available)) {
    missing.push({ what: "onnxruntime's CUDA provider", how: 'Validation runs on the CPU; for CUDA reinstall onnxruntime-node with onnxruntime-node-install=cuda12 (npm ci --onnxruntime-node-install=cuda12).' })
  }
  for (const [what, p] of [['the store', store], ['the Hugging Face cache', hubCache], ['the timing-cache directory', timingCache]] as const) {
    if (!p.writable) missing.push({ what: `a writable ${what.replace(/^the /, '')}`, how: `${p.path}: ${p.problem ?? `${p.checked} is not writable by this user`}. Choose another path, or fix its permissions.` })
  }
  if (!optimumCli.found) missing.push({ what: 'optimum-cli (optional, for `modelforge export --exporter optimum`)', how: 'pip install "optimum[exporters]"' })
  return { trtexec, gpus, onnxruntime, store, hubCache, timingCache, optimumCli, missing }
}

async function trtexecReport(flag: string | undefined, env: Env): Promise<TrtexecReport> {
  let found
  try {
    found = await findTrtexec({ flag, env })
  } catch (err) {
    if (err instanceof ModelforgeError) return { found: false, problem: err.message, hint: err.hint }
    throw err
  }
  const where = { path: found.path, source: found.source }
  let version
  try {
    version = (await probeTrtexec(found.path, { env })).version
  } catch (err) {
    if (err instanceof ModelforgeError) return { found: false, ...where, problem: err.message, hint: err.hint }
    throw err
  }
  const report: TrtexecReport = { found: true, ...where, version: version.text, ...(version.build === undefined ? {} : { build: version.build }) }
  try {
    assertSupported(version)
  } catch (err) {
    if (err instanceof ModelforgeError) return { ...report, found: false, problem: err.message, hint: err.hint }
    throw err
  }
  return report
}

/** Whether a directory exists at `path`, and whether this user can write it (or create it, in its nearest existing parent). */
export async function pathReport(path: string): Promise<PathReport> {
  let checked = path
  for (;;) {
    try {
      const st = await stat(checked)
      const exists = checked === path
      if (!st.isDirectory()) {
        return { path, exists, checked, writable: false, problem: exists ? 'it is not a directory' : `${checked} is a file, so no directory can be made under it` }
      }
      const writable = await access(checked, constants.W_OK).then(() => true, () => false)
      return { path, exists, checked, writable, ...(writable ? {} : { problem: `${checked} is not writable by this user` }) }
    } catch (err) {
      const code = errnoCode(err)
      const parent = dirname(checked)
      if ((code === 'ENOENT' || code === 'ENOTDIR') && parent !== checked) {
        checked = parent
        continue
      }
      return { path, exists: false, checked, writable: false, problem: `${checked} cannot be inspected (${code ?? (err as Error).message})` }
    }
  }
}

const SOURCE: Record<TrtexecSource, string> = { flag: 'from --trtexec', TRTEXEC: 'from TRTEXEC', PATH: 'found on PATH', default: 'the default install path' }

function pathLine(p: PathReport): string {
  if (p.exists) return `${p.path} (${p.writable ? 'writable' : p.problem ?? 'not writable'})`
  return `${p.path} (does not exist yet; ${p.writable ? `can be created in ${p.checked}` : p.problem ?? 'cannot be created'})`
}

/** The report as text, one line a part, then what is missing and how to get it. */
export function formatDoctor(r: DoctorReport): string {
  const t = r.trtexec
  const trtexec = t.found
    ? `${t.path} (${SOURCE[t.source!]}): TensorRT ${t.version}${t.build === undefined ? '' : ` [b${t.build}]`}`
    : t.path ? `${t.path} (${SOURCE[t.source!]}) cannot be used${t.version ? ` (TensorRT ${t.version})` : ''}: ${t.problem}` : `missing: ${t.problem}`
  const gpus = r.gpus.gpus.length > 0
    ? r.gpus.gpus.map((g) => [g.name, g.computeCapability && `compute ${g.computeCapability}`, g.memoryMiB !== undefined && `${g.memoryMiB} MiB`, g.driverVersion && `driver ${g.driverVersion}`].filter(Boolean).join(', ')).join('; ')
    : r.gpus.problem ?? 'none'
  const available = r.onnxruntime.backends.filter((b) => b.available).map((b) => b.name)
  const absent = r.onnxruntime.backends.filter((b) => !b.available).map((b) => b.name)
  const ort = `${r.onnxruntime.package} ${r.onnxruntime.version}: ${available.join(', ') || 'no provider'}${absent.length ? `; not installed: ${absent.join(', ')}` : ''}`
  const rows: [string, string][] = [
    ['trtexec', trtexec],
    ['GPUs', gpus],
    ['onnxruntime', ort],
    ['store', pathLine(r.store)],
    ['HF cache', pathLine(r.hubCache)],
    ['timing cache', pathLine(r.timingCache)],
    ['optimum-cli', r.optimumCli.found ? r.optimumCli.path! : 'not on PATH'],
  ]
  const lines = rows.map(([k, v]) => `${k.padEnd(13)} ${v}`)
  if (r.missing.length > 0) lines.push('', 'Missing:', ...r.missing.map((m) => `  - ${m.what}: ${m.how}`))
  else lines.push('', 'Nothing is missing.')
  return lines.join('\n')
}
