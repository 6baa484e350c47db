/**
 * Errors and exit codes (docs/architecture.md, docs/errors.md).
 *
 * Three families, as in Shopify's CLI: user errors (bad input, refused, not found, conflict; each carries a
 * hint saying what to do), external-tool errors (trtexec, optimum, the network), and bugs (anything else,
 * exit 1). Every code is a key of ERROR_CODES (error-codes.ts) with one exit code, and each class accepts
 * only the codes of its exit code, so a code cannot be thrown with two meanings. Library modules throw
 * these; lib/render.ts prints them.
 */
import { ERROR_CODES, isErrorCode, type CodeWithExit, type ErrorCode } from './error-codes.js'

export { ERROR_CODES, type ErrorCode } from './error-codes.js'

export const ExitCode = {
  ok: 0,
  internal: 1,
  usage: 2,
  external: 3,
  integrity: 4,
  conflict: 5,
  notFound: 6,
  policy: 7,
  /** Stopped by SIGINT (Ctrl-C) or SIGTERM, as shells report a command a signal ended: 128 + SIGINT's 2. */
  interrupted: 130,
} as const
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode]

export interface ErrorOptions<C extends ErrorCode = ErrorCode> {
  /** Machine-readable code from ERROR_CODES, e.g. INVALID_NAME, VERSION_EXISTS. */
  code?: C
  /** What the user can do about it (default: the code's hint in ERROR_CODES). */
  hint?: string
  cause?: unknown
  /** Extra structured facts for --json consumers. */
  details?: Record<string, unknown>
}

export class ModelforgeError extends Error {
  readonly exitCode: ExitCodeValue
  readonly code: ErrorCode
  readonly hint: string
  readonly details?: Record<string, unknown>

  constructor(message: string, exitCode: ExitCodeValue, defaultCode: ErrorCode, options: ErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = new.target.name
    this.exitCode = exitCode
    this.code = options.code ?? defaultCode
    this.hint = options.hint ?? ERROR_CODES[this.code].hint
    this.details = options.details
  }
}

/** Bad flags, arguments, names or paths of the wrong kind: exit 2. */
export class UsageError extends ModelforgeError {
  constructor(message: string, options: ErrorOptions<CodeWithExit<2>> & { code: CodeWithExit<2> }) {
    super(message, ExitCode.usage, 'USAGE', options)
  }
}

/** An external tool (trtexec, optimum-cli), the network or the machine (disk full) failed: exit 3. */
export class ExternalError extends ModelforgeError {
  constructor(message: string, options: ErrorOptions<CodeWithExit<3>> & { code: CodeWithExit<3> }) {
    super(message, ExitCode.external, 'TOOL_FAILED', options)
  }
}

/** Validation or integrity check failed, a file's content is broken: exit 4. */
export class IntegrityError extends ModelforgeError {
  constructor(message: string, options: ErrorOptions<CodeWithExit<4>> & { code: CodeWithExit<4> }) {
    super(message, ExitCode.integrity, 'VERIFY_FAILED', options)
  }
}

/** Version exists, lock held: exit 5. */
export class ConflictError extends ModelforgeError {
  constructor(message: string, options: ErrorOptions<CodeWithExit<5>> & { code: CodeWithExit<5> }) {
    super(message, ExitCode.conflict, 'PATH_EXISTS', options)
  }
}

/** Not in cache while offline, unknown agent or version: exit 6. */
export class NotFoundError extends ModelforgeError {
  constructor(message: string, options: ErrorOptions<CodeWithExit<6>> & { code: CodeWithExit<6> }) {
    super(message, ExitCode.notFound, 'PATH_NOT_FOUND', options)
  }
}

/** Refused by policy (source not allowed, approval required) or by the operating system: exit 7. */
export class PolicyError extends ModelforgeError {
  constructor(message: string, options: ErrorOptions<CodeWithExit<7>> & { code: CodeWithExit<7> }) {
    super(message, ExitCode.policy, 'PERMISSION_DENIED', options)
  }
}

