/**
 * The one wrapper around child processes (execa). Everything that runs another program (trtexec,
 * optimum-cli, openssl in benches, python in optional tests) goes through here so that errors are
 * classified the same way: a missing binary or a non-zero exit becomes an ExternalError (exit 3) whose
 * message names the tool and carries the tail of its output.
 */
import { execa, type Options as ExecaOptions } from 'execa'
import { debugLog } from './debug.js'
import { ExternalError } from './errors.js'

export interface RunOptions {
  cwd?: string
  env?: Record<string, string | undefined>
  /** Milliseconds before the child is stopped (SIGTERM, then SIGKILL after killGraceMs). */
  timeout?: number
  input?: string
  /** Called with each line of stdout/stderr as it arrives (progress, log parsing). */
  onLine?: (line: string, stream: 'stdout' | 'stderr') => void
  /** Do not throw on a non-zero exit; the caller inspects exitCode. */
  reject?: boolean
  /** A hint shown when the tool is missing, e.g. how to install it. */
  missingHint?: string
  /** Aborting it stops the child as a timeout does (SIGTERM, then SIGKILL after killGraceMs). */
  signal?: AbortSignal
  /**
   * Milliseconds a stopped child gets between SIGTERM and SIGKILL (default 5000, execa's). A program that
   * ignores or traps SIGTERM is still gone after it, so a timeout or an abort never leaves an orphan.
   */
  killGraceMs?: number
}

export interface RunResult {
  command: string
  argv: string[]
  exitCode: number
  stdout: string
  stderr: string
  /** stdout and stderr interleaved in the order they were written. */
  all: string
  durationMs: number
  /** The signal that ended the child (exitCode is then -1), e.g. SIGSEGV. */
  signal?: string
}

/** The last lines of the output, for an error message. */
function tail(text: string, lines = 20): string {
  const all = text.trimEnd().split('\n')
  return all.slice(-lines).join('\n')
}

const log = debugLog('exec')

export async function run(file: string, args: string[], options: RunOptions = {}): Promise<RunResult> {
  const started = performance.now()
  const execaOptions: ExecaOptions = {
    cwd: options.cwd,
    env: options.env,
    timeout: options.timeout,
    input: options.input,
    reject: false,
    cancelSignal: options.signal,
    killSignal: 'SIGTERM',
    forceKillAfterDelay: options.killGraceMs ?? 5000,
    stripFinalNewline: false,
    // stdout and stderr interleaved as the tool wrote them: trtexec logs [I] lines to stdout and [E] lines
    // to stderr, and a failure is only readable with both in their order.
    all: true,
  }
  log('spawn %s %o cwd=%s', file, args, options.cwd ?? process.cwd())
  const child = execa(file, args, execaOptions)
  // execa splits the lines itself (\n and \r\n, a last line without newline); the output is still buffered.
  const onLine = options.onLine
  const pumps = onLine
    ? (['stdout', 'stderr'] as const).map(async (from) => {
        for await (const line of child.iterable({ from })) onLine(String(line), from)
      })
    : []
  const result = await child
  await Promise.all(pumps).catch(() => undefined)
  const out: RunResult = {
    command: file,
    argv: args,
    exitCode: typeof result.exitCode === 'number' ? result.exitCode : -1,
    stdout: String(result.stdout ?? ''),
    stderr: String(result.stderr ?? ''),
    all: String(result.all ?? ''),
    durationMs: performance.now() - started,
    ...(result.signal ? { signal: result.signal } : {}),
  }
  log('exit %s code=%d signal=%s %dms', file, out.exitCode, result.signal ?? '-', Math.round(out.durationMs))
  const code = (result as { code?: string }).code
  if (code === 'ENOENT' || (result.failed && /ENOENT/.test(String(result.message)) && out.exitCode === -1)) {
    throw new ExternalError(`${file} was not found`, {
      code: 'TOOL_NOT_FOUND',
      hint: options.missingHint ?? `Install ${file} or put it on PATH.`,
      details: { tool: file },
    })
  }
  // Stopped by us: whatever the caller said about rejecting, the output is cut short. The tail rides along
  // so the caller can say what the tool was doing when it was stopped.
  const stopped = { tool: file, argv: args, durationMs: Math.round(out.durationMs), output: tail(out.all), signal: result.signal }
  if (result.timedOut) {
    throw new ExternalError(`${file} timed out after ${options.timeout} ms`, { code: 'TOOL_TIMEOUT', details: { ...stopped, timeoutMs: options.timeout } })
  }
  if (result.isCanceled) {
    throw new ExternalError(`${file} was cancelled`, { code: 'TOOL_CANCELLED', details: stopped })
  }
  if (options.reject !== false && (out.exitCode !== 0 || result.signal)) {
    const how = result.signal ? `was killed by ${result.signal}` : `exited with code ${out.exitCode}`
    const output = tail(out.all)
    throw new ExternalError(`${file} ${how}${output ? `:\n${output}` : ''}`, {
      code: 'TOOL_FAILED',
      hint: 'Read the tool output above; rerun the same command by hand to reproduce.',
      details: { tool: file, argv: args, exitCode: out.exitCode, signal: result.signal },
    })
  }
  return out
}

/** Whether a program can be started (used by doctor and auto-detection); never throws. */
export async function canRun(file: string, args: string[] = ['--version']): Promise<boolean> {
  try {
    const r = await run(file, args, { reject: false, timeout: 10_000 })
    return r.exitCode === 0
  } catch {
    return false
  }
}
