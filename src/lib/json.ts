/**
 * Reading a JSON file, or JSON text, with a failure that names the file and what it is. Which error that
 * failure becomes is the caller's decision: a broken config.json is the user's to fix in one place and
 * damage to report in another, so callers pass `onError` to choose the class (hence the exit code), the
 * code and the hint. Without it: NotFoundError JSON_NOT_FOUND for a missing file, UsageError
 * JSON_UNREADABLE for one that cannot be read, UsageError JSON_INVALID for text that is not JSON or not of
 * the expected shape.
 */
import { readFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { errnoCode, IntegrityError, NotFoundError, osFailure } from './errors.js'

export type JsonFailureKind = 'missing' | 'unreadable' | 'syntax' | 'shape'

export interface JsonFailure {
  kind: JsonFailureKind
  /** The file, or the label given to parseJson. */
  where: string
  /** A sentence naming the file and what it is, e.g. "MODELFORGE_CONFIG file /x.json is not valid JSON: ...". */
  message: string
  /** The reason alone: the file system's or the parser's words, or the shape that was expected. */
  reason: string
  cause?: unknown
}

export interface JsonOptions {
  /** What the file is, said before its name in messages: "MODELFORGE_CONFIG file", "labels file". */
  what?: string
  /** The value must be a JSON object (not an array, null or a scalar), or an array. */
  expect?: 'object' | 'array'
  /** The error to throw for a failure (see the module comment for the default). */
  onError?: (failure: JsonFailure) => Error
}

function defaultError(f: JsonFailure): Error {
  if (f.kind === 'missing') return new NotFoundError(f.message, { code: 'JSON_NOT_FOUND', hint: 'Check the path.', cause: f.cause })
  if (f.kind === 'unreadable') return osFailure(f.cause, 'reading a JSON file', f.where)
  return new IntegrityError(f.message, { code: 'JSON_INVALID', hint: 'Fix the file: it must hold valid JSON.', cause: f.cause })
}

function failure(kind: JsonFailureKind, where: string, reason: string, options: JsonOptions, cause?: unknown): Error {
  const name = options.what ? `${options.what} ${where}` : where
  const message = {
    missing: `${name} does not exist`,
    unreadable: `Cannot read ${name}: ${reason}`,
    syntax: `${name} is not valid JSON: ${reason}`,
    shape: `${name} must hold ${reason}`,
  }[kind]
  const f: JsonFailure = { kind, where, message, reason, ...(cause === undefined ? {} : { cause }) }
  return (options.onError ?? defaultError)(f)
}

/** Parses `text` (which came from `where`), checking the shape asked for. */
export function parseJson<T = unknown>(text: string, where: string, options: JsonOptions = {}): T {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (err) {
    throw failure('syntax', where, (err as Error).message, options, err)
  }
  if (options.expect === 'object' && (!value || typeof value !== 'object' || Array.isArray(value))) {
    throw failure('shape', where, 'a JSON object', options)
  }
  if (options.expect === 'array' && !Array.isArray(value)) throw failure('shape', where, 'a JSON array', options)
  return value as T
}

function readFailure(path: string, err: unknown, options: JsonOptions): Error {
  return failure(errnoCode(err) === 'ENOENT' ? 'missing' : 'unreadable', path, (err as Error).message, options, err)
}

export async function readJsonFile<T = unknown>(path: string, options: JsonOptions = {}): Promise<T> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    throw readFailure(path, err, options)
  }
  return parseJson<T>(text, path, options)
}

/** readJsonFile for the few callers that must stay synchronous (configuration read on demand). */
export function readJsonFileSync<T = unknown>(path: string, options: JsonOptions = {}): T {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    throw readFailure(path, err, options)
  }
  return parseJson<T>(text, path, options)
}