/**
 * The user or the system stopped the command (Ctrl-C, SIGTERM): exit 130. Thrown by a library call whose
 * AbortSignal fired, after it stopped what it ran and removed what it had started to write.
 */
export class InterruptedError extends ModelforgeError {
  constructor(message: string, options: ErrorOptions<CodeWithExit<130>> & { code: CodeWithExit<130> }) {
    super(message, ExitCode.interrupted, 'INTERRUPTED', options)
  }
}

/** A bug: exit 1. Thrown where an invariant of our own code does not hold. */
export class InternalError extends ModelforgeError {
  constructor(message: string, options: ErrorOptions<CodeWithExit<1>> & { code: CodeWithExit<1> }) {
    super(message, ExitCode.internal, 'INTERNAL', options)
  }
}

const CLASS_BY_EXIT = { 1: InternalError, 2: UsageError, 3: ExternalError, 4: IntegrityError, 5: ConflictError, 6: NotFoundError, 7: PolicyError, 130: InterruptedError }

/**
 * An error of ours rebuilt from its code (sent back by a worker thread, or carried over from a cause): the
 * class follows the code's exit code, so instanceof checks hold. An unknown code is a bug.
 */
export function errorFromCode(code: string, message: string, options: Omit<ErrorOptions, 'code'> = {}): ModelforgeError {
  if (!isErrorCode(code)) return new InternalError(message, { ...options, code: 'INTERNAL' })
  const Class = CLASS_BY_EXIT[ERROR_CODES[code].exit] as new (message: string, options: ErrorOptions & { code: ErrorCode }) => ModelforgeError
  return new Class(message, { ...options, code })
}

/**
 * Ordinary operating-system failures, by errno: the code each becomes, and what the syscall was doing.
 * Never exit 1: these are the machine's state (permissions, a full disk, a file where a directory belongs),
 * not bugs.
 */
const ERRNO: Record<string, { code: ErrorCode; reason: string }> = {
  EACCES: { code: 'PERMISSION_DENIED', reason: 'permission denied' },
  EPERM: { code: 'PERMISSION_DENIED', reason: 'operation not permitted (an immutable or append-only file, or another owner)' },
  EROFS: { code: 'READ_ONLY_FILESYSTEM', reason: 'read-only filesystem' },
  ENOSPC: { code: 'DISK_FULL', reason: 'no space left on the device' },
  EDQUOT: { code: 'DISK_FULL', reason: 'disk quota exceeded' },
  EIO: { code: 'IO_ERROR', reason: 'input/output error' },
  EMFILE: { code: 'TOO_MANY_OPEN_FILES', reason: 'too many open files in this process' },
  ENFILE: { code: 'TOO_MANY_OPEN_FILES', reason: 'too many open files in the system' },
  ENOTDIR: { code: 'NOT_A_DIRECTORY', reason: 'a part of the path is a file, not a directory' },
  EISDIR: { code: 'IS_A_DIRECTORY', reason: 'it is a directory' },
  ENAMETOOLONG: { code: 'NAME_TOO_LONG', reason: 'the name is too long' },
  EEXIST: { code: 'PATH_EXISTS', reason: 'it exists already' },
  ENOTEMPTY: { code: 'PATH_EXISTS', reason: 'the directory is not empty' },
  ENOENT: { code: 'PATH_NOT_FOUND', reason: 'no such file or directory' },
}

const SYSCALL: Record<string, string> = {
  open: 'open', mkdir: 'create the directory', mkdtemp: 'create a directory in', rmdir: 'remove the directory', rm: 'remove',
  unlink: 'remove', rename: 'rename', link: 'link', symlink: 'create the link', write: 'write', writev: 'write', read: 'read',
  fsync: 'sync', scandir: 'list', opendir: 'list', stat: 'inspect', lstat: 'inspect', copyfile: 'copy', cp: 'copy',
  chmod: 'change the mode of', chown: 'change the owner of', utime: 'set the time of', access: 'access', readlink: 'read the link',
  ftruncate: 'truncate', close: 'close', fstat: 'inspect',
}

