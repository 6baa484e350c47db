/**
 * The store's readers. They take no lock: they resolve a channel once and read the version directory it
 * names, which never changes (docs/architecture.md). Given an alias (an agent entry that links to another
 * agent, current.ts agentEntry), they read the agent it leads to and say so.
 */
import { createHash } from 'node:crypto'
import { lstatSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { errnoCode, IntegrityError, ModelforgeError, NotFoundError } from '../lib/errors.js'
import { agentEntry, resolveChannel, storeRootExists, type ResolvedChannel } from './current.js'
import { TEMP_SUFFIX } from '../lib/fs.js'
import { MANIFEST_NAME, readManifest, type LegacyManifest, type Manifest, type ParsedManifest } from './manifest.js'
import { validateName } from './names.js'
import { exists, readdirIfExists, type StoreContext } from './store-context.js'
import { storeNotFound, versionNotFound } from './store-errors.js'

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
  /** The entry's name: an agent, or an alias. */
  agent: string
  /** When `agent` is an alias: the agent it leads to, whose current, channels and versions these are. */
  alias?: string
  /** Why an entry that is a link leads to no agent of the store (a broken alias); it has nothing else then. */
  aliasProblem?: string
  current: string | null
  channels: Record<string, string | null>
  versions: VersionInfo[]
}

/** Absolute path of the current version of `agent`, or null (STRICT_MODEL_STORE: throws instead). */
export function current(ctx: StoreContext, agent: string): string | null {
  return resolveChannel(ctx.root, agent, 'current', { strict: ctx.strict })?.path ?? null
}

/** Where a channel points, with its version name and layout. */
export function resolve(ctx: StoreContext, agent: string, channel = 'current'): ResolvedChannel | null {
  return resolveChannel(ctx.root, agent, channel, { strict: ctx.strict })
}

/**
 * The agent a reader reads under `agent`: the agent itself, or the one its alias leads to. A broken alias
 * is an IntegrityError (exit 4).
 */
export function readAgent(ctx: StoreContext, agent: string): string {
  return agentEntry(ctx.root, agent).agent
}

export interface AliasEntry {
  name: string
  /** The agent it leads to; null for a broken alias (see problem). */
  alias: string | null
  problem?: string
}

/** The aliases of the store (links in its root with an agent's name), sorted, each with its agent or problem. */
export async function listAliases(ctx: StoreContext): Promise<AliasEntry[]> {
  if (!storeRootExists(ctx.root)) return []
  const out: AliasEntry[] = []
  for (const d of await readdir(ctx.root, { withFileTypes: true })) {
    if (!d.isSymbolicLink() || !validName('agent', d.name)) continue
    try {
      out.push({ name: d.name, alias: agentEntry(ctx.root, d.name).alias })
    } catch (err) {
      if (!(err instanceof IntegrityError)) throw err
      out.push({ name: d.name, alias: null, problem: err.message })
    }
  }
  return out.sort((a, b) => byName(a.name, b.name))
}

