/**
 * The versioned model store (DESIGN.md section 2).
 *
 *   <root>/.modelforge/audit.jsonl, .modelforge/locks/<agent>.lock
 *   <root>/<agent>/versions/<version>/        finalized, immutable, manifest.json inside
 *   <root>/<agent>/versions/<version>.tmp/    staging
 *   <root>/<agent>/current -> versions/<v>    relative symlink, swapped atomically; other channels alike
 *
 * Every writer (finalize, promote, rollback, prune, gc) holds the agent's lock. Readers take no lock: they
 * resolve a channel once and read the version directory it names, which never changes.
 */
import { randomBytes } from 'node:crypto'
import { lstatSync, readdirSync, statSync } from 'node:fs'
import { lstat, mkdir, readdir, rename, rm } from 'node:fs/promises'
import { join, relative, resolve } from 'node:path'
import { ConflictError, errnoCode, IntegrityError, ModelforgeError, NotFoundError, UsageError } from '../lib/errors.js'
import { loadConfig, strictStore } from '../lib/env.js'
import { appendAudit, readAudit } from './audit.js'
import { legacyAsideName, resolveChannel, storeRootExists, type ResolvedChannel } from './current.js'
import { fsyncDir, swapSymlink, TEMP_LINK_PREFIX, TEMP_SUFFIX, writeFileDurable } from '../lib/fs.js'
import { hashFiles } from './hash.js'
import { acquireLock, removeStaleLockTemps, type HeldLock } from './lock.js'
import {
  checksumFilesV1,
  CHECKSUM_ALGORITHM,
  LEGACY_ALGORITHM,
  legacyChecksum,
  MANIFEST_NAME,
  MANIFEST_SCHEMA,
  readManifest,
  type LegacyManifest,
  type Manifest,
  type ManifestFile,
} from './manifest.js'
import { validateName } from './names.js'
import { parseDuration } from './options.js'
import { compareBytes, walkTree } from '../lib/tree.js'

export interface StoreOptions {
  /** STRICT_MODEL_STORE: current() throws instead of returning null. Default: from the environment. */
  strict?: boolean
  /** Hashing threads (default: 2 to 4, by cores). */
  hashThreads?: number
}

/** Optional manifest sections a caller (build-engine) adds at finalize. */
export type ManifestExtras = Pick<Manifest, 'artifacts' | 'source' | 'build' | 'validation' | 'performance'>

export interface FinalizeOptions {
  metadata?: Record<string, unknown>
  /** Point `current` at the new version (default true). */
  publish?: boolean
  manifest?: ManifestExtras
  /** Bytes hashed so far, for progress. */
  onProgress?: (bytesDone: number, bytesTotal: number) => void
}

export interface FinalizeResult {
  agent: string
  version: string
  path: string
  checksum: string
  files: number
  bytes: number
  published: boolean
  /** The version `current` pointed to before (null: none; undefined: not published). */
  previous?: string | null
}

export interface ChannelChange {
  agent: string
  channel: string
  version: string
  previous: string | null
}

export type ProblemKind = 'modified' | 'missing' | 'extra' | 'manifest' | 'checksum' | 'channel'

export interface VerifyProblem {
  kind: ProblemKind
  /** The file concerned, relative to the version directory. */
  path?: string
  message: string
}

export interface VerifyReport {
  agent: string
  /** null for a channel that points nowhere. */
  version: string | null
  path: string
  algorithm: string | null
  ok: boolean
  files: number
  problems: VerifyProblem[]
}

export interface VersionInfo {
  version: string
  path: string
  created_at: string
  /** null when the manifest is missing or malformed. */
  checksum: string | null
  files: number | null
  bytes: number | null
  legacy: boolean
  manifestError?: string
}

export interface AgentSummary {
  agent: string
  current: string | null
  channels: Record<string, string | null>
  versions: VersionInfo[]
}

export interface PruneResult {
  agent: string
  keep: number
  dryRun: boolean
  removed: string[]
  kept: string[]
  protected: string[]
}

export interface GcResult {
  olderThanMs: number
  removed: { path: string; kind: 'temp-link' | 'staging' | 'pruned' | 'lock-temp' }[]
  skipped: { agent: string; reason: string }[]
}

