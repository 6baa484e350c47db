/**
 * How a result or an error reaches the user, shared by BaseCommand and the start-up fast path of
 * bin/run.js (src/fast-path.ts), so that both print byte for byte the same. Lean on purpose: the fast path
 * imports it without oclif.
 */
import { describeError, ExitCode, type ExitCodeValue } from './errors.js'

/** The --json text of any object: plain (no colour), one object, newline-terminated. */
export function jsonText(value: unknown): string {
  return JSON.stringify(value, null, 2) + '\n'
}

/** The --json envelope of a result. */
export function successEnvelope(result: unknown): { status: 0; result: unknown } {
  return { status: ExitCode.ok, result }
}

/** The --json envelope of an error, with the exit code it maps to. */
export function errorEnvelope(err: unknown): { status: ExitCodeValue; error: ReturnType<typeof describeError>['error'] } {
  const { exitCode, error } = describeError(err)
  return { status: exitCode, error }
}

/** The human form of an error: "Error: ...", "Hint: ...", and under DEBUG the stack of a bug. */
export function errorText(err: unknown): string {
  const { exitCode, error } = describeError(err)
  const lines = [`Error: ${error.message}`]
  if (error.hint) lines.push(`Hint: ${error.hint}`)
  if (exitCode === ExitCode.internal && err instanceof Error && err.stack && process.env.DEBUG) lines.push(err.stack)
  return lines.join('\n') + '\n'
}

/** Prints an error as --json or human output and sets the process exit code; returns that code. */
export function renderError(err: unknown, json: boolean): ExitCodeValue {
  const envelope = errorEnvelope(err)
  process.exitCode = envelope.status
  if (json) process.stdout.write(jsonText(envelope))
  else process.stderr.write(errorText(err))
  return envelope.status
}
