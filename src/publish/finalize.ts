/**
 * Finalize: a staged tree becomes an immutable version. It is checked, hashed into manifest.json, made
 * durable, renamed into place and (by default) published as `current`, under the agent's lock.
 */
import { lstat, readFile, rename, rm } from 'node:fs/promises'
import { dirname, join, relative } from 'node:path'
import { debugLog } from '../lib/debug.js'
import { loadConfig } from '../lib/env.js'
import { describeError, errnoCode, errorFromCode, IntegrityError, type ModelforgeError } from '../lib/errors.js'
import { auditDone } from './audit.js'
import { pointChannel } from './channels.js'
import { storeRootExists } from './current.js'
import { fsyncDir, fsyncPath, writeFileAtomic } from '../lib/fs.js'
import { hashFiles, type HashOutput } from './hash.js'
import { acquireLock } from './lock.js'
import { checksumFilesV1, CHECKSUM_ALGORITHM, filesChecksumOf, LEGACY_ALGORITHM, legacyChecksum, MANIFEST_NAME, MANIFEST_SCHEMA, parseManifest, type Manifest, type ManifestFile } from './manifest.js'
import { isCopyTemp, makeReadOnly, prepareStaged, versionModes } from './permissions.js'
import { peekChannel } from './readers.js'
import { exists, writerAgent, type StoreContext, type WriterAgent } from './store-context.js'
import { notStaged, versionExists } from './store-errors.js'
import { compareBytes, walkTree, type TreeEntry } from '../lib/tree.js'
import { formatBytes, planSteps, runStep, type Progress, type StepReporter } from '../lib/progress.js'

/** Optional manifest sections a caller (build-engine) adds at finalize. */
export type ManifestExtras = Pick<Manifest, 'artifacts' | 'source' | 'build' | 'validation' | 'performance' | 'capabilities'>

export interface FinalizeOptions {
  metadata?: Record<string, unknown>
  /** Point `current` at the new version (default true). */
  publish?: boolean
  manifest?: ManifestExtras
  /** Publish a version without files (refused by default: an empty tree is almost always a failed export). */
  allowEmpty?: boolean
  /**
   * `checksum` holds the original Python ModelStore's value (checksum_algorithm legacy-python-sha256), so that
   * its verify_manifest accepts the version; the sha256-files-v1 value goes to files_checksum. Default:
   * store.legacyChecksum of MODELFORGE_CONFIG, else false.
   */
  legacyChecksum?: boolean
  /** Where finalize reports its one step (bytes hashed so far); silent when absent. */
  progress?: Progress
  /**
   * Digests the caller computed from the very bytes it wrote into the staged tree (store pull's verified
   * blobs), by staged path. A file that is still the one hashed (same inode, size and mtime) is fsynced
   * but not read again: hashing a 1 GiB engine twice cost a pull about 0.7 s. Any other file is hashed.
   */
  knownDigests?: ReadonlyMap<string, KnownDigest>
}

/** A file's sha256 and the identity (lstat) of the file it was computed from. */
export interface KnownDigest {
  sha256: string
  size: number
  ino: number
  mtimeMs: number
}

export interface FinalizeResult {
  agent: string
  version: string
  path: string
  /** The manifest's checksum, of checksumAlgorithm. */
  checksum: string
  checksumAlgorithm: Manifest['checksum_algorithm']
  /** The sha256-files-v1 value, when checksum is the legacy one. */
  filesChecksum?: string
  files: number
  bytes: number
  published: boolean
  /** The version `current` pointed to before (null: none; undefined: not published). */
  previous?: string | null
  /** What failed after the version was in place (it stands): e.g. the audit record could not be written. */
  warnings?: string[]
}

const log = debugLog('store')

/** Hashes, writes manifest.json, renames the staging dir into place and (by default) publishes it. */
export async function finalize(ctx: StoreContext, name: string, version: string, options: FinalizeOptions = {}): Promise<FinalizeResult> {
  // Refused by name before any step starts, and before any lock (store-context.ts writerAgent).
  const agent = writerAgent(ctx, name)
  planSteps(options.progress, [{ id: 'finalize', title: `Finalize ${agent}/${version}` }])
  return runStep(options.progress, 'finalize', (step) => finalizeStep(ctx, agent, version, options, step))
}