function byName(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

/** Agents of the store (their directories; aliases are not among them), sorted. An absent store has none (STRICT_MODEL_STORE: exit 6 instead). */
export async function listAgents(ctx: StoreContext): Promise<string[]> {
  if (!storeRootExists(ctx.root)) {
    if (ctx.strict) throw storeNotFound(ctx.root)
    return []
  }
  const out: string[] = []
  for (const d of await readdir(ctx.root, { withFileTypes: true })) {
    if (d.isDirectory() && validName('agent', d.name)) out.push(d.name)
  }
  return out.sort()
}

/** Finalized versions of `agent`, oldest first. */
export async function versions(ctx: StoreContext, agent: string): Promise<string[]> {
  return (await versionInfos(ctx, agent)).map((v) => v.version)
}

/** Finalized versions with their manifest facts, oldest first (by created_at, else directory mtime). */
export async function versionInfos(ctx: StoreContext, name: string): Promise<VersionInfo[]> {
  return (await versionManifests(ctx, name)).map((v) => v.info)
}

export interface VersionManifest {
  info: VersionInfo
  /** The manifest as read for info (absent when info.manifestError says why it could not be). */
  parsed?: ParsedManifest
}

/** versionInfos with each manifest as it was read, for a caller that needs the whole of it (the registry's sync). */
export async function versionManifests(ctx: StoreContext, name: string): Promise<VersionManifest[]> {
  const agent = readAgent(ctx, name)
  strictAgent(ctx, agent)
  const versionsDir = join(ctx.agentDir(agent), 'versions')
  const out: VersionManifest[] = []
  for (const name of await readdirIfExists(versionsDir)) {
    if (!validName('version', name)) continue
    const path = join(versionsDir, name)
    const st = lstatSync(path) // sync for the reason readManifest reads synchronously
    if (!st.isDirectory()) continue
    const info: VersionInfo = { version: name, path, created_at: st.mtime.toISOString(), checksum: null, files: null, bytes: null, legacy: false }
    let read: ParsedManifest | undefined
    try {
      const parsed = await readManifest(path)
      read = parsed
      info.checksum = parsed.manifest.checksum
      // A directory copied in by hand under another name is not the version its manifest describes.
      if (parsed.manifest.version !== name) info.manifestError = `manifest names version ${parsed.manifest.version}, directory is ${name}`
      else if (parsed.kind === 'v1' && parsed.manifest.agent !== agent) info.manifestError = `manifest names agent ${parsed.manifest.agent}, directory is under ${agent}`
      if (parsed.kind === 'v1') {
        info.created_at = parsed.manifest.created_at
        info.files = parsed.manifest.files.length
        info.bytes = parsed.manifest.files.reduce((a, f) => a + f.size, 0)
      } else info.legacy = true
    } catch (err) {
      // A manifest the OS will not let us read (EACCES, EISDIR, EIO) is this version's problem, not the
      // listing's: the other versions are still listed (and verified, and judged by prune).
      if (err instanceof ModelforgeError) info.manifestError = err.message
      else if (errnoCode(err)?.startsWith('E')) info.manifestError = `cannot read manifest.json: ${(err as Error).message}`
      else throw err
    }
    out.push(info.manifestError === undefined && read ? { info, parsed: read } : { info })
  }
  return out.sort(({ info: a }, { info: b }) => Date.parse(a.created_at) - Date.parse(b.created_at) || (a.version < b.version ? -1 : a.version > b.version ? 1 : 0))
}

/**
 * A digest of everything versionManifests and channelVersions report for an agent, from the bytes alone:
 * each version directory's name and mtime, its manifest.json as stored (or why it cannot be read), and
 * where each channel points. Nothing is parsed, so it costs the reads and no more; an indexer (the
 * registry's sync) skips an agent whose fingerprint it has already indexed. A finalized version's files
 * never change, and their checksums are in the manifest, so the manifest stands for them.
 */
export function agentFingerprint(ctx: StoreContext, name: string): string {
  const agent = readAgent(ctx, name)
  strictAgent(ctx, agent)
  const hash = createHash('sha256')
  const versionsDir = join(ctx.agentDir(agent), 'versions')
  let names: string[] = []
  try {
    names = readdirSync(versionsDir).sort()
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw err
  }
  for (const version of names) {
    if (!validName('version', version)) continue
    const path = join(versionsDir, version)
    const st = lstatSync(path)
    if (!st.isDirectory()) continue
    hash.update(`\0v ${version} ${st.mtimeMs}\0`)
    try {
      hash.update(readFileSync(join(path, MANIFEST_NAME)))
    } catch (err) {
      hash.update(`unreadable ${errnoCode(err) ?? String(err)}`)
    }
  }
  for (const c of channelStates(ctx, agent)) hash.update(`\0c ${c.channel} ${c.version ?? ''} ${c.problem ?? ''}`)
  return hash.digest('hex')
}

/** Channel name -> version name (null for a Python-made `current` directory without a version). */
export function channelVersions(ctx: StoreContext, agent: string): Record<string, string | null> {
  return Object.fromEntries(channelStates(ctx, agent).map((c) => [c.channel, c.version]))
}

export interface ChannelState {
  channel: string
  /** null: a Python-made `current` directory without a version, or a broken channel (see problem). */
  version: string | null
  /** Why the channel names no version: dangling, outside the agent's versions/, not a link. */
  problem?: string
}

/** Every channel of the agent and the version it names, or why it names none. */
export function channelStates(ctx: StoreContext, name: string): ChannelState[] {
  const agent = readAgent(ctx, name)
  strictAgent(ctx, agent)
  const out: ChannelState[] = []
  for (const name of channelNames(ctx.agentDir(agent))) {
    try {
      const r = resolveChannel(ctx.root, agent, name, { strict: false })
      if (r) out.push({ channel: name, version: r.version })
    } catch (err) {
      if (!(err instanceof IntegrityError)) throw err
      out.push({ channel: name, version: null, problem: err.message })
    }
  }
  return out
}

/**
 * Everything `store list` shows: every agent and alias of the store, sorted by name (an alias with its
 * agent's channels and versions, a broken one with its problem), or one of them (a broken alias: exit 4).
 */
export async function list(ctx: StoreContext, agent?: string): Promise<AgentSummary[]> {
  if (agent !== undefined) {
    const entry = agentEntry(ctx.root, validateName('agent', agent))
    requireAgent(ctx, entry.agent)
    return [await summary(ctx, agent, entry.alias)]
  }
  const entries: AliasEntry[] = [...(await listAgents(ctx)).map((name) => ({ name, alias: null })), ...(await listAliases(ctx))]
  const out: AgentSummary[] = []
  for (const e of entries.sort((a, b) => byName(a.name, b.name))) {
    out.push(e.problem !== undefined ? { agent: e.name, aliasProblem: e.problem, current: null, channels: {}, versions: [] } : await summary(ctx, e.name, e.alias))
  }
  return out
}

async function summary(ctx: StoreContext, name: string, alias: string | null): Promise<AgentSummary> {
  const channels = channelVersions(ctx, alias ?? name)
  return { agent: name, ...(alias ? { alias } : {}), current: channels.current ?? null, channels, versions: await versionInfos(ctx, alias ?? name) }
}

/** The manifest of a version (default: the current one). Missing or malformed: IntegrityError. */
export async function manifest(ctx: StoreContext, agent: string, version?: string): Promise<Manifest | LegacyManifest> {
  const dir = await locate(ctx, agent, version)
  return (await readManifest(dir)).manifest
}

/** The directory of a version, or of the current one when version is undefined. */
export async function locate(ctx: StoreContext, name: string, version?: string): Promise<string> {
  const agent = readAgent(ctx, name)
  requireAgent(ctx, agent)
  if (version === undefined) {
    const r = resolveChannel(ctx.root, agent, 'current', { strict: true })
    return r!.path
  }
  const dir = ctx.versionDir(agent, version)
  if (!(await exists(dir))) throw versionNotFound(agent, version)
  return dir
}

/** Throws NotFoundError unless the store and its agent directory exist. */
export function requireAgent(ctx: StoreContext, agent: string): void {
  const dir = ctx.agentDir(agent)
  if (!storeRootExists(ctx.root)) throw storeNotFound(ctx.root)
  let ok = false
  try {
    ok = statSync(dir).isDirectory()
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT' && errnoCode(err) !== 'ENOTDIR') throw err
  }
  if (!ok) {
    throw new NotFoundError(`Agent ${agent} does not exist in store ${ctx.root}`, { code: 'AGENT_NOT_FOUND', hint: 'List the agents with `modelforge store list`.', details: { agent } })
  }
}

/**
 * STRICT_MODEL_STORE: a reader that would answer "none" for a missing store or agent fails (exit 6), so that
 * a service configured with a wrong path notices; otherwise it answers none.
 */
function strictAgent(ctx: StoreContext, agent: string): void {
  if (ctx.strict) requireAgent(ctx, agent)
}

/** The version a channel names now, or null (damaged channels count as none). */
export function peekChannel(ctx: StoreContext, agent: string, channel: string): string | null {
  try {
    return resolveChannel(ctx.root, agent, channel, { strict: false })?.version ?? null
  } catch (err) {
    if (err instanceof IntegrityError) return null
    throw err
  }
}

/** The entries of an agent directory that are channels: links, and a real (Python-made) `current`. */
export function channelNames(agentDir: string): string[] {
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

function validName(kind: 'agent' | 'version', name: string): boolean {
  try {
    validateName(kind, name)
    return true
  } catch {
    return false
  }
}