const DEFAULT_GC_MS = 24 * 3600 * 1000
/** prune renames a doomed version to `.prune-<version>-<hex>.tmp` first: hidden, and no valid name can match. */
const PRUNE_PREFIX = '.prune-'

export class ModelStore {
  readonly root: string
  private readonly strict: boolean
  private readonly hashThreads?: number

  constructor(root: string, options: StoreOptions = {}) {
    this.root = resolve(root)
    this.strict = options.strict ?? strictStore()
    this.hashThreads = options.hashThreads
  }

  agentDir(agent: string): string {
    return join(this.root, validateName('agent', agent))
  }

  versionDir(agent: string, version: string): string {
    return join(this.agentDir(agent), 'versions', validateName('version', version))
  }

  stagingDir(agent: string, version: string): string {
    return `${this.versionDir(agent, version)}${TEMP_SUFFIX}`
  }

  // ---------------------------------------------------------------- writers

  /** Creates versions/<version>.tmp and returns its path. Refuses if it or the version exists. */
  async stage(agent: string, version: string): Promise<string> {
    const staging = this.stagingDir(agent, version)
    const final = this.versionDir(agent, version)
    await this.ensureRoot()
    await mkdir(join(this.agentDir(agent), 'versions'), { recursive: true })
    if (await exists(final)) throw versionExists(agent, version, final)
    try {
      await mkdir(staging)
    } catch (err) {
      if (errnoCode(err) === 'EEXIST') {
        throw new ConflictError(`Version ${version} of agent ${agent} is already being staged (${staging} exists)`, {
          code: 'STAGING_EXISTS',
          hint: `Finalize it with \`modelforge store finalize ${agent} ${version}\`, or remove it with \`modelforge store gc --older-than 0\`.`,
          details: { path: staging },
        })
      }
      throw err
    }
    return staging
  }

  /** stage(), then fn(stagingDir); the staging directory is removed when fn throws. */
  async withStaging<T>(agent: string, version: string, fn: (dir: string) => Promise<T>): Promise<T> {
    const dir = await this.stage(agent, version)
    try {
      return await fn(dir)
    } catch (err) {
      await rm(dir, { recursive: true, force: true })
      throw err
    }
  }

  /** Hashes, writes manifest.json, renames the staging dir into place and (by default) publishes it. */
  async finalize(agent: string, version: string, options: FinalizeOptions = {}): Promise<FinalizeResult> {
    const staging = this.stagingDir(agent, version)
    const final = this.versionDir(agent, version)
    const agentDir = this.agentDir(agent)
    // Checked before the lock too, so that refusing leaves no trace (not even the locks directory).
    if (!storeRootExists(this.root) || !(await exists(staging))) {
      if (await exists(final)) throw versionExists(agent, version, final)
      throw notStaged(agent, version, staging)
    }
    if (await exists(final)) throw versionExists(agent, version, final)
    const lock = acquireLock(this.root, agent, { op: 'finalize', version })
    try {
      if (await exists(final)) throw versionExists(agent, version, final)
      let st
      try {
        st = await lstat(staging)
      } catch (err) {
        if (errnoCode(err) === 'ENOENT') throw notStaged(agent, version, staging)
        throw err
      }
      if (!st.isDirectory()) {
        throw new IntegrityError(`${staging} is not a directory`, { code: 'STAGING_INVALID', hint: 'Remove it and stage the version again.', details: { path: staging } })
      }
      const entries = await walkTree(staging).catch((err: unknown) => {
        // An unreadable subdirectory is bad input like an unreadable file (exit 4), not a crash.
        const code = errnoCode(err)
        if (code !== 'EACCES' && code !== 'EPERM') throw err
        const rel = relative(staging, String((err as { path?: unknown }).path ?? staging)) || '.'
        throw new IntegrityError(`Cannot read ${rel}: ${code} (${(err as Error).message})`, {
          code: 'UNREADABLE_FILE',
          hint: 'Make every file and directory of the staged tree readable by this user (check permissions), then finalize again.',
          details: { path: rel, errno: code },
        })
      })
      checkStagedTree(entries)
      const files = entries.filter((e) => e.type === 'file')
      const total = files.reduce((a, f) => a + f.size, 0)
      const hashed = await hashFiles(
        files.map((f) => ({ path: f.abs, rel: f.rel, size: f.size })),
        { fsync: true, threads: this.hashThreads, onProgress: (done) => options.onProgress?.(done, total) },
      )
      const manifestFiles: ManifestFile[] = hashed.map((h) => ({ path: h.rel, size: h.size, sha256: h.sha256 })).sort((a, b) => compareBytes(a.path, b.path))
      const checksum = checksumFilesV1(manifestFiles)
      const manifest: Manifest = {
        version,
        checksum,
        metadata: options.metadata ?? {},
        schema: MANIFEST_SCHEMA,
        agent,
        created_at: new Date().toISOString(),
        checksum_algorithm: CHECKSUM_ALGORITHM,
        files: manifestFiles,
        ...definedOnly(options.manifest ?? {}),
      }
      await writeFileDurable(join(staging, MANIFEST_NAME), JSON.stringify(manifest, null, 2) + '\n')
      for (const e of entries) if (e.type === 'directory') await fsyncDir(e.abs)
      await fsyncDir(staging)
      await rename(staging, final)
      await fsyncDir(join(agentDir, 'versions'))
      // The agent and its versions/ directory may be new since stage; make their entries durable too.
      await fsyncDir(agentDir)
      await fsyncDir(this.root)
      const publish = options.publish ?? true
      let previous: string | null | undefined
      if (publish) {
        previous = this.peekChannel(agent, 'current')
        await this.pointChannel(agent, 'current', version)
      }
      appendAudit(this.root, { op: 'finalize', agent, version, checksum, ...(publish ? { channel: 'current', previous } : {}) })
      return { agent, version, path: final, checksum, files: manifestFiles.length, bytes: manifestFiles.reduce((a, f) => a + f.size, 0), published: publish, ...(publish ? { previous } : {}) }
    } finally {
      lock.release()
    }
  }