async function finalizeStep(ctx: StoreContext, agent: WriterAgent, version: string, options: FinalizeOptions, step: StepReporter): Promise<FinalizeResult> {
  const staging = ctx.stagingDir(agent, version)
  const final = ctx.versionDir(agent, version)
  const agentDir = ctx.agentDir(agent)
  // Read before anything is written: a broken MODELFORGE_CONFIG stops the finalize with nothing changed.
  const legacy = options.legacyChecksum ?? loadConfig().store?.legacyChecksum ?? false
  // Checked before the lock too, so that refusing leaves no trace (not even the locks directory).
  if (!storeRootExists(ctx.root) || !(await exists(staging))) {
    if (await exists(final)) throw versionExists(agent, version, final)
    throw notStaged(agent, version, staging)
  }
  if (await exists(final)) throw versionExists(agent, version, final)
  const lock = acquireLock(ctx.root, agent, { op: 'finalize', version })
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
    // What a finalize killed while writing its manifest (or a copy, see permissions.ts) left: a temporary
    // file, never part of the version.
    const torn = entries.filter((e) => MANIFEST_TEMP.test(e.rel) || isCopyTemp(e.rel))
    const tree = entries.filter((e) => !torn.includes(e))
    const earlier = await earlierManifest(staging, agent, version, tree)
    checkStagedTree(tree, earlier)
    // An earlier finalize's manifest is rewritten below (over it, atomically), never hashed as a file.
    const files = tree.filter((e) => e.type === 'file' && !(earlier === true && e.rel === MANIFEST_NAME))
    if (files.length === 0 && !options.allowEmpty) {
      throw new IntegrityError(`The staged tree of ${agent}/${version} holds no files: an empty version would be published`, {
        code: 'EMPTY_VERSION',
        hint: `Check what wrote ${staging} (a failed copy or export leaves it empty); pass --allow-empty (allowEmpty) if an empty version is really meant.`,
        details: { agent, version, path: staging },
      })
    }
    // The version will be read-only (permissions.ts): what makeReadOnly could not change in place without
    // touching files outside the tree (hard links) is copied now, before hashing, so that the bytes hashed
    // are the ones published; a directory this process may not chmod is refused now, before any change.
    const modes = await versionModes(ctx.root, dirname(staging))
    const copies = await prepareStaged(agent, version, staging, tree, modes)
    if (copies > 0) log(`finalize ${agent}/${version}: replaced ${copies} file${copies === 1 ? '' : 's'} with other links or another owner by copies of their own, so that their modes can change`)
    for (const e of torn) {
      await rm(e.abs, { force: true })
      log(`finalize ${agent}/${version}: removed ${e.abs}, left by a finalize killed while writing the manifest`)
    }
    const { known, toHash } = await takeKnownDigests(files, options.knownDigests)
    const total = toHash.reduce((a, f) => a + f.size, 0)
    const hashed = known.concat(await hashFiles(
      toHash.map((f) => ({ path: f.abs, rel: f.rel, size: f.size })),
      { fsync: true, threads: ctx.hashThreads, onProgress: (done) => step.message(`hashed ${formatBytes(done)} of ${formatBytes(total)}`) },
    ))
    const manifestFiles: ManifestFile[] = hashed.map((h) => ({ path: h.rel, size: h.size, sha256: h.sha256 })).sort((a, b) => compareBytes(a.path, b.path))
    const filesChecksum = checksumFilesV1(manifestFiles)
    // The Python helper hashed its staging tree as os.walk lists it here (a rename keeps that order), and
    // its verify_manifest walks the same way: so the listing order, read a second time, file by file.
    if (legacy) step.message(`computing the ${LEGACY_ALGORITHM} checksum`)
    const checksum = legacy ? await legacyChecksum(staging, { order: 'listing' }) : filesChecksum
    const algorithm = legacy ? LEGACY_ALGORITHM : CHECKSUM_ALGORITHM
    const manifest: Manifest = {
      version,
      checksum,
      metadata: options.metadata ?? {},
      schema: MANIFEST_SCHEMA,
      agent,
      created_at: new Date().toISOString(),
      checksum_algorithm: algorithm,
      ...(legacy ? { files_checksum: filesChecksum } : {}),
      files: manifestFiles,
      ...definedOnly(options.manifest ?? {}),
    }
    // Atomic: a failure from here to the rename leaves a complete manifest, which the next finalize of this
    // version recognises (earlierManifest), or none.
    await writeFileAtomic(join(staging, MANIFEST_NAME), JSON.stringify(manifest, null, 2) + '\n', { durable: true })
    const bytes = manifestFiles.reduce((a, f) => a + f.size, 0)
    log(`finalize ${agent}/${version}: wrote ${join(staging, MANIFEST_NAME)} (${manifestFiles.length} file${manifestFiles.length === 1 ? '' : 's'}, ${bytes} bytes, ${algorithm} ${checksum})${earlier === true ? ', replacing an earlier finalize\'s' : ''}`)
    // Read-only before the rename, so that no instant shows a writable version under its name. The
    // directories' new modes are made durable by their fsyncs below; the files' by the same journal commits
    // on ext4 and XFS, which write metadata changes in order (a file's fsync here would cost a commit each).
    const changed = await makeReadOnly(staging, modes)
    log(`finalize ${agent}/${version}: made ${staging} read-only (${changed} of its entries changed mode or group)`)
    for (const e of tree) if (e.type === 'directory') await fsyncDir(e.abs)
    await fsyncDir(staging)
    await rename(staging, final)
    log(`finalize ${agent}/${version}: renamed ${staging} -> ${final}`)
    // From here on the version exists: a failure must say so, and what it left undone.
    const warnings: string[] = []
    try {
      await fsyncDir(join(agentDir, 'versions'))
      // The agent and its versions/ directory may be new since stage; make their entries durable too.
      await fsyncDir(agentDir)
      await fsyncDir(ctx.root)
    } catch (err) {
      warnings.push(`${agent}/${version} is in place, but syncing its directory entries failed (${(err as Error).message}): a power loss could still lose it`)
    }
    const publish = options.publish ?? true
    let previous: string | null | undefined
    if (publish) {
      previous = peekChannel(ctx, agent, 'current')
      try {
        await pointChannel(ctx, agent, 'current', version)
      } catch (err) {
        throw publishedHalf(err, agent, version, final)
      }
    }
    auditDone(ctx.root, { op: 'finalize', agent, version, checksum, ...(publish ? { channel: 'current', previous } : {}) },
      publish ? `${agent}/${version} was finalized and current points to it` : `${agent}/${version} was finalized`, warnings)
    return {
      agent, version, path: final, checksum, checksumAlgorithm: algorithm, ...(legacy ? { filesChecksum } : {}), files: manifestFiles.length, bytes, published: publish,
      ...(publish ? { previous } : {}),
      ...(warnings.length > 0 ? { warnings } : {}),
    }
  } finally {
    lock.release()
  }
}

