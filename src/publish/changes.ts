/**
 * Change events: every store write, as the audit record it appends, handed to whoever listens in this
 * process (the registry hook of a command or the pipeline; docs/architecture.md section 1). publish knows
 * nothing of its listeners, and a listener's failure never fails the write that is already made.
 */
import { type AuditRecord } from './audit.js'
import { debugLog } from '../lib/debug.js'

const log = debugLog('store')

export interface StoreChange {
  /** The store root. */
  root: string
  record: AuditRecord
}

type Listener = (change: StoreChange) => void
const listeners = new Set<Listener>()

/** Calls listener after each store write of this process; returns the function that stops it. */
export function onStoreChange(listener: Listener): () => void {
  listeners.add(listener)
  return () => listeners.delete(listener)
}

export function emitStoreChange(change: StoreChange): void {
  for (const l of listeners) {
    try {
      l(change)
    } catch (err) {
      log(`a store change listener failed: ${(err as Error).message}`)
    }
  }
}