  /** Points `channel` (default current) at an existing, finalized version. */
  async promote(agent: string, version: string, channel = 'current'): Promise<ChannelChange> {
    validateName('channel', channel)
    const dir = this.versionDir(agent, version)
    this.requireAgent(agent)
    if (!(await exists(dir))) throw versionNotFound(agent, version)
    await readManifest(dir)
    return this.withLock(agent, { op: 'promote', version }, async () => {
      const previous = this.peekChannel(agent, channel)
      await this.pointChannel(agent, channel, version)
      appendAudit(this.root, { op: 'promote', agent, channel, version, previous })
      return { agent, channel, version, previous }
    })
  }

  /** Points `current` back at the version it pointed to before the last change, from the audit log. */
  async rollback(agent: string): Promise<ChannelChange> {
    this.requireAgent(agent)
    return this.withLock(agent, { op: 'rollback' }, async () => {
      const actual = this.peekChannel(agent, 'current')
      const history = currentHistory(readAudit(this.root, agent))
      while (history.length > 0 && history[history.length - 1] === actual) history.pop()
      const target = history[history.length - 1]
      if (!target) {
        throw new NotFoundError(`The audit log holds no earlier current version of agent ${agent}`, {
          code: 'NO_PREVIOUS',
          hint: `Point current explicitly with \`modelforge store promote ${agent} <version>\` (see \`modelforge store list --agent ${agent}\`).`,
          details: { agent, current: actual },
        })
      }
      const dir = this.versionDir(agent, target)
      if (!(await exists(dir))) {
        throw new NotFoundError(`The previous current version ${target} of agent ${agent} no longer exists (pruned?)`, {
          code: 'PREVIOUS_GONE',
          hint: `Point current explicitly with \`modelforge store promote ${agent} <version>\`.`,
          details: { agent, version: target },
        })
      }
      await readManifest(dir)
      await this.pointChannel(agent, 'current', target)
      appendAudit(this.root, { op: 'rollback', agent, channel: 'current', version: target, previous: actual })
      return { agent, channel: 'current', version: target, previous: actual }
    })
  }

