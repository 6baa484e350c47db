/**
 * One run of trtexec (the build, or the validation of an engine) through lib/exec.ts, turned into our
 * errors: a failure classified by its log (exit 3 TRTEXEC_FAILED, with the cause, the last [E] lines, the
 * parser's hint, and the whole log kept in a file the message names), --timeout (exit 3 TRTEXEC_TIMEOUT),
 * an abort (exit 130). Both stop trtexec: SIGTERM, then SIGKILL after a grace period.
 */
import { writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ExternalError, InterruptedError, ModelforgeError } from '../lib/errors.js'
import { run } from '../lib/exec.js'
import { parseTrtexecLog } from './trtexec-log.js'
import type { ParsedLog } from './types.js'

type Env = Record<string, string | undefined>

/** Seconds a stopped trtexec gets between SIGTERM and SIGKILL: enough to release the GPU, short for Ctrl-C. */
export const KILL_GRACE_MS = 3000

export type RunKind = 'build' | 'validation'

/** What trtexec is doing, from the lines that open each phase. */
const PHASES: [RegExp, string][] = [
  [/Start parsing network model|Parsing model/, 'parsing the ONNX model'],
  [/Finished parsing network model|Finish parsing network model/, 'building the engine'],
  [/Engine built in|Created engine with size|Engine generation completed/, 'serializing the engine'],
  [/Engine loaded in|Loaded engine with size/, 'loading the engine'],
  [/Starting inference/, 'running inference'],
  [/=== Performance summary ===/, 'summarizing'],
]
const TIMING_CACHE_LOADED = /Loaded (\d+) bytes of timing cache from (.+)$/

export interface Deadline {
  /** performance.now() by which everything must be done. */
  at: number
  /** The whole allowance, for the message (--timeout). */
  totalMs: number
}

export interface RunTrtexecOptions {
  kind: RunKind
  cwd: string
  env?: Env
  deadline?: Deadline
  signal?: AbortSignal
  /** The phase trtexec entered (parsing, building, running inference). */
  onPhase?: (phase: string) => void
}

export interface TrtexecRun {
  argv: string[]
  /** stdout and stderr interleaved: the log. */
  log: string
  parsed: ParsedLog
  exitCode: number
  durationMs: number
  /** Milliseconds from the start of the run to `Starting inference` (the end of the build part). */
  inferenceStartMs?: number
  /** trtexec's own words that it read a timing cache. */
  timingCacheLoaded?: { bytes: number; file: string }
}

/** Where a failed run's whole log is kept (the staging directory goes with the failure). */
async function keepLog(kind: RunKind, log: string): Promise<string | undefined> {
  const file = join(tmpdir(), `modelforge-trtexec-${kind}-${new Date().toISOString().replace(/[:.]/g, '-')}-${process.pid}.log`)
  try {
    await writeFile(file, log)
    return file
  } catch {
    return undefined
  }
}

function remaining(deadline: Deadline | undefined, kind: RunKind, phase: string | undefined): number | undefined {
  if (!deadline) return undefined
  const left = Math.floor(deadline.at - performance.now())
  if (left <= 0) throw timeoutError(deadline, kind, phase, '')
  return left
}

function seconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(1)} s`
}

function timeoutError(deadline: Deadline, kind: RunKind, phase: string | undefined, output: string): ExternalError {
  return new ExternalError(`trtexec was stopped: the ${kind === 'build' ? 'build' : "engine's validation"} ran past --timeout ${seconds(deadline.totalMs)}${phase ? ` while ${phase}` : ''}; nothing was written`, {
    code: 'TRTEXEC_TIMEOUT',
    hint: 'Raise --timeout, or lower --builder-optimization-level to build faster; the timing cache makes later builds of similar models faster.',
    details: { kind, timeoutMs: deadline.totalMs, phase, output },
  })
}

export function interrupted(what: string): InterruptedError {
  return new InterruptedError(`${what} interrupted: trtexec was stopped and nothing was written`, {
    code: 'INTERRUPTED',
    hint: 'Rerun the build when it may run to the end.',
  })
}

/** Runs trtexec to its end; throws our error for anything but a PASSED run. */
export async function runTrtexec(file: string, argv: string[], o: RunTrtexecOptions): Promise<TrtexecRun> {
  if (o.signal?.aborted) throw interrupted(o.kind === 'build' ? 'build' : 'validation')
  let phase: string | undefined
  const started = performance.now()
  let inferenceStartMs: number | undefined
  let timingCacheLoaded: TrtexecRun['timingCacheLoaded']
  const timeout = remaining(o.deadline, o.kind, phase)
  const onLine = (line: string): void => {
    // Most lines open no phase; the cheap test first keeps a long verbose log cheap.
    if (line.includes('timing cache from')) {
      const m = TIMING_CACHE_LOADED.exec(line)
      if (m) timingCacheLoaded = { bytes: Number(m[1]), file: m[2]!.trim() }
    }
    for (const [re, name] of PHASES) {
      if (name !== phase && re.test(line)) {
        phase = name
        if (name === 'running inference') inferenceStartMs = performance.now() - started
        o.onPhase?.(name)
        break
      }
    }
  }
  let r
  try {
    r = await run(file, argv, { cwd: o.cwd, env: o.env, timeout, signal: o.signal, killGraceMs: KILL_GRACE_MS, reject: false, onLine })
  } catch (err) {
    if (err instanceof ModelforgeError && err.code === 'TOOL_TIMEOUT' && o.deadline) {
      throw timeoutError(o.deadline, o.kind, phase, String(err.details?.output ?? ''))
    }
    if (err instanceof ModelforgeError && err.code === 'TOOL_CANCELLED' && o.signal?.aborted) throw interrupted(o.kind === 'build' ? 'build' : 'validation')
    throw err
  }
  const parsed = parseTrtexecLog(r.all, { exitCode: r.exitCode, signal: r.signal ?? null })
  const result: TrtexecRun = {
    argv, log: r.all, parsed, exitCode: r.exitCode, durationMs: r.durationMs,
    ...(inferenceStartMs !== undefined ? { inferenceStartMs } : {}),
    ...(timingCacheLoaded ? { timingCacheLoaded } : {}),
  }
  if (r.exitCode === 0 && parsed.status === 'passed') return result
  throw await failureError(o.kind, result, r.signal)
}

async function failureError(kind: RunKind, run: TrtexecRun, signal: string | undefined): Promise<ExternalError> {
  const f = run.parsed.failure
  const how = signal ? `was killed by ${signal}` : `exited with code ${run.exitCode}`
  const cause = f?.cause ?? `trtexec ${how} without a reason in its log`
  const errors = (f?.lastErrors.length ? f.lastErrors : run.parsed.errors).slice(-5)
  const logFile = await keepLog(kind, run.log)
  const tail = run.log.trimEnd().split('\n').slice(-20).join('\n')
  const what = kind === 'build' ? 'trtexec could not build the engine' : 'trtexec could not run the engine for its validation'
  return new ExternalError(`${what}: ${cause}${errors.length ? `\n${errors.map((e) => `  [E] ${e}`).join('\n')}` : ''}`, {
    code: 'TRTEXEC_FAILED',
    hint: `${f?.hint ?? 'Read the log for the reason.'}${logFile ? ` The whole log: ${logFile}` : ''}`,
    details: { kind, failure: f ?? { class: 'unknown', cause, lastErrors: errors, hint: '' }, exitCode: run.exitCode, signal, log: logFile, tail, argv: run.argv },
  })
}
