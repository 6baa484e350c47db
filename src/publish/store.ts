/**
 * The versioned model store (docs/architecture.md).
 *
 *   <root>/.modelforge/audit.jsonl, .modelforge/locks/<agent>.lock
 *   <root>/<agent>/versions/<version>/        finalized, immutable, manifest.json inside
 *   <root>/<agent>/versions/<version>.tmp/    staging
 *   <root>/<agent>/current -> versions/<v>    relative symlink, swapped atomically; other channels alike
 *
 * Every writer (finalize, promote, rollback, prune, delete, gc) holds the agent's lock. Readers take no lock:
 * they resolve a channel once and read the version directory it names, which never changes. An agent entry
 * that is a link to another agent is an alias: readers follow it, writers refuse it (store-context.ts).
 *
 * ModelStore is the facade; each operation lives in a module of its own: stage.ts, finalize.ts,
 * channels.ts (promote, rollback), gc.ts (prune, gc), delete.ts, import.ts (stage, copy, finalize, publish
 * in one call), verify.ts, readers.ts, history.ts (the audit replay rollback uses), init.ts (a root for
 * trainers and agents in separate accounts), with store-context.ts, store-errors.ts, discard.ts and
 * permissions.ts (the modes of a finalized version) shared by them.
 */
import { resolve as resolvePath } from 'node:path'
import { strictStore } from '../lib/env.js'
import { promote, rollback, type ChannelChange } from './channels.js'
import { agentEntry, type ResolvedChannel } from './current.js'
import { deleteVersion, type DeleteOptions, type DeleteResult } from './delete.js'
import { finalize, type FinalizeOptions, type FinalizeResult } from './finalize.js'
import { evict, gc, prune, type EvictResult, type GcResult, type PruneResult } from './gc.js'
import { importVersion, type ImportOptions, type ImportResult } from './import.js'
import { initStore, type InitOptions, type InitResult } from './init.js'
import type { LegacyManifest, Manifest } from './manifest.js'
import { agentFingerprint, channelVersions, current, list, listAgents, manifest, resolve, versionInfos, versionManifests, versions, type AgentSummary, type VersionInfo, type VersionManifest } from './readers.js'
import { stage, withStaging } from './stage.js'
import { storeContext, type StoreContext } from './store-context.js'
import { verify, type VerifyReport } from './verify.js'

export type { ChannelChange } from './channels.js'
export type { DeleteOptions, DeleteResult } from './delete.js'
export type { FinalizeOptions, FinalizeResult, ManifestExtras } from './finalize.js'
export type { EvictResult, GcResult, PruneResult } from './gc.js'
export type { ImportOptions, ImportResult } from './import.js'
export type { InitChange, InitOptions, InitResult } from './init.js'
export type { AgentSummary, VersionInfo, VersionManifest } from './readers.js'
export type { ProblemKind, VerifyProblem, VerifyReport } from './verify.js'
export { currentHistory } from './history.js'
export { assertVerified } from './verify.js'

export interface StoreOptions {
  /**
   * STRICT_MODEL_STORE: readers throw (exit 6) instead of answering none for a missing store, agent or
   * current version. Default: from the environment.
   */
  strict?: boolean
  /** Hashing threads (default: 2 to 4, by cores). */
  hashThreads?: number
}

export class ModelStore {
  readonly root: string
  private readonly ctx: StoreContext

  constructor(root: string, options: StoreOptions = {}) {
    this.root = resolvePath(root)
    this.ctx = storeContext(this.root, options.strict ?? strictStore(), options.hashThreads)
  }

  agentDir(agent: string): string {
    return this.ctx.agentDir(agent)
  }

  versionDir(agent: string, version: string): string {
    return this.ctx.versionDir(agent, version)
  }

  stagingDir(agent: string, version: string): string {
    return this.ctx.stagingDir(agent, version)
  }

  // ---------------------------------------------------------------- writers

  /**
   * Creates the store root, or adopts it, for trainers of one group (options.group, default the root's
   * group): its own directories get the group, the setgid bit and group rwx, the audit log group rw, and
   * what the agents hold the group. Idempotent; the result lists what changed.
   */
  init(options: InitOptions = {}): Promise<InitResult> {
    return initStore(this.ctx, options)
  }

  /** Creates versions/<version>.tmp and returns its path. Refuses if it or the version exists. */
  stage(agent: string, version: string): Promise<string> {
    return stage(this.ctx, agent, version)
  }

  /** stage(), then fn(stagingDir); the staging directory is removed when fn throws. */
  withStaging<T>(agent: string, version: string, fn: (dir: string) => Promise<T>): Promise<T> {
    return withStaging(this.ctx, agent, version, fn)
  }