  /** Removes all but the newest `keep` versions, never one that a channel points to. */
  async prune(agent: string, options: { keep?: number; dryRun?: boolean } = {}): Promise<PruneResult> {
    const keep = options.keep ?? loadConfig().store?.keep ?? 3
    if (!Number.isSafeInteger(keep) || keep < 0) {
      throw new UsageError(`--keep must be a whole number >= 0, got ${keep}`, { code: 'INVALID_KEEP', hint: 'For example --keep 3.' })
    }
    this.requireAgent(agent)
    const work = async (): Promise<PruneResult> => {
      const infos = (await this.versionInfos(agent)).reverse()
      const channels = this.channels(agent)
      const protectedSet = new Set(Object.values(channels).filter((v): v is string => Boolean(v)))
      const kept: string[] = []
      const removed: string[] = []
      infos.forEach((info, i) => (i < keep || protectedSet.has(info.version) ? kept : removed).push(info.version))
      if (!options.dryRun && removed.length > 0) {
        const versionsDir = join(this.agentDir(agent), 'versions')
        for (const v of removed) {
          // Renamed first so that a crash mid-delete leaves a .tmp directory for gc, not a damaged version.
          const doomed = join(versionsDir, `${PRUNE_PREFIX}${v}-${randomBytes(4).toString('hex')}${TEMP_SUFFIX}`)
          await rename(join(versionsDir, v), doomed)
          await fsyncDir(versionsDir)
          await rm(doomed, { recursive: true, force: true })
        }
        await fsyncDir(versionsDir)
        appendAudit(this.root, { op: 'prune', agent, removed, kept, keep })
      }
      return { agent, keep, dryRun: Boolean(options.dryRun), removed, kept, protected: [...protectedSet].sort() }
    }
    return options.dryRun ? work() : this.withLock(agent, { op: 'prune' }, work)
  }

  /**
   * Removes temporary links and staging directories untouched for longer than olderThanMs (0: all) of
   * every agent whose lock it can take (a live finalize holds its agent's lock; that agent is skipped).
   */
  async gc(options: { olderThan?: string | number; olderThanMs?: number } = {}): Promise<GcResult> {
    // olderThan as in the CLI ("24h", "30m", "0") or milliseconds; olderThanMs is the same in milliseconds.
    const olderThanMs = typeof options.olderThan === 'string' ? parseDuration(options.olderThan) : options.olderThan ?? options.olderThanMs ?? DEFAULT_GC_MS
    if (!Number.isFinite(olderThanMs) || olderThanMs < 0) {
      throw new UsageError(`older-than must be >= 0, got ${olderThanMs}`, { code: 'INVALID_DURATION', hint: 'For example --older-than 24h.' })
    }
    const result: GcResult = { olderThanMs, removed: [], skipped: [] }
    if (!storeRootExists(this.root)) return result
    const now = Date.now()
    for (const p of removeStaleLockTemps(this.root)) result.removed.push({ path: p, kind: 'lock-temp' })
    for (const agent of await this.agents()) {
      let lock: HeldLock
      try {
        lock = acquireLock(this.root, agent, { op: 'gc' })
      } catch (err) {
        if (err instanceof ConflictError) {
          result.skipped.push({ agent, reason: err.message })
          continue
        }
        throw err
      }
      try {
        const agentDir = this.agentDir(agent)
        const removedHere: string[] = []
        for (const name of await readdir(agentDir)) {
          if (!name.startsWith(TEMP_LINK_PREFIX) || !name.endsWith(TEMP_SUFFIX)) continue
          const p = join(agentDir, name)
          if (!(await lstat(p)).isSymbolicLink()) continue
          await rm(p, { force: true })
          result.removed.push({ path: p, kind: 'temp-link' })
          removedHere.push(p)
        }
        const versionsDir = join(agentDir, 'versions')
        for (const name of await readdirIfExists(versionsDir)) {
          if (!name.endsWith(TEMP_SUFFIX)) continue
          const p = join(versionsDir, name)
          // A prune leftover is a version already being deleted (its files are old, so age says nothing):
          // always removed. A staging dir only once nothing in it changed for olderThanMs.
          const doomed = name.startsWith(PRUNE_PREFIX)
          if (!doomed && olderThanMs > 0 && now - (await newestMtime(p)) < olderThanMs) continue
          await rm(p, { recursive: true, force: true })
          result.removed.push({ path: p, kind: doomed ? 'pruned' : 'staging' })
          removedHere.push(p)
        }
        if (removedHere.length > 0) {
          await fsyncDir(agentDir)
          if (await exists(versionsDir)) await fsyncDir(versionsDir)
          appendAudit(this.root, { op: 'gc', agent, removed: removedHere })
        }
      } finally {
        lock.release()
      }
    }
    return result
  }

