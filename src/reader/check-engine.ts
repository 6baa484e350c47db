/**
 * checkEngine: before a GPU service deserializes a published engine.plan with TensorRT, whether that can
 * work here. TensorRT answers a plan from another version or compute capability with a deserialization
 * error deep in its log; this says why in a sentence, from the engine's record (engine.json) and the
 * machine (nvidia-smi's device 0, and the TensorRT version the service links, given by the caller).
 */
import { join } from 'node:path'
import { IntegrityError, NotFoundError, UsageError } from '../lib/errors.js'
import { readJsonFile } from '../lib/json.js'
import { checkEngineRecord, ENGINE_SCHEMA, type EngineRecord } from '../builders/engine-record.js'
import { deviceZero } from '../builders/gpu.js'
import { queryGpus, type GpuInfo } from '../builders/nvidia-smi.js'
import { parseVersionText } from '../builders/trtexec-version.js'

export interface CheckEngineOptions {
  /** The TensorRT version the caller links ("10.16.1"); without it the version is not checked (and that is said). */
  tensorrtVersion?: string
  /** The environment nvidia-smi runs in (PATH, CUDA_VISIBLE_DEVICES). */
  env?: Record<string, string | undefined>
  /** The machine's GPUs, instead of asking nvidia-smi. */
  gpus?: GpuInfo[]
}

export interface EngineCheck {
  ok: boolean
  engine: { gpu?: string; computeCapability?: string; tensorrt: string; hardwareCompatibilityLevel?: string }
  machine: { gpu?: string; computeCapability?: string; tensorrt?: string }
  /** Why the engine cannot run here, one sentence each. */
  problems: string[]
  /** What was not checked. */
  notes: string[]
}

async function readRecord(dir: string): Promise<EngineRecord> {
  const file = join(dir, 'engine.json')
  const record = await readJsonFile<EngineRecord>(file, {
    what: 'engine record', expect: 'object',
    onError: (f) => f.kind === 'missing'
      ? new NotFoundError(`${dir} has no engine.json`, { code: 'ENGINE_RECORD_MISSING', hint: 'Give the version directory build-engine (or the --out directory build) wrote.' })
      : new IntegrityError(f.message, { code: 'ENGINE_RECORD_INVALID', hint: 'Rebuild the engine with modelforge build or build-engine.', cause: f.cause }),
  })
  if (record.schema !== ENGINE_SCHEMA || typeof record.tensorrt?.version !== 'string' || typeof record.options !== 'object') {
    throw new IntegrityError(`${file} is not an engine record of ${ENGINE_SCHEMA}`, { code: 'ENGINE_RECORD_INVALID', hint: 'Rebuild the engine with modelforge build or build-engine.' })
  }
  return record
}

export async function checkEngine(dir: string, options: CheckEngineOptions = {}): Promise<EngineCheck> {
  const record = await readRecord(dir)
  let tensorrt: ReturnType<typeof parseVersionText>
  if (options.tensorrtVersion !== undefined) {
    tensorrt = parseVersionText(options.tensorrtVersion)
    if (!tensorrt) throw new UsageError(`tensorrtVersion ${options.tensorrtVersion} is not a TensorRT version`, { code: 'INVALID_OPTION', hint: 'Give major.minor.patch, e.g. 10.16.1 (tensorrt.__version__, or NV_TENSORRT_MAJOR/MINOR/PATCH).' })
  }
  const env = options.env ?? process.env
  const query = options.gpus ? { gpus: options.gpus, problem: options.gpus.length ? undefined : 'no GPU given' } : await queryGpus({ env })
  const gpu = deviceZero(query.gpus, env)
  const problems = checkEngineRecord(record, { ...(tensorrt ? { tensorrt } : {}), ...(gpu ? { gpu } : {}) })
  if (!gpu) problems.push(`no GPU here (${query.problem ?? 'CUDA_VISIBLE_DEVICES names none'}): a TensorRT engine needs an NVIDIA GPU`)
  const notes = tensorrt ? [] : ['the TensorRT version was not checked: pass tensorrtVersion (the one the service links)']
  return {
    ok: problems.length === 0,
    engine: { gpu: record.gpu?.name, computeCapability: record.gpu?.computeCapability, tensorrt: record.tensorrt.version, ...(record.options.hardwareCompatibilityLevel ? { hardwareCompatibilityLevel: record.options.hardwareCompatibilityLevel } : {}) },
    machine: { gpu: gpu?.name, computeCapability: gpu?.computeCapability, ...(tensorrt ? { tensorrt: `${tensorrt.major}.${tensorrt.minor}.${tensorrt.patch}` } : {}) },
    problems,
    notes,
  }
}

/** checkEngine, throwing ENGINE_MISMATCH (exit 4) with the reasons when the engine cannot run here. */
export async function assertEngineFits(dir: string, options: CheckEngineOptions = {}): Promise<EngineCheck> {
  const check = await checkEngine(dir, options)
  if (!check.ok) {
    throw new IntegrityError(`The engine in ${dir} cannot run here: ${check.problems.join('; ')}`, { code: 'ENGINE_MISMATCH', details: { check } })
  }
  return check
}
