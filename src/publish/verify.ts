/**
 * Verify: every finalized version (and a Python-made real `current` directory) is checked against its
 * manifest. A damaged version is reported, never thrown; assertVerified turns failed reports into exit 4.
 */
import { join, relative } from 'node:path'
import { errnoCode, IntegrityError, UsageError } from '../lib/errors.js'
import { resolveChannel, storeRootExists } from './current.js'
import { hashFile, hashFiles } from './hash.js'
import { checksumFilesV1, filesChecksumOf, LEGACY_ALGORITHM, matchLegacyChecksum, MANIFEST_NAME, readManifest, type ChecksumOrder, type Manifest } from './manifest.js'
import { modeWarnings } from './permissions.js'
import { channelNames, listAgents, listAliases, locate, readAgent, requireAgent, versions } from './readers.js'
import type { StoreContext } from './store-context.js'
import { storeNotFound } from './store-errors.js'
import { compareBytes, walkTree } from '../lib/tree.js'

export type ProblemKind = 'modified' | 'missing' | 'extra' | 'manifest' | 'checksum' | 'channel' | 'unreadable' | 'alias'

export interface VerifyProblem {
  kind: ProblemKind
  /** The file concerned, relative to the version directory. */
  path?: string
  message: string
}

export interface VerifyReport {
  agent: string
  /** When `agent` is an alias: the agent it leads to, whose version this is. */
  alias?: string
  /** null for a channel that points nowhere. */
  version: string | null
  path: string
  algorithm: string | null
  ok: boolean
  files: number
  problems: VerifyProblem[]
  /**
  /**
   * A checksum of the original Python ModelStore's algorithm that matched: which os.walk order reproduced
   * it ('listing': the filesystem's, as os.walk reads it; 'sorted': sorted subdirectories). Absent otherwise.
   */
  checksumOrder?: ChecksumOrder
  /**
   * What is wrong without failing the check: entries that became writable, or are not of the store
   * root's group (permissions.ts). Absent when there is nothing to say.
   */
  warnings?: string[]
}

/**
 * Checks versions against their manifests: every version of every agent, of one agent, or one version.
 * Never throws for a damaged version: each report lists its problems (see assertVerified).
 */
export async function verify(ctx: StoreContext, agent?: string, version?: string): Promise<VerifyReport[]> {
  if (agent !== undefined) {
    // Through an alias, the versions of the agent it leads to are checked, and each report says both names.
    const real = readAgent(ctx, agent)
    if (real !== agent) return (await verify(ctx, real, version)).map((r) => ({ ...r, agent, alias: real }))
  }
  if (version !== undefined) {
    if (agent === undefined) throw new UsageError('A version needs an agent', { code: 'USAGE', hint: 'store verify <agent> <version>' })
    const dir = await locate(ctx, agent, version)
    return [await verifyDir(ctx, agent, version, dir)]
  }
  if (agent !== undefined) requireAgent(ctx, agent)
  if (agent === undefined && !storeRootExists(ctx.root)) throw storeNotFound(ctx.root)
  const reports: VerifyReport[] = []
  for (const a of agent ? [agent] : await listAgents(ctx)) {
    let names: string[] = []
    try {
      names = await versions(ctx, a)
    } catch (err) {
      // An agent whose versions/ cannot be listed is one problem; the other agents are still checked.
      const where = join(ctx.agentDir(a), 'versions')
      reports.push({ agent: a, version: null, path: where, algorithm: null, ok: false, files: 0, problems: [unreadableProblem(err, ctx.agentDir(a), where)] })
    }
    for (const v of names) reports.push(await verifyDir(ctx, a, v, ctx.versionDir(a, v)))
    for (const name of channelNames(ctx.agentDir(a))) {
      try {
        const r = resolveChannel(ctx.root, a, name, { strict: false })
        // A Python-made real `current` directory is a copy: check it too.
        if (r?.layout === 'directory') reports.push(await verifyDir(ctx, a, r.version, r.path))
      } catch (err) {
        const where = join(ctx.agentDir(a), name)
        const problem: VerifyProblem = err instanceof IntegrityError ? { kind: 'channel', message: err.message } : channelUnreadable(name, unreadableProblem(err, ctx.agentDir(a), where))
        reports.push({ agent: a, version: null, path: where, algorithm: null, ok: false, files: 0, problems: [problem] })
      }
    }
  }
  // A working alias adds nothing to check (its agent was checked above); a broken one is a problem of its own.
  for (const a of agent === undefined ? await listAliases(ctx) : []) {
    if (a.problem !== undefined) reports.push({ agent: a.name, version: null, path: join(ctx.root, a.name), algorithm: null, ok: false, files: 0, problems: [{ kind: 'alias', message: a.problem }] })
  }
  return reports
}