  /** Hashes, writes manifest.json, renames the staging dir into place and (by default) publishes it. */
  finalize(agent: string, version: string, options: FinalizeOptions = {}): Promise<FinalizeResult> {
    return finalize(this.ctx, agent, version, options)
  }

  /**
   * A directory (the version's tree) or files (its top level) become a finalized version, published to
   * current or options.channel unless publish is false. All or nothing: a failure leaves no version and no
   * staging directory. options.link hard-links the files where the OS allows it.
   */
  import(agent: string, version: string, sources: string | string[], options: ImportOptions = {}): Promise<ImportResult> {
    return importVersion(this.ctx, agent, version, typeof sources === 'string' ? [sources] : sources, options)
  }

  /** Points `channel` (default current) at an existing, finalized version. */
  promote(agent: string, version: string, channel = 'current'): Promise<ChannelChange> {
    return promote(this.ctx, agent, version, channel)
  }

  /** Points `current` back at the version it pointed to before the last change, from the audit log. */
  rollback(agent: string): Promise<ChannelChange> {
    return rollback(this.ctx, agent)
  }

  /** Removes all but the newest `keep` versions, never one that a channel points to. */
  prune(agent: string, options: { keep?: number; dryRun?: boolean } = {}): Promise<PruneResult> {
    return prune(this.ctx, agent, options)
  }

  /** A node cache's bound: versions no channel points to, least recently used first, until the store holds maxBytes. */
  evict(options: { maxBytes: number; dryRun?: boolean; spare?: { agent: string; version: string }[] }): Promise<EvictResult> {
    return evict(this.ctx, options)
  }

  /** Removes one finalized version that no channel points to (ConflictError VERSION_IN_USE otherwise). */
  delete(agent: string, version: string, options: DeleteOptions = {}): Promise<DeleteResult> {
    return deleteVersion(this.ctx, agent, version, options)
  }

  /**
   * Removes temporary links and staging directories in which nothing changed (by ctime) for longer than olderThanMs (0: all) of
   * every agent whose lock it can take (a live finalize holds its agent's lock; that agent is skipped).
   */
  gc(options: { olderThan?: string | number; olderThanMs?: number } = {}): Promise<GcResult> {
    return gc(this.ctx, options)
  }

  // ---------------------------------------------------------------- readers

  /** Absolute path of the current version of `agent`, or null (STRICT_MODEL_STORE: throws instead). */
  current(agent: string): string | null {
    return current(this.ctx, agent)
  }

  /** Where a channel points, with its version name and layout. */
  resolve(agent: string, channel = 'current'): ResolvedChannel | null {
    return resolve(this.ctx, agent, channel)
  }

  /**
   * The agent `agent` is an alias of (its entry is a link to that agent's directory), or null for an agent
   * or a name that is not in the store. A broken alias is an IntegrityError (exit 4). Readers follow an
   * alias; writers refuse it (exit 2, AGENT_IS_ALIAS).
   */
  aliasOf(agent: string): string | null {
    return agentEntry(this.root, agent).alias
  }

  /** Agents of the store (not its aliases), sorted. An absent store has none (strict: exit 6). */
  agents(): Promise<string[]> {
    return listAgents(this.ctx)
  }

  /** Finalized versions of `agent`, oldest first. */
  versions(agent: string): Promise<string[]> {
    return versions(this.ctx, agent)
  }

  /** Finalized versions with their manifest facts, oldest first (by created_at, else directory mtime). */
  versionInfos(agent: string): Promise<VersionInfo[]> {
    return versionInfos(this.ctx, agent)
  }

  /** versionInfos with each manifest as read (the model registry's sync reads each one once). */
  versionManifests(agent: string): Promise<VersionManifest[]> {
    return versionManifests(this.ctx, agent)
  }

  /** A digest of the agent's versions and channels that changes whenever what they report does. */
  fingerprint(agent: string): string {
    return agentFingerprint(this.ctx, agent)
  }

  /** Channel name -> version name (null for a Python-made `current` directory without a version). */
  channels(agent: string): Record<string, string | null> {
    return channelVersions(this.ctx, agent)
  }

  /** Everything `store list` shows. */
  list(agent?: string): Promise<AgentSummary[]> {
    return list(this.ctx, agent)
  }

  /** The manifest of a version (default: the current one). Missing or malformed: IntegrityError. */
  manifest(agent: string, version?: string): Promise<Manifest | LegacyManifest> {
    return manifest(this.ctx, agent, version)
  }

  /**
   * Checks versions against their manifests: every version of every agent, of one agent, or one version.
   * Never throws for a damaged version: each report lists its problems (see assertVerified).
   */
  verify(agent?: string, version?: string): Promise<VerifyReport[]> {
    return verify(this.ctx, agent, version)
  }
}
