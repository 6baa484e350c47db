/**
 * Resolving `current` (and other channels) for readers. Kept lean on purpose: bin/run.js answers
 * `store current` through this module without loading oclif, so it imports only node built-ins, the error
 * classes, env and names.
 *
 * Three layouts are read: the relative symlink modelforge writes (`current -> versions/v2`), an absolute
 * symlink and a real directory, both written by the original Python ModelStore. A reader resolves once and
 * then uses the returned version directory, which never changes under it. A link only ever leads to a
 * version directory of its own agent: one that leads anywhere else is an integrity failure (exit 4), like
 * one that leads nowhere.
 *
 * An agent entry of the store root may itself be a link to another agent's directory (`news-cleaner-agent
 * -> synthesizer`): an alias, a read-only second name kept for readers that still use the old one.
 * agentEntry resolves it, for readers here and in readers.ts, and for writers, which refuse it
 * (store-context.ts writerAgent) so that nothing is ever written or locked under an alias.
 */
import { lstatSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs'
import { basename, dirname, isAbsolute, join, resolve, sep } from 'node:path'
import { errnoCode, IntegrityError, NotFoundError, UsageError } from '../lib/errors.js'
import { strictStore } from '../lib/env.js'
import { nameProblem, validateName } from './names.js'

export type LinkLayout = 'relative-link' | 'absolute-link' | 'directory'

export interface ResolvedChannel {
  agent: string
  channel: string
  /** The version name, or null for a Python-made real `current` directory whose manifest names none. */
  version: string | null
  /** Absolute path of the version directory to read from. */
  path: string
  layout: LinkLayout
  /** When `agent` is an alias: the agent it leads to, whose channel and version directory these are. */
  alias?: string
}

export interface ResolveOptions {
  /** STRICT_MODEL_STORE: throw instead of returning null. Default: from the environment. */
  strict?: boolean
}

/**
 * Checks the store root. Returns false when it does not exist; throws when it exists but is not a
 * directory (a wrong --store is a usage error whatever the mode).
 */
export function storeRootExists(root: string): boolean {
  let st
  try {
    st = statSync(root)
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return false
    throw err
  }
  if (!st.isDirectory()) {
    throw new UsageError(`Store root ${root} is not a directory`, {
      code: 'STORE_NOT_DIRECTORY',
      hint: 'Point --store (or MODEL_STORE_ROOT) at a directory; a new store is created on first write.',
      details: { root },
    })
  }
  return true
}

function missing(strict: boolean, message: string, code: 'STORE_NOT_FOUND' | 'AGENT_NOT_FOUND' | 'NO_CURRENT', hint: string, details: Record<string, unknown>): null {
  if (strict) throw new NotFoundError(message, { code, hint, details })
  return null
}

/** What an agent name is in a store: an agent's own directory, an alias of another agent, or nothing. */
export interface AgentEntry {
  /** The name asked for. */
  name: string
  /** The agent to read: the name itself, or the agent the alias leads to. */
  agent: string
  /** The agent an alias leads to; null when the name is no alias. */
  alias: string | null
  /** <root>/<agent>, or null when there is no such agent (no entry, or one that is no directory). */
  dir: string | null
}

/**
 * Resolves an agent name. An entry that is a symlink is an alias: it must lead (relative or absolute) to a
 * real agent directory directly in this store root. One that leads outside the store, to something that is
 * no agent directory, nowhere, or to another alias (aliases do not chain) is an IntegrityError (exit 4):
 * reading through it would serve files no agent of this store published under that name.
 */
export function agentEntry(root: string, name: string): AgentEntry {
  validateName('agent', name)
  const absRoot = resolve(root)
  const path = join(absRoot, name)
  let st
  try {
    st = lstatSync(path)
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT' && errnoCode(err) !== 'ENOTDIR') throw err
    return { name, agent: name, alias: null, dir: null }
  }
  if (!st.isSymbolicLink()) return { name, agent: name, alias: null, dir: st.isDirectory() ? path : null }
  const target = readlinkSync(path)
  const abs = resolve(absRoot, target)
  const real = basename(abs)
  if (!sameDirectory(dirname(abs), absRoot)) {
    const why = sameDirectory(abs, absRoot) ? 'which is the store root itself, no agent directory'
      : abs.startsWith(absRoot + sep) ? 'which is no agent directory (it is not an entry of the store root)'
        : `which is outside the store ${absRoot}`
    throw badAlias(name, path, target, why)
  }
  const problem = nameProblem('agent', real)
  if (problem !== null) throw badAlias(name, path, target, `which is no agent (as an agent name, ${problem})`)
  let targetStat
  try {
    targetStat = lstatSync(join(absRoot, real))
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw err
    throw badAlias(name, path, target, 'which does not exist')
  }
  if (targetStat.isSymbolicLink()) throw badAlias(name, path, target, `and ${real} is itself an alias: an alias must lead to an agent directory, not to another alias`)
  if (!targetStat.isDirectory()) throw badAlias(name, path, target, 'which is no agent directory')
  return { name, agent: real, alias: real, dir: join(absRoot, real) }
}

/** The same directory, also when reached by another path (a root given through a symlink, a bind mount). */
function sameDirectory(a: string, b: string): boolean {
  if (a === b) return true
  try {
    const x = statSync(a)
    const y = statSync(b)
    return x.dev === y.dev && x.ino === y.ino
  } catch {
    return false
  }
}

function badAlias(name: string, path: string, target: string, why: string): IntegrityError {
  return new IntegrityError(`Agent ${name} is an alias (a link to ${target}), ${why}`, {
    code: 'AGENT_ALIAS_INVALID',
    hint: `Point ${path} at an agent directory of this store (\`ln -sfn <agent> ${path}\`, a relative link keeps working in copies of the store), or remove it.`,
    details: { agent: name, path, target },
  })
}

/** Where `channel` of `agent` points, or null when the store, agent or channel is absent (non-strict). */
export function resolveChannel(root: string, agent: string, channel = 'current', options: ResolveOptions = {}): ResolvedChannel | null {
  return resolveNamed(root, agent, channel, options).resolved
}

/** resolveChannel, and the agent an alias leads to (known also when its channel is absent). */
function resolveNamed(root: string, name: string, channel: string, options: ResolveOptions): { alias: string | null; resolved: ResolvedChannel | null } {
  validateName('agent', name)
  validateName('channel', channel)
  const strict = options.strict ?? strictStore()
  const absRoot = resolve(root)
  if (!storeRootExists(absRoot)) {
    return { alias: null, resolved: missing(strict, `Model store ${absRoot} does not exist`, 'STORE_NOT_FOUND', 'Check --store or MODEL_STORE_ROOT; create a store with `modelforge store stage` and `store finalize`, or `modelforge toy-store`.', { root: absRoot }) }
  }
  const entry = agentEntry(absRoot, name)
  if (entry.dir === null) {
    return { alias: null, resolved: missing(strict, `Agent ${name} does not exist in store ${absRoot}`, 'AGENT_NOT_FOUND', 'List the agents with `modelforge store list`.', { root: absRoot, agent: name }) }
  }
  // Through an alias, the real agent's channel is resolved (and named in messages and hints: writers
  // refuse the alias), and the result says both names.
  const r = resolveIn(absRoot, entry.agent, entry.dir, channel, strict)
  return { alias: entry.alias, resolved: r && entry.alias ? { ...r, agent: name, alias: entry.alias } : r }
}

function resolveIn(absRoot: string, agent: string, agentDir: string, channel: string, strict: boolean): ResolvedChannel | null {
  const linkPath = join(agentDir, channel)
  let linkStat
  try {
    linkStat = lstatSync(linkPath)
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw err
    const aside = legacyAside(agentDir, channel)
    if (aside) return { agent, channel, version: manifestVersion(aside), path: aside, layout: 'directory' }
    return missing(strict, `Agent ${agent} has no ${channel} version`, 'NO_CURRENT', channel === 'current'
      ? `Publish one with \`modelforge store finalize ${agent} <version>\` or \`modelforge store promote ${agent} <version>\`.`
      : `Point it with \`modelforge store promote ${agent} <version> --channel ${channel}\`.`, { root: absRoot, agent, channel })
  }
  if (linkStat.isDirectory() && channel === 'current') {
    // A Python-made store copied the version into a real `current` directory (it had no other channels).
    return { agent, channel, version: manifestVersion(linkPath), path: linkPath, layout: 'directory' }
  }
  if (!linkStat.isSymbolicLink()) {
    throw new IntegrityError(`${linkPath} is not a symlink${channel === 'current' ? ' nor a directory' : ''}`, {
      code: 'CHANNEL_INVALID',
      hint: `Remove it and point the channel again with \`modelforge store promote ${agent} <version> --channel ${channel}\`.`,
      details: { path: linkPath },
    })
  }
  const target = readlinkSync(linkPath)
  const layout: LinkLayout = isAbsolute(target) ? 'absolute-link' : 'relative-link'
  const versionsDir = join(agentDir, 'versions')
  // A Python store moved or copied to another path keeps absolute links to <old root>/<agent>/versions/<v>:
  // they are read as this agent's own versions/<v>, so a copy never reads the original's files. Any other
  // absolute link, and a relative one that leaves versions/ (another agent, another store, a file inside a
  // version, a staging directory), would serve files this agent never published.
  const path = layout === 'absolute-link' ? ownVersionPath(target, agent, versionsDir) : resolve(agentDir, target)
  if (path === null || dirname(path) !== versionsDir || nameProblem('version', basename(path)) !== null) {
    throw outside(agent, channel, linkPath, target, 'which is outside its versions/ directory')
  }
  let st
  try {
    st = lstatSync(path)
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT' && errnoCode(err) !== 'ENOTDIR') throw err
  }
  if (st?.isSymbolicLink()) throw outside(agent, channel, linkPath, target, `and versions/${basename(path)} is itself a link, which leads outside its versions/ directory`)
  if (st?.isDirectory()) return { agent, channel, version: basename(path), path, layout }
  throw new IntegrityError(`${channel} of agent ${agent} points to ${target}, which does not exist`, {
    code: 'CHANNEL_DANGLING',
    hint: `Point it at an existing version with \`modelforge store promote ${agent} <version> --channel ${channel}\`; \`modelforge store verify ${agent}\` checks the versions.`,
    details: { path: linkPath, target },
  })
}

/** <agent>/versions/<v> of this store for an absolute link shaped <root>/<agent>/versions/<v>, else null. */
function ownVersionPath(target: string, agent: string, versionsDir: string): string | null {
  const t = resolve(target)
  if (basename(dirname(t)) !== 'versions' || basename(dirname(dirname(t))) !== agent) return null
  return join(versionsDir, basename(t))
}

function outside(agent: string, channel: string, linkPath: string, target: string, why: string): IntegrityError {
  return new IntegrityError(`${channel} of agent ${agent} points to ${target}, ${why}`, {
    code: 'CHANNEL_OUTSIDE',
    hint: `Point it at a version of ${agent} with \`modelforge store promote ${agent} <version> --channel ${channel}\`; only versions under ${agent}/versions/ are read.`,
    details: { path: linkPath, target },
  })
}

/** `current` of an agent: see resolveChannel. */
export function resolveCurrent(root: string, agent: string, options: ResolveOptions = {}): ResolvedChannel | null {
  return resolveChannel(root, agent, 'current', options)
}

/** Where the first publish into a Python-made agent moves its real `current` directory (see pointChannel). */
export function legacyAsideName(channel: string, stamp: number): string {
  return `${channel}.legacy-${stamp}`
}

/**
 * The newest `<channel>.legacy-<ms>` directory, or null. Replacing a Python-made real `current` directory by
 * a link takes two renames (the directory aside, then the link in), as no rename(2) swaps a directory for a
 * link; a crash between them leaves no `current`, so readers then use the directory that was just moved aside.
 */
function legacyAside(agentDir: string, channel: string): string | null {
  const prefix = `${channel}.legacy-`
  let best: { stamp: number; path: string } | null = null
  for (const name of readdirSync(agentDir)) {
    if (!name.startsWith(prefix) || !/^\d+$/.test(name.slice(prefix.length))) continue
    const stamp = Number(name.slice(prefix.length))
    const path = join(agentDir, name)
    // lstat: only a real directory moved aside counts, never a link that merely carries such a name.
    if ((!best || stamp > best.stamp) && lstatSync(path).isDirectory()) best = { stamp, path }
  }
  return best?.path ?? null
}

function manifestVersion(dir: string): string | null {
  try {
    const parsed = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as { version?: unknown }
    return typeof parsed.version === 'string' ? parsed.version : null
  } catch {
    return null
  }
}

/** What `store current` reports: the resolved channel, or nulls when there is none (non-strict). */
export interface CurrentReport {
  agent: string
  channel: string
  version: string | null
  path: string | null
  layout: LinkLayout | null
  /** When `agent` is an alias: the agent it leads to. */
  alias?: string
}

export function currentReport(root: string, agent: string, channel = 'current', options: ResolveOptions = {}): CurrentReport {
  const { alias, resolved } = resolveNamed(root, agent, channel, options)
  return resolved ?? { agent, channel, version: null, path: null, layout: null, ...(alias ? { alias } : {}) }
}

/**
 * The human output of `store current`: the path and a newline on stdout, or (non-strict, nothing to print)
 * a note on stderr. The command and the fast path of bin/run.js both print this.
 */
export function renderCurrent(report: CurrentReport): { stdout: string; stderr: string } {
  if (report.path !== null) return { stdout: report.path + '\n', stderr: '' }
  return { stdout: '', stderr: `${report.agent} has no ${report.channel} version (set STRICT_MODEL_STORE=1 to make this an error)\n` }
}