  // ---------------------------------------------------------------- readers

  /** Absolute path of the current version of `agent`, or null (STRICT_MODEL_STORE: throws instead). */
  current(agent: string): string | null {
    return resolveChannel(this.root, agent, 'current', { strict: this.strict })?.path ?? null
  }

  /** Where a channel points, with its version name and layout. */
  resolve(agent: string, channel = 'current'): ResolvedChannel | null {
    return resolveChannel(this.root, agent, channel, { strict: this.strict })
  }

  /** Agents of the store, sorted. An absent store has none. */
  async agents(): Promise<string[]> {
    if (!storeRootExists(this.root)) return []
    const out: string[] = []
    for (const d of await readdir(this.root, { withFileTypes: true })) {
      if (d.isDirectory() && validName('agent', d.name)) out.push(d.name)
    }
    return out.sort()
  }

  /** Finalized versions of `agent`, oldest first. */
  async versions(agent: string): Promise<string[]> {
    return (await this.versionInfos(agent)).map((v) => v.version)
  }

  /** Finalized versions with their manifest facts, oldest first (by created_at, else directory mtime). */
  async versionInfos(agent: string): Promise<VersionInfo[]> {
    const versionsDir = join(this.agentDir(agent), 'versions')
    const out: VersionInfo[] = []
    for (const name of await readdirIfExists(versionsDir)) {
      if (!validName('version', name)) continue
      const path = join(versionsDir, name)
      const st = await lstat(path)
      if (!st.isDirectory()) continue
      const info: VersionInfo = { version: name, path, created_at: st.mtime.toISOString(), checksum: null, files: null, bytes: null, legacy: false }
      try {
        const parsed = await readManifest(path)
        info.checksum = parsed.manifest.checksum
        if (parsed.kind === 'v1') {
          info.created_at = parsed.manifest.created_at
          info.files = parsed.manifest.files.length
          info.bytes = parsed.manifest.files.reduce((a, f) => a + f.size, 0)
        } else info.legacy = true
      } catch (err) {
        if (!(err instanceof ModelforgeError)) throw err
        info.manifestError = err.message
      }
      out.push(info)
    }
    return out.sort((a, b) => Date.parse(a.created_at) - Date.parse(b.created_at) || (a.version < b.version ? -1 : a.version > b.version ? 1 : 0))
  }

  /** Channel name -> version name (null for a Python-made `current` directory without a version). */
  channels(agent: string): Record<string, string | null> {
    const out: Record<string, string | null> = {}
    for (const name of channelNames(this.agentDir(agent))) {
      try {
        const r = resolveChannel(this.root, agent, name, { strict: false })
        if (r) out[name] = r.version
      } catch (err) {
        if (!(err instanceof IntegrityError)) throw err
        out[name] = null
      }
    }
    return out
  }

  /** Everything `store list` shows. */
  async list(agent?: string): Promise<AgentSummary[]> {
    const agents = agent ? [validateName('agent', agent)] : await this.agents()
    if (agent) this.requireAgent(agent)
    const out: AgentSummary[] = []
    for (const a of agents) {
      const channels = this.channels(a)
      out.push({ agent: a, current: channels.current ?? null, channels, versions: await this.versionInfos(a) })
    }
    return out
  }

  /** The manifest of a version (default: the current one). Missing or malformed: IntegrityError. */
  async manifest(agent: string, version?: string): Promise<Manifest | LegacyManifest> {
    const dir = await this.locate(agent, version)
    return (await readManifest(dir)).manifest
  }