/** The version is finalized but current could not be moved: the error says both, with the cause's exit code. */
function publishedHalf(err: unknown, agent: string, version: string, path: string): ModelforgeError {
  const cause = describeError(err)
  return errorFromCode(cause.error.code, `${agent}/${version} was finalized (${path}), but current could not be pointed at it: ${cause.error.message}`, {
    hint: `Fix the cause, then publish it with \`modelforge store promote ${agent} ${version}\` (the version itself is complete).`,
    cause: err,
    details: { finalized: true, published: false, agent, version, path, ...cause.error.details },
  })
}

/**
 * The tree's entries are publishable (import checks its source with it too, naming it as `subject`).
 * `earlier`: true when manifest.json is an earlier finalize's own (see earlierManifest), else why it is not.
 */
export function checkStagedTree(entries: { rel: string; type: string }[], earlier: true | string | null = null, subject = 'The staged tree'): void {
  const special = entries.filter((e) => e.type !== 'file' && e.type !== 'directory')
  if (special.length > 0) {
    throw new IntegrityError(`${subject} holds ${special.map((e) => `a ${e.type} (${e.rel})`).join(', ')}; only regular files and directories can be published`, {
      code: 'UNSUPPORTED_FILE_TYPE',
      hint: 'Replace symlinks by copies of the files and remove devices, sockets and fifos, then try again.',
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
  if (earlier !== true && entries.some((e) => e.rel === MANIFEST_NAME)) {
    throw new IntegrityError(`${subject} already holds a top-level manifest.json, which finalize writes, and it is not one ${earlier ? `a finalize of ${earlier}` : 'finalize wrote'}`, {
      code: 'MANIFEST_RESERVED',
      hint: 'Remove or rename it; pass caller metadata with --metadata or --metadata-file instead. (One an interrupted finalize of this version wrote is recognised and rewritten.)',
      details: { path: MANIFEST_NAME },
    })
  }
}

/** `manifest.json-<pid>-<hex>.tmp`: the temporary name writeFileAtomic writes the manifest under. */
const MANIFEST_TEMP = /^manifest\.json-\d+-[0-9a-f]{8}\.tmp$/

/**
 * Whether the tree's top-level manifest.json is one a finalize of this very version wrote before failing
 * (after the manifest, before or during the rename): true, or why not (null when there is none). Its
 * schema, agent, version and checksum must be right and its files must be the tree's, by path and size;
 * such a file says nothing a new manifest would not, so it is rewritten. Anything else is the caller's.
 */
async function earlierManifest(staging: string, agent: string, version: string, tree: TreeEntry[]): Promise<true | string | null> {
  const entry = tree.find((e) => e.rel === MANIFEST_NAME)
  if (!entry) return null
  const self = `${agent}/${version} wrote`
  if (entry.type !== 'file') return `${self}: it is a ${entry.type}`
  let parsed
  try {
    parsed = parseManifest(JSON.parse(await readFile(entry.abs, 'utf8')), join(staging, MANIFEST_NAME))
  } catch (err) {
    return `${self}: ${(err as Error).message}`
  }
  if (parsed.kind !== 'v1') return `${self}: it has no schema ${MANIFEST_SCHEMA}`
  const m = parsed.manifest
  if (m.agent !== agent || m.version !== version) return `${self}: it names ${m.agent}/${m.version}`
  if (checksumFilesV1(m.files) !== filesChecksumOf(m)) return `${self}: its checksum does not match its file list`
  const files = tree.filter((e) => e.type === 'file' && e.rel !== MANIFEST_NAME)
  const listed = new Map(m.files.map((f) => [f.path, f.size]))
  if (files.length !== listed.size || files.some((f) => listed.get(f.rel) !== f.size)) {
    return `${self}: it lists ${listed.size} file(s), the tree holds ${files.length}${files.length === listed.size ? ' of other names or sizes' : ''}`
  }
  return true
}

function definedOnly(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined))
}

/** The files whose known digest still holds (made durable here), and the ones left to hash. */
async function takeKnownDigests(files: TreeEntry[], digests: ReadonlyMap<string, KnownDigest> | undefined): Promise<{ known: HashOutput[]; toHash: TreeEntry[] }> {
  if (!digests?.size) return { known: [], toHash: files }
  const known: HashOutput[] = []
  const toHash: TreeEntry[] = []
  for (const f of files) {
    const k = digests.get(f.rel)
    const st = k ? await lstat(f.abs) : undefined
    if (k && st && st.isFile() && st.ino === k.ino && st.size === k.size && st.mtimeMs === k.mtimeMs) {
      await fsyncPath(f.abs)
      known.push({ rel: f.rel, size: k.size, sha256: k.sha256 })
    } else {
      if (k) log(`finalize: ${f.rel} changed after its digest was taken; hashing it`)
      toHash.push(f)
    }
  }
  return { known, toHash }
}
