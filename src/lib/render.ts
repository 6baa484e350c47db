/**
 * How a result or an error reaches the user, shared by BaseCommand and the start-up fast path of
 * bin/run.js (src/fast-path.ts), so that both print byte for byte the same. Lean on purpose: the fast path
 * imports it without oclif.
 */
import { describeError, ExitCode, type ExitCodeValue, type SystemErrorContext } from './errors.js'

/** The --json text of any object: plain (no colour), one object, newline-terminated. */
export function jsonText(value: unknown): string {
  return JSON.stringify(value, null, 2) + '\n'
}

/** The --json envelope of a result. */
export function successEnvelope(result: unknown): { status: 0; result: unknown } {
  return { status: ExitCode.ok, result }
}

/** The --json envelope of an error, with the exit code it maps to. */
export function errorEnvelope(err: unknown, context: SystemErrorContext = {}): { status: ExitCodeValue; error: ReturnType<typeof describeError>['error'] } {
  const { exitCode, error } = describeError(err, context)
  return { status: exitCode, error }
}

/** The human form of an error: "Error: ...", "Hint: ...", and under DEBUG the stack of a bug. */
export function errorText(err: unknown, context: SystemErrorContext = {}): string {
  const { exitCode, error } = describeError(err, context)
  const lines = [`Error: ${error.message}`]
  if (error.hint) lines.push(`Hint: ${error.hint}`)
  if (exitCode === ExitCode.internal && err instanceof Error && err.stack && process.env.DEBUG) lines.push(err.stack)
  return lines.join('\n') + '\n'
}

/**
 * Prints an error as --json or human output and sets the process exit code; returns that code. `context`
 * says what was running, for operating-system failures that reach here unclassified.
 */
export function renderError(err: unknown, json: boolean, context: SystemErrorContext = {}): ExitCodeValue {
  const envelope = errorEnvelope(err, context)
  process.exitCode = envelope.status
  if (json) process.stdout.write(jsonText(envelope))
  else process.stderr.write(errorText(err, context))
  return envelope.status
}
