/** What every phase of a run needs: the log, the parsed options and the double's environment. */
import { createHash } from 'node:crypto'
import type { DoubleEnv } from './env.js'
import type { Log } from './log.js'
import type { Options } from './options.js'

export interface Run {
  log: Log
  o: Options
  env: DoubleEnv
}

/** A failure of the double itself (a plan whose ONNX file is gone): loud, and never a trtexec exit code. */
export class DoubleError extends Error {}

/** A 32-bit seed from text, so that the same engine gives the same trace and inputs on every run. */
export function seedOf(text: string): number {
  return createHash('sha256').update(text).digest().readUInt32LE(0)
}

/** Seconds elapsed since `start` (performance.now()), for the "... in X sec." lines. */
export function since(start: number): number {
  return (performance.now() - start) / 1000
}
