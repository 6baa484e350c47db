/**
 * The reader's view of `current`: a version directory to read from, found the way every modelforge reader
 * finds it (publish/current.ts), with the store root and strictness from the environment by default.
 */
import { storeRoot, strictStore } from '../lib/env.js'
import { resolveChannel, type ResolvedChannel } from '../publish/current.js'

export interface ReaderOptions {
  /** The store root (default MODEL_STORE_ROOT, else ./model-store). */
  root?: string
  /** STRICT_MODEL_STORE=1: a missing store, agent or current version is an error (exit 6), never null. */
  strict?: boolean
  /** Another channel than current. */
  channel?: string
}

/** The version `current` (or options.channel) names, or null when there is none and strict is off. */
export function resolveCurrent(agent: string, options: ReaderOptions = {}): ResolvedChannel | null {
  return resolveChannel(options.root ?? storeRoot(), agent, options.channel ?? 'current', { strict: options.strict ?? strictStore() })
}