export interface SystemErrorContext {
  /** What modelforge was doing, e.g. "running `modelforge export`" or a step's title. */
  doing?: string
  /** The path concerned, for the errors Node gives without one (a read of a directory: EISDIR). */
  path?: string
}

/**
 * The error for an operating-system failure (Node's errno errors: code, syscall, path), naming the path,
 * what failed and what modelforge was doing; undefined for anything else.
 */
export function systemError(err: unknown, context: SystemErrorContext = {}): ModelforgeError | undefined {
  if (!err || typeof err !== 'object' || err instanceof ModelforgeError) return undefined
  const e = err as { code?: unknown; syscall?: unknown; path?: unknown; dest?: unknown; message?: unknown }
  if (typeof e.code !== 'string' || !/^E[A-Z0-9]+$/.test(e.code) || (typeof e.syscall !== 'string' && typeof e.path !== 'string')) return undefined
  // An errno not listed is still the machine's failure, not a bug: a device or I/O error.
  const { code, reason } = ERRNO[e.code] ?? { code: 'IO_ERROR' as const, reason: typeof e.message === 'string' ? e.message : 'input/output error' }
  const verb = typeof e.syscall === 'string' ? (SYSCALL[e.syscall] ?? e.syscall) : 'use'
  const path = typeof e.path === 'string' ? e.path : context.path
  const dest = typeof e.dest === 'string' ? ` -> ${e.dest}` : ''
  const doing = context.doing ? ` while ${context.doing}` : ''
  const message = `Cannot ${verb}${path ? ` ${path}${dest}` : ''}: ${reason} (${e.code})${doing}`
  return new ModelforgeError(message, ERROR_CODES[code].exit, code, {
    code,
    cause: err,
    details: { errno: e.code, syscall: e.syscall, path, ...(dest ? { dest: e.dest } : {}) },
  })
}

/** An operating-system failure as ours (systemError); anything unexpected is still an I/O error, never a bug. */
export function osFailure(err: unknown, doing?: string, path?: string): ModelforgeError {
  if (err instanceof ModelforgeError) return err
  return systemError(err, { doing, path }) ?? new ExternalError(`${doing ? `While ${doing}: ` : ''}${(err as Error)?.message ?? String(err)}`, { code: 'IO_ERROR', cause: err })
}

export interface ErrorJson {
  code: ErrorCode
  message: string
  hint?: string
  details?: Record<string, unknown>
}

/** The exit code and --json error body for anything thrown, ours or not. */
export function describeError(err: unknown, context: SystemErrorContext = {}): { exitCode: ExitCodeValue; error: ErrorJson } {
  const mapped = err instanceof ModelforgeError ? err : systemError(err, context)
  if (mapped) {
    const error: ErrorJson = { code: mapped.code, message: mapped.message }
    if (mapped.hint) error.hint = mapped.hint
    if (mapped.details) error.details = mapped.details
    return { exitCode: mapped.exitCode, error }
  }
  const e = err as { message?: string; code?: string; oclif?: { exit?: number } }
  // oclif's own parse errors (unknown flag, missing argument) are usage errors.
  if (e && typeof e === 'object' && e.oclif && e.oclif.exit === 2) {
    // oclif ends its messages with its own "See more help with --help"; the hint says it once.
    const message = (e.message ?? String(err)).replace(/\n?See more help with --help\s*$/, '').trim()
    return { exitCode: ExitCode.usage, error: { code: 'USAGE', message, hint: ERROR_CODES.USAGE.hint } }
  }
  const message = e && typeof e === 'object' && e.message ? e.message : String(err)
  return { exitCode: ExitCode.internal, error: { code: 'INTERNAL', message, hint: ERROR_CODES.INTERNAL.hint } }
}

/** Node's errno-style error, narrowed. */
export function errnoCode(err: unknown): string | undefined {
  return err && typeof err === 'object' && 'code' in err ? String((err as { code: unknown }).code) : undefined
}
