/**
 * The double's controls, all optional environment variables (test/helpers/trtexec-double/README.md):
 *   TRTEXEC_DOUBLE_VERSION        the TensorRT version to play, "10.16.1" by default
 *   TRTEXEC_DOUBLE_GPU            "name;compute capability;memory MiB"
 *   TRTEXEC_DOUBLE_FAULT          oom | cuda | no-gpu | crash | abort | corrupt-outputs | no-implementation
 *   TRTEXEC_DOUBLE_BUILD_SECONDS  how long a build really waits (default 0.2)
 *   TRTEXEC_DOUBLE_RECORD         a file to append one JSON line per run to
 */
import { parseGpu, type Gpu } from './device.js'
import { parseVersion, type Version } from './version.js'

export const FAULTS = ['oom', 'cuda', 'no-gpu', 'crash', 'abort', 'corrupt-outputs', 'no-implementation'] as const
export type Fault = (typeof FAULTS)[number]

export interface DoubleEnv {
  version: Version
  gpu: Gpu
  fault?: Fault
  buildSeconds: number
  record?: string
}

/** Throws on a setting the double cannot play: that is a broken test, not a trtexec failure. */
export function readEnv(env: NodeJS.ProcessEnv): DoubleEnv {
  const fault = env.TRTEXEC_DOUBLE_FAULT || undefined
  if (fault !== undefined && !(FAULTS as readonly string[]).includes(fault)) {
    throw new Error(`TRTEXEC_DOUBLE_FAULT must be one of ${FAULTS.join(', ')} (got "${fault}")`)
  }
  const seconds = env.TRTEXEC_DOUBLE_BUILD_SECONDS ? Number(env.TRTEXEC_DOUBLE_BUILD_SECONDS) : 0.2
  if (!Number.isFinite(seconds) || seconds < 0) throw new Error(`TRTEXEC_DOUBLE_BUILD_SECONDS must be a number of seconds (got "${env.TRTEXEC_DOUBLE_BUILD_SECONDS}")`)
  return {
    version: parseVersion(env.TRTEXEC_DOUBLE_VERSION || undefined),
    gpu: parseGpu(env.TRTEXEC_DOUBLE_GPU || undefined),
    fault: fault as Fault | undefined,
    buildSeconds: seconds,
    record: env.TRTEXEC_DOUBLE_RECORD || undefined,
  }
}