  /**
   * Checks versions against their manifests: every version of every agent, of one agent, or one version.
   * Never throws for a damaged version: each report lists its problems (see assertVerified).
   */
  async verify(agent?: string, version?: string): Promise<VerifyReport[]> {
    if (version !== undefined) {
      if (agent === undefined) throw new UsageError('A version needs an agent', { code: 'USAGE', hint: 'store verify <agent> <version>' })
      const dir = await this.locate(agent, version)
      return [await this.verifyDir(agent, version, dir)]
    }
    if (agent !== undefined) this.requireAgent(agent)
    if (agent === undefined && !storeRootExists(this.root)) {
      throw new NotFoundError(`Model store ${this.root} does not exist`, { code: 'STORE_NOT_FOUND', hint: 'Check --store or MODEL_STORE_ROOT.', details: { root: this.root } })
    }
    const reports: VerifyReport[] = []
    for (const a of agent ? [agent] : await this.agents()) {
      for (const v of await this.versions(a)) reports.push(await this.verifyDir(a, v, this.versionDir(a, v)))
      for (const name of channelNames(this.agentDir(a))) {
        try {
          const r = resolveChannel(this.root, a, name, { strict: false })
          // A Python-made real `current` directory is a copy: check it too.
          if (r?.layout === 'directory') reports.push(await this.verifyDir(a, r.version, r.path))
        } catch (err) {
          if (!(err instanceof IntegrityError)) throw err
          reports.push({ agent: a, version: null, path: join(this.agentDir(a), name), algorithm: null, ok: false, files: 0, problems: [{ kind: 'channel', message: err.message }] })
        }
      }
    }
    return reports
  }

  // ---------------------------------------------------------------- internals

  private async verifyDir(agent: string, version: string | null, dir: string): Promise<VerifyReport> {
    const report: VerifyReport = { agent, version, path: dir, algorithm: null, ok: false, files: 0, problems: [] }
    let parsed
    try {
      parsed = await readManifest(dir)
    } catch (err) {
      if (!(err instanceof IntegrityError)) throw err
      report.problems.push({ kind: 'manifest', path: MANIFEST_NAME, message: err.message })
      return report
    }
    const m = parsed.manifest
    const dirName = dir.split('/').pop()
    if (version !== null && dirName !== 'current' && m.version !== version) {
      report.problems.push({ kind: 'manifest', path: MANIFEST_NAME, message: `manifest names version ${m.version}, directory is ${version}` })
    }
    const entries = (await walkTree(dir)).filter((e) => e.type !== 'directory')
    for (const e of entries) {
      if (e.type !== 'file') report.problems.push({ kind: 'extra', path: e.rel, message: `extra ${e.type}: ${e.rel}` })
    }
    if (parsed.kind === 'legacy') {
      report.algorithm = LEGACY_ALGORITHM
      report.files = entries.filter((e) => e.type === 'file' && e.rel.split('/').pop() !== MANIFEST_NAME).length
      if (report.problems.length === 0) {
        const actual = await legacyChecksum(dir)
        if (actual !== m.checksum) {
          report.problems.push({ kind: 'checksum', message: `checksum mismatch: manifest ${m.checksum}, files ${actual} (a Python-made manifest lists no files, so the changed file cannot be named)` })
        }
      }
      report.ok = report.problems.length === 0
      return report
    }
    const manifest = m as Manifest
    if (manifest.agent !== agent) {
      // A version copied from another agent verifies file by file, but is not what this agent published.
      report.problems.push({ kind: 'manifest', path: MANIFEST_NAME, message: `manifest names agent ${manifest.agent}, directory is under ${agent}` })
    }
    report.algorithm = manifest.checksum_algorithm
    report.files = manifest.files.length
    if (checksumFilesV1(manifest.files) !== manifest.checksum) {
      report.problems.push({ kind: 'checksum', path: MANIFEST_NAME, message: 'manifest checksum does not match its own file list (manifest.json was edited)' })
    }
    const onDisk = new Map(entries.filter((e) => e.type === 'file' && e.rel !== MANIFEST_NAME).map((e) => [e.rel, e]))
    const listed = new Map(manifest.files.map((f) => [f.path, f]))
    for (const f of manifest.files) if (!onDisk.has(f.path)) report.problems.push({ kind: 'missing', path: f.path, message: `missing: ${f.path}` })
    for (const rel of onDisk.keys()) if (!listed.has(rel)) report.problems.push({ kind: 'extra', path: rel, message: `extra file: ${rel}` })
    const toHash = [...onDisk.values()].filter((e) => listed.has(e.rel))
    const hashed = await hashFiles(toHash.map((e) => ({ path: e.abs, rel: e.rel, size: e.size })), { threads: this.hashThreads })
    for (const h of hashed) {
      const f = listed.get(h.rel)!
      if (h.size !== f.size || h.sha256 !== f.sha256) report.problems.push({ kind: 'modified', path: h.rel, message: `modified: ${h.rel}` })
    }
    report.problems.sort((a, b) => compareBytes(a.path ?? '', b.path ?? ''))
    report.ok = report.problems.length === 0
    return report
  }