/** Throws an IntegrityError (exit 4) naming every problem of every failed report. */
export function assertVerified(reports: VerifyReport[]): void {
  const failed = reports.filter((r) => !r.ok)
  if (failed.length === 0) return
  const lines = failed.map((r) => `${r.agent}/${r.version ?? '?'}: ${problemList(r)}`)
  throw new IntegrityError(`Verification failed for ${failed.length} version(s):\n${lines.join('\n')}`, {
    code: 'VERIFY_FAILED',
    hint: 'A finalized version must never change: restore the named files from a backup, or publish a new version and prune the damaged one.',
    details: { reports: failed },
  })
}

/** The report of one finalized version of an agent (it must exist). */
export function verifyVersion(ctx: StoreContext, agent: string, version: string): Promise<VerifyReport> {
  return verifyDir(ctx, agent, version, ctx.versionDir(agent, version))
}

/** The problems of a failed report, in one line: `missing: a; modified: b`. */
export function problemList(report: VerifyReport): string {
  return report.problems.map((p) => p.message).join('; ')
}

/** The report of one version directory (or a real `current` directory, whose name is not its version). */
async function verifyDir(ctx: StoreContext, agent: string, version: string | null, dir: string): Promise<VerifyReport> {
  const report: VerifyReport = { agent, version, path: dir, algorithm: null, ok: false, files: 0, problems: [] }
  // Whatever cannot be read is a problem of this version, reported with the rest; verify goes on.
  try {
    await checkDir(ctx, agent, version, dir, report)
  } catch (err) {
    report.problems.push(unreadableProblem(err, dir, join(dir, MANIFEST_NAME)))
  }
  report.problems.sort((a, b) => compareBytes(a.path ?? '', b.path ?? ''))
  report.ok = report.problems.length === 0
  try {
    const warnings = await modeWarnings(ctx.root, dir)
    if (warnings.length > 0) report.warnings = warnings
  } catch (err) {
    // A tree that cannot be walked is already a problem of this report (unreadable).
    if (!errnoCode(err)?.startsWith('E')) throw err
  }
  return report
}

/**
 * A problem for an operating-system failure (EACCES, EISDIR, EIO...) while reading under `dir`, or for a
 * file the hasher refused (unreadable, or replaced by something that is no regular file while read).
 * Anything else is a bug and is rethrown.
 */
function unreadableProblem(err: unknown, dir: string, fallback: string): VerifyProblem {
  if (err instanceof IntegrityError) {
    const path = String(err.details?.path ?? relative(dir, fallback))
    const why = err.code === 'UNREADABLE_FILE' && err.details?.errno ? String(err.details.errno) : err.message
    return { kind: 'unreadable', path, message: `cannot read ${path}: ${why}` }
  }
  const code = errnoCode(err)
  if (!code || !/^E[A-Z0-9]+$/.test(code)) throw err
  const path = relative(dir, String((err as { path?: unknown }).path ?? fallback)) || '.'
  return { kind: 'unreadable', path, message: `cannot read ${path}: ${(err as Error).message.startsWith(code) ? (err as Error).message : `${code} (${(err as Error).message})`}` }
}

