/**
 * What every store operation is given: the store root, the options of the ModelStore that calls it, and
 * where an agent's versions and staging directories live (the layout is drawn in store.ts). Also the name
 * every writer writes and locks under (writerAgent), the lock wrapper of the writers and two lstat/readdir
 * helpers the operations share.
 */
import { lstat, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { errnoCode, UsageError } from '../lib/errors.js'
import { TEMP_SUFFIX } from '../lib/fs.js'
import { agentEntry } from './current.js'
import { acquireLock } from './lock.js'
import { validateName } from './names.js'

export interface StoreContext {
  /** Absolute. */
  readonly root: string
  /** STRICT_MODEL_STORE: every reader throws (exit 6) instead of answering none for a missing store or agent. */
  readonly strict: boolean
  /** Hashing threads (undefined: 2 to 4, by cores). */
  readonly hashThreads?: number
  /** <root>/<agent> */
  agentDir(agent: string): string
  /** <root>/<agent>/versions/<version> */
  versionDir(agent: string, version: string): string
  /** <root>/<agent>/versions/<version>.tmp */
  stagingDir(agent: string, version: string): string
}

/** The context of a store at `root` (absolute); every path helper validates the names it is given. */
export function storeContext(root: string, strict: boolean, hashThreads?: number): StoreContext {
  const agentDir = (agent: string): string => join(root, validateName('agent', agent))
  const versionDir = (agent: string, version: string): string => join(agentDir(agent), 'versions', validateName('version', version))
  const stagingDir = (agent: string, version: string): string => `${versionDir(agent, version)}${TEMP_SUFFIX}`
  return { root, strict, hashThreads, agentDir, versionDir, stagingDir }
}

declare const writable: unique symbol

/**
 * An agent name a writer may write under and take the lock of: never an alias. Only writerAgent makes one,
 * and acquireLock and withLock take nothing else, so no lock is ever taken under an alias's name.
 */
export type WriterAgent = string & { readonly [writable]: true }

/**
 * The name a writer writes and locks under, checked before anything is read, written or locked: an alias
 * (a link in the store root to another agent's directory, see current.ts) is refused (exit 2) naming the
 * agent it leads to, and a broken one is the readers' integrity error (exit 4). An agent that does not
 * exist yet is fine: stage creates it.
 */
export function writerAgent(ctx: StoreContext, agent: string): WriterAgent {
  const entry = agentEntry(ctx.root, agent)
  if (entry.alias !== null) {
    throw new UsageError(`${agent} is an alias of ${entry.alias}: write to ${entry.alias}`, {
      code: 'AGENT_IS_ALIAS',
      hint: `Aliases are read-only names for readers: run the command with ${entry.alias} (${join(ctx.root, agent)} is a link to it).`,
      details: { agent, alias: entry.alias },
    })
  }
  return entry.agent as WriterAgent
}

/** Runs fn holding the agent's lock. */
export async function withLock<T>(ctx: StoreContext, agent: WriterAgent, what: { op: string; version?: string }, fn: () => Promise<T>): Promise<T> {
  const lock = acquireLock(ctx.root, agent, what)
  try {
    return await fn()
  } finally {
    lock.release()
  }
}

export async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path)
    return true
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return false
    throw err
  }
}

export async function readdirIfExists(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort()
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return []
    throw err
  }
}