  /** The directory of a version, or of the current one when version is undefined. */
  private async locate(agent: string, version?: string): Promise<string> {
    this.requireAgent(agent)
    if (version === undefined) {
      const r = resolveChannel(this.root, agent, 'current', { strict: true })
      return r!.path
    }
    const dir = this.versionDir(agent, version)
    if (!(await exists(dir))) throw versionNotFound(agent, version)
    return dir
  }

  private requireAgent(agent: string): void {
    const dir = this.agentDir(agent)
    if (!storeRootExists(this.root)) {
      throw new NotFoundError(`Model store ${this.root} does not exist`, { code: 'STORE_NOT_FOUND', hint: 'Check --store or MODEL_STORE_ROOT.', details: { root: this.root } })
    }
    let ok = false
    try {
      ok = statSync(dir).isDirectory()
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT' && errnoCode(err) !== 'ENOTDIR') throw err
    }
    if (!ok) {
      throw new NotFoundError(`Agent ${agent} does not exist in store ${this.root}`, { code: 'AGENT_NOT_FOUND', hint: 'List the agents with `modelforge store list`.', details: { agent } })
    }
  }

  private async ensureRoot(): Promise<void> {
    if (!storeRootExists(this.root)) await mkdir(this.root, { recursive: true })
    // The locks directory is made here, by stage, so that a refused finalize leaves no trace at all.
    await mkdir(join(this.root, '.modelforge', 'locks'), { recursive: true })
  }

  /** The version a channel names now, or null (damaged channels count as none). */
  private peekChannel(agent: string, channel: string): string | null {
    try {
      return resolveChannel(this.root, agent, channel, { strict: false })?.version ?? null
    } catch (err) {
      if (err instanceof IntegrityError) return null
      throw err
    }
  }

  /** Swaps the channel link to versions/<version>. Caller holds the lock. */
  private async pointChannel(agent: string, channel: string, version: string): Promise<void> {
    const agentDir = this.agentDir(agent)
    const linkPath = join(agentDir, channel)
    const st = await lstat(linkPath).catch((err) => {
      if (errnoCode(err) === 'ENOENT') return null
      throw err
    })
    if (st && !st.isSymbolicLink() && !(st.isDirectory() && channel === 'current')) {
      // Never replace (rename over) or move something that is not ours: a file or directory with that name.
      throw new IntegrityError(`${linkPath} is not a symlink, so it is no channel modelforge can move`, {
        code: 'CHANNEL_INVALID',
        hint: `Move it out of the agent directory, or choose another channel name.`,
        details: { path: linkPath },
      })
    }
    if (st?.isDirectory()) {
      // A Python-made store kept `current` as a real directory, which rename() cannot replace by a link:
      // it is moved aside (kept, never deleted) and the link put in its place.
      const aside = join(agentDir, legacyAsideName(channel, Date.now()))
      await rename(linkPath, aside)
      // Durable before the link goes in: readers fall back to the aside directory while `current` is absent.
      await fsyncDir(agentDir)
    }
    await swapSymlink(agentDir, channel, `versions/${version}`)
  }

  private async withLock<T>(agent: string, what: { op: string; version?: string }, fn: () => Promise<T>): Promise<T> {
    const lock = acquireLock(this.root, agent, what)
    try {
      return await fn()
    } finally {
      lock.release()
    }
  }
}

/** Throws an IntegrityError (exit 4) naming every problem of every failed report. */
export function assertVerified(reports: VerifyReport[]): void {
  const failed = reports.filter((r) => !r.ok)
  if (failed.length === 0) return
  const lines = failed.map((r) => `${r.agent}/${r.version ?? '?'}: ${r.problems.map((p) => p.message).join('; ')}`)
  throw new IntegrityError(`Verification failed for ${failed.length} version(s):\n${lines.join('\n')}`, {
    code: 'VERIFY_FAILED',
    hint: 'A finalized version must never change: restore the named files from a backup, or publish a new version and prune the damaged one.',
    details: { reports: failed },
  })
}

/**
 * The sequence of `current` versions the audit log records, after undoing rollbacks (the last entry is the
 * version current names now). Each record also holds the version current named just before it (`previous`,
 * read from the link itself): when that differs from the stack's top, a change was made whose audit line a
 * crash lost (the line is written after the link swap), and the version it left is put back in its place.
 */