function channelUnreadable(channel: string, p: VerifyProblem): VerifyProblem {
  return { ...p, message: `channel ${channel}: ${p.message}` }
}

async function checkDir(ctx: StoreContext, agent: string, version: string | null, dir: string, report: VerifyReport): Promise<void> {
  let parsed
  try {
    parsed = await readManifest(dir)
  } catch (err) {
    if (!(err instanceof IntegrityError)) throw err
    report.problems.push({ kind: 'manifest', path: MANIFEST_NAME, message: err.message })
    return
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
      const match = await matchLegacyChecksum(dir, m.checksum)
      if (match.order) report.checksumOrder = match.order
      else {
        const files = match.listing === match.sorted ? match.listing : `${match.listing} in listing order, ${match.sorted} in sorted order`
        report.problems.push({ kind: 'checksum', message: `checksum mismatch: manifest ${m.checksum}, files ${files} (a Python-made manifest lists no files, so the changed file cannot be named)` })
      }
    }
    return
  }
  const manifest = m as Manifest
  if (manifest.agent !== agent) {
    // A version copied from another agent verifies file by file, but is not what this agent published.
    report.problems.push({ kind: 'manifest', path: MANIFEST_NAME, message: `manifest names agent ${manifest.agent}, directory is under ${agent}` })
  }
  report.algorithm = manifest.checksum_algorithm
  report.files = manifest.files.length
  const legacy = manifest.checksum_algorithm === LEGACY_ALGORITHM
  if (checksumFilesV1(manifest.files) !== filesChecksumOf(manifest)) {
    report.problems.push({ kind: 'checksum', path: MANIFEST_NAME, message: `manifest ${legacy ? 'files_checksum' : 'checksum'} does not match its own file list (manifest.json was edited)` })
  }
  const onDisk = new Map(entries.filter((e) => e.type === 'file' && e.rel !== MANIFEST_NAME).map((e) => [e.rel, e]))
  const listed = new Map(manifest.files.map((f) => [f.path, f]))
  for (const f of manifest.files) if (!onDisk.has(f.path)) report.problems.push({ kind: 'missing', path: f.path, message: `missing: ${f.path}` })
  for (const rel of onDisk.keys()) if (!listed.has(rel)) report.problems.push({ kind: 'extra', path: rel, message: `extra file: ${rel}` })
  const toHash = [...onDisk.values()].filter((e) => listed.has(e.rel)).map((e) => ({ path: e.abs, rel: e.rel, size: e.size }))
  let hashed
  try {
    hashed = await hashFiles(toHash, { threads: ctx.hashThreads })
  } catch (err) {
    if (!(err instanceof IntegrityError)) throw err
    // A file that cannot be read stopped the batch: one by one, each unreadable file is named and the
    // others are still compared.
    hashed = []
    for (const f of toHash) {
      try {
        hashed.push(await hashFile(f.path, { rel: f.rel }))
      } catch (e) {
        report.problems.push(unreadableProblem(e, dir, f.path))
      }
    }
  }
  for (const h of hashed) {
    const f = listed.get(h.rel)!
    if (h.size !== f.size || h.sha256 !== f.sha256) report.problems.push({ kind: 'modified', path: h.rel, message: `modified: ${h.rel}` })
  }
  // The legacy checksum (store.legacyChecksum) is what Python readers check: it must hold too. Only once
  // every file matches: a changed file is named above, and would only make it mismatch as well.
  if (legacy && report.problems.length === 0) {
    const match = await matchLegacyChecksum(dir, manifest.checksum)
    if (match.order) report.checksumOrder = match.order
    else {
      report.problems.push({
        kind: 'checksum', path: MANIFEST_NAME,
        message: `the ${LEGACY_ALGORITHM} checksum matches the files in neither os.walk order, though every file matches its sha256: the tree lists in another order here (copied from another filesystem?) or manifest.json was edited; the Python ModelStore's check refuses it`,
      })
    }
  }
}
