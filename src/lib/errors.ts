/**
 * Errors and exit codes (docs/architecture.md).
 *
 * Three families, as in Shopify's CLI: user errors (bad input, refused, not found, conflict; each carries a
 * hint saying what to do), external-tool errors (trtexec, optimum, the network), and bugs (anything else,
 * exit 1). Library modules throw these; the base command renders them.
 */

export const ExitCode = {
  ok: 0,
  internal: 1,
  usage: 2,
  external: 3,
  integrity: 4,
  conflict: 5,
  notFound: 6,
  policy: 7,
} as const
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode]

export interface ErrorOptions {
  /** Machine-readable code, e.g. INVALID_NAME, VERSION_EXISTS. */
  code?: string
  /** What the user can do about it. */
  hint?: string
  cause?: unknown
  /** Extra structured facts for --json consumers. */
  details?: Record<string, unknown>
}

export class ModelforgeError extends Error {
  readonly exitCode: ExitCodeValue
  readonly code: string
  readonly hint?: string
  readonly details?: Record<string, unknown>

  constructor(message: string, exitCode: ExitCodeValue, defaultCode: string, options: ErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = new.target.name
    this.exitCode = exitCode
    this.code = options.code ?? defaultCode
    this.hint = options.hint
    this.details = options.details
  }
}

/** Bad flags, arguments or names: exit 2. */
export class UsageError extends ModelforgeError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, ExitCode.usage, 'USAGE', options)
  }
}

/** An external tool (trtexec, optimum-cli) or the network failed: exit 3. */
export class ExternalError extends ModelforgeError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, ExitCode.external, 'EXTERNAL', options)
  }
}

/** Validation or integrity check failed: exit 4. */
export class IntegrityError extends ModelforgeError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, ExitCode.integrity, 'INTEGRITY', options)
  }
}

/** Version exists, lock held: exit 5. */
export class ConflictError extends ModelforgeError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, ExitCode.conflict, 'CONFLICT', options)
  }
}

/** Not in cache while offline, unknown agent or version: exit 6. */
export class NotFoundError extends ModelforgeError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, ExitCode.notFound, 'NOT_FOUND', options)
  }
}

/** Refused by policy (source not allowed, approval required): exit 7. */
export class PolicyError extends ModelforgeError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, ExitCode.policy, 'POLICY', options)
  }
}

/** A bug: exit 1. Thrown where an invariant of our own code does not hold. */
export class InternalError extends ModelforgeError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, ExitCode.internal, 'INTERNAL', options)
  }
}

export interface ErrorJson {
  code: string
  message: string
  hint?: string
  details?: Record<string, unknown>
}

/** The exit code and --json error body for anything thrown, ours or not. */
export function describeError(err: unknown): { exitCode: ExitCodeValue; error: ErrorJson } {
  if (err instanceof ModelforgeError) {
    const error: ErrorJson = { code: err.code, message: err.message }
    if (err.hint) error.hint = err.hint
    if (err.details) error.details = err.details
    return { exitCode: err.exitCode, error }
  }
  const e = err as { message?: string; code?: string; oclif?: { exit?: number } }
  // oclif's own parse errors (unknown flag, missing argument) are usage errors.
  if (e && typeof e === 'object' && e.oclif && e.oclif.exit === 2) {
    // oclif ends its messages with its own "See more help with --help"; the hint says it once.
    const message = (e.message ?? String(err)).replace(/\n?See more help with --help\s*$/, '').trim()
    return { exitCode: ExitCode.usage, error: { code: 'USAGE', message, hint: 'See the command\'s --help for its flags and examples.' } }
  }
  const message = e && typeof e === 'object' && e.message ? e.message : String(err)
  return {
    exitCode: ExitCode.internal,
    error: {
      code: 'INTERNAL',
      message,
      hint: 'This is a bug in modelforge. Rerun with DEBUG=modelforge* and report it with the output.',
    },
  }
}

/** Node's errno-style error, narrowed. */
export function errnoCode(err: unknown): string | undefined {
  return err && typeof err === 'object' && 'code' in err ? String((err as { code: unknown }).code) : undefined
}