export function currentHistory(records: { op: string; channel?: string; version?: string; previous?: string | null }[]): string[] {
  const stack: string[] = []
  const push = (v: string): void => {
    if (stack[stack.length - 1] !== v) stack.push(v)
  }
  for (const r of records) {
    if (r.channel !== 'current' || !r.version) continue
    if (typeof r.previous === 'string') push(r.previous)
    if (r.op === 'rollback') stack.pop()
    push(r.version)
  }
  return stack
}

function checkStagedTree(entries: { rel: string; type: string }[]): void {
  const special = entries.filter((e) => e.type !== 'file' && e.type !== 'directory')
  if (special.length > 0) {
    throw new IntegrityError(`The staged tree holds ${special.map((e) => `a ${e.type} (${e.rel})`).join(', ')}; only regular files and directories can be published`, {
      code: 'UNSUPPORTED_FILE_TYPE',
      hint: 'Replace symlinks by copies of the files and remove devices, sockets and fifos, then finalize again.',
      details: { entries: special },
    })
  }
  const badNames = entries.filter((e) => /[\n\r\\]/.test(e.rel))
  if (badNames.length > 0) {
    throw new IntegrityError(`File names holding a newline, carriage return or backslash cannot be published: ${badNames.map((e) => JSON.stringify(e.rel)).join(', ')}`, {
      code: 'BAD_FILE_NAME',
      hint: 'Rename those files: sha256sum escapes such names, so the checksum could not be checked with standard tools.',
      details: { paths: badNames.map((e) => e.rel) },
    })
  }
  if (entries.some((e) => e.rel === MANIFEST_NAME)) {
    throw new IntegrityError('The staged tree already holds a top-level manifest.json, which finalize writes', {
      code: 'MANIFEST_RESERVED',
      hint: 'Remove or rename it; pass caller metadata with --metadata or --metadata-file instead.',
      details: { path: MANIFEST_NAME },
    })
  }
}

function definedOnly(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined))
}

function validName(kind: 'agent' | 'version', name: string): boolean {
  try {
    validateName(kind, name)
    return true
  } catch {
    return false
  }
}

function channelNames(agentDir: string): string[] {
  let names: string[]
  try {
    names = readdirSync(agentDir).sort()
  } catch {
    return []
  }
  // A moved-aside `current.legacy-<ms>` directory is no channel (only links and a real `current` are), but a
  // link that happens to carry such a name is one, and prune must see it.
  return names.filter((n) => n !== 'versions' && !n.endsWith(TEMP_SUFFIX) && isLinkOrDir(join(agentDir, n), n))
}


function isLinkOrDir(path: string, name: string): boolean {
  if (!validName('agent', name)) return false
  const st = lstatSync(path)
  return st.isSymbolicLink() || (name === 'current' && st.isDirectory())
}


async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path)
    return true
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return false
    throw err
  }
}

async function readdirIfExists(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort()
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return []
    throw err
  }
}

async function newestMtime(path: string): Promise<number> {
  const st = await lstat(path)
  let newest = st.mtimeMs
  if (st.isDirectory()) {
    for (const e of await walkTree(path)) newest = Math.max(newest, e.mtimeMs)
  }
  return newest
}


function versionExists(agent: string, version: string, path: string): ConflictError {
  return new ConflictError(`Version ${version} of agent ${agent} already exists`, {
    code: 'VERSION_EXISTS',
    hint: 'Finalized versions are immutable: choose a new version name.',
    details: { agent, version, path },
  })
}

function versionNotFound(agent: string, version: string): NotFoundError {
  return new NotFoundError(`Version ${version} of agent ${agent} does not exist`, {
    code: 'VERSION_NOT_FOUND',
    hint: `List the versions with \`modelforge store list --agent ${agent}\`.`,
    details: { agent, version },
  })
}

function notStaged(agent: string, version: string, staging: string): NotFoundError {
  return new NotFoundError(`Version ${version} of agent ${agent} is not staged (${staging} does not exist)`, {
    code: 'NOT_STAGED',
    hint: `Stage it first: \`modelforge store stage ${agent} ${version}\` prints the directory to fill.`,
    details: { agent, version, path: staging },
  })
}
