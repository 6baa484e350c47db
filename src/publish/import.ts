/**
 * Import: a directory, or files, from outside the store become a finalized version in one call, so that an
 * operator need not stage, copy and finalize by hand.
 *
 * The source is checked before anything is written: it exists, it is one directory or files with distinct
 * names, and what a directory holds is what finalize accepts (no symlinks, fifos, devices, names sha256sum
 * would escape, or top-level manifest.json; the same exit-4 checks, made by finalize's own checkStagedTree).
 * Then it is copied into the version's staging directory (lib/copy.ts: hard links with `link` where the OS
 * allows, else reflinks where the filesystem clones, else byte copies), and finalize() makes the version
 * exactly as `store finalize` does. finalize only moves `current`; for another channel the version is
 * finalized unpublished and promoted right after, as `store promote` would.
 *
 * All or nothing. A failure at any step undoes what the import made: the staging directory is removed, and a
 * version it had finalized already (its publish failed) is deleted again (delete.ts, audited as such). What
 * only a kill can leave is what a killed stage or finalize leaves: a staging directory (`store gc` removes
 * it), or a finalized version no channel was moved to. The latter is the window finalize has between its
 * rename and its link swap; for another channel it spans the promote too. At no instant does a channel
 * point to a version that is not complete.
 *
 * The source is never written. Copies and reflinks are files of their own. A hard link is the source's own
 * inode, so only a file whose mode and group already are what finalize gives a version's files is linked
 * (the others are copied): finalize then neither writes into it nor changes it, and the source keeps its
 * bytes and modes. From then on, a write into the source file in place (after its owner made it writable
 * again) is a change of the published version too (docs/store.md says what that means for operators).
 */
import { mkdir, realpath, rm, stat } from 'node:fs/promises'
import { basename, dirname, join, resolve as resolvePath } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { filePlacer, type PlaceMethod } from '../lib/copy.js'
import { ConflictError, describeError, errnoCode, errorFromCode, IntegrityError, ModelforgeError, NotFoundError, UsageError } from '../lib/errors.js'
import { formatBytes, planSteps, runStep, type Progress, type StepReporter } from '../lib/progress.js'
import { typeOf, walkTree } from '../lib/tree.js'
import { promote } from './channels.js'
import { deleteVersion } from './delete.js'
import { checkStagedTree, finalize, type FinalizeResult, type ManifestExtras } from './finalize.js'
import { validateName } from './names.js'
import { fits, versionModes, type VersionModes } from './permissions.js'
import { withStaging } from './stage.js'
import { writerAgent, type StoreContext } from './store-context.js'

export interface ImportOptions {
  /**
   * Hard-link the files that already are read-only and of the store's group (as finalize makes a
   * version's files), where the OS allows it (the same filesystem); the others are copied.
   */
  link?: boolean
  metadata?: Record<string, unknown>
  manifest?: ManifestExtras
  /** Publish the new version (default true). */
  publish?: boolean
  /** The channel to publish it to (default current). */
  channel?: string
  /** As finalize's: the original Python ModelStore's checksum in `checksum` (default: store.legacyChecksum). */
  legacyChecksum?: boolean
  /** Where the copy (bytes) and finalize's hashing are reported; silent when absent. */
  progress?: Progress
}

export interface ImportResult extends FinalizeResult {
  /** The channel that now points to the version (null: not published). */
  channel: string | null
  /** The sources, absolute, as given. */
  sources: string[]
  /** How the files got into the version: hard-linked, cloned (reflink), copied byte by byte. */
  linked: number
  reflinked: number
  copied: number
}

interface PlannedFile {
  /** The file to read: a source named on the command line with its links resolved. */
  src: string
  /** Its path in the version. */
  rel: string
  size: number
}

interface ImportPlan {
  sources: string[]
  /** Directories to create, each after its parent. */
  dirs: string[]
  files: PlannedFile[]
  bytes: number
}

/** A failed publish waits this long for another writer's lock before the import gives up (writers are short). */
const LOCK_WAIT_MS = 5000

/** Copies (or links) `sources` into agent/version, finalizes it and publishes it (see the top of this file). */
export async function importVersion(ctx: StoreContext, agent: string, version: string, sources: string[], options: ImportOptions = {}): Promise<ImportResult> {
  ctx.stagingDir(agent, version) // validates both names before anything is read or written
  writerAgent(ctx, agent) // and refuses an alias before the sources are read (stage and finalize check again)
  const publish = options.publish ?? true
  if (options.channel !== undefined) {
    validateName('channel', options.channel)
    if (!publish) {
      throw new UsageError(`A channel (${options.channel}) to publish to was given, and no publishing`, { code: 'USAGE', hint: 'Drop --no-publish to publish to that channel, or --channel to publish nowhere.' })
    }
  }
  const channel = options.channel ?? 'current'
  const plan = await planImport(sources)
  const counts = await withStaging(ctx, agent, version, async (dir) => {
    planSteps(options.progress, [{ id: 'copy', title: `${options.link ? 'Link' : 'Copy'} ${plural(plan.files.length, 'file')} (${formatBytes(plan.bytes)}) into ${agent}/${version}` }])
    const modes = await versionModes(ctx.root, dirname(dir))
    return runStep(options.progress, 'copy', (step) => placeAll(dir, plan, Boolean(options.link), modes, step), {
      title: (c) => `Placed ${plural(plan.files.length, 'file')} (${formatBytes(plan.bytes)}): ${howPlaced(c)}`,
    })
  })
  let result: FinalizeResult
  try {
    result = await finalize(ctx, agent, version, { metadata: options.metadata, manifest: options.manifest, publish: publish && channel === 'current', legacyChecksum: options.legacyChecksum, progress: options.progress })
  } catch (err) {
    // finalize marks a failure after its rename (the version stands, current did not move) as finalized.
    throw await undo(ctx, agent, version, channel, err, err instanceof ModelforgeError && err.details?.finalized === true)
  }
  const { warnings: finalizeWarnings, previous: finalizePrevious, ...finalized } = result
  const warnings = [...(finalizeWarnings ?? [])]
  let previous = finalizePrevious
  if (publish && channel !== 'current') {
    try {
      const change = await whenUnlocked(() => promote(ctx, agent, version, channel))
      previous = change.previous
      warnings.push(...(change.warnings ?? []))
    } catch (err) {
      throw await undo(ctx, agent, version, channel, err, true)
    }
  }
  return {
    ...finalized,
    published: publish,
    ...(publish ? { previous } : {}),
    channel: publish ? channel : null,
    sources: plan.sources,
    ...counts,
    ...(warnings.length > 0 ? { warnings } : {}),
  }
}

/** Checks the sources and lists what to create, before anything is written. */
async function planImport(sources: string[]): Promise<ImportPlan> {
  if (sources.length === 0) throw new UsageError('Nothing to import: no source was given', { code: 'IMPORT_SOURCES' })
  const given = sources.map((s) => resolvePath(s))
  // A source named on the command line may be a link (each file of a Hub snapshot is one): it is followed,
  // as `cp -H` does. What a directory holds is taken as it is: a link in there is refused, as finalize does.
  const found = await Promise.all(given.map(async (path) => {
    try {
      const real = await realpath(path)
      return { path, real, st: await stat(real) }
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw err
      throw new NotFoundError(`The import source ${path} does not exist`, { code: 'PATH_NOT_FOUND', hint: 'Check the path (a link is followed: its target must exist).', details: { path } })
    }
  }))
  const dir = found.find((f) => f.st.isDirectory())
  if (dir) {
    if (found.length > 1) {
      throw new UsageError(`${dir.path} is a directory, given with ${plural(found.length - 1, 'other source')}: import takes one directory, or files`, {
        code: 'IMPORT_SOURCES',
        hint: 'Give the directory alone (it becomes the version\'s tree), or only files (they become its top level).',
        details: { sources: given },
      })
    }
    const entries = await walkTree(dir.real)
    checkStagedTree(entries, null, `The source ${dir.path}`)
    const files = entries.filter((e) => e.type === 'file').map((e) => ({ src: e.abs, rel: e.rel, size: e.size }))
    return { sources: given, dirs: entries.filter((e) => e.type === 'directory').map((e) => e.rel), files, bytes: total(files) }
  }
  const files = found.map((f) => ({ src: f.real, rel: basename(f.path), size: f.st.size, type: typeOf(f.st), path: f.path }))
  const seen = new Map<string, string>()
  for (const f of files) {
    const other = seen.get(f.rel)
    if (other !== undefined) {
      throw new UsageError(`${other} and ${f.path} would both be ${f.rel} in the version`, { code: 'DUPLICATE_FILE_NAME', details: { name: f.rel, sources: [other, f.path] } })
    }
    seen.set(f.rel, f.path)
  }
  checkStagedTree(files, null, 'The source list')
  return { sources: given, dirs: [], files: files.map(({ src, rel, size }) => ({ src, rel, size })), bytes: total(files) }
}

/** Creates the directories and places every file in the staging directory, reporting bytes. */
async function placeAll(dir: string, plan: ImportPlan, link: boolean, modes: VersionModes, step: StepReporter): Promise<Pick<ImportResult, 'linked' | 'reflinked' | 'copied'>> {
  for (const d of plan.dirs) await mkdir(join(dir, d))
  // finalize makes the version read-only and of the store's group (permissions.ts). A hard link's mode and
  // group are the source's own, so only a file that already is what the version needs is linked: finalize
  // then leaves it alone, and the source is never changed. Any other file is copied.
  const placer = filePlacer({ link, linkIf: (st) => fits({ type: 'file', mode: st.mode, gid: st.gid }, modes) })
  const counts: Record<PlaceMethod, number> = { link: 0, reflink: 0, copy: 0 }
  let done = 0
  step.bytes(0, plan.bytes)
  for (const f of plan.files) {
    let thisFile = 0
    let method: PlaceMethod
    try {
      method = await placer.place(f.src, join(dir, f.rel), (n) => {
        thisFile = n
        step.bytes(done + n, plan.bytes)
      })
    } catch (err) {
      const code = errnoCode(err)
      if (code !== 'ENOTFILE' && code !== 'ELOOP') throw err
      throw new IntegrityError(`${f.src} is no longer a regular file (it was replaced while being imported)`, {
        code: 'UNSUPPORTED_FILE_TYPE',
        hint: 'Let whatever writes the source finish, then import again.',
        details: { path: f.src },
      })
    }
    counts[method]++
    done += thisFile
  }
  return { linked: counts.link, reflinked: counts.reflink, copied: counts.copy }
}

/**
 * The error a failed import ends with, once it has removed what it made: the staging directory before
 * finalize's rename, the version after it (unless a channel points to it: then the publish did happen, and
 * only what followed it failed).
 */
async function undo(ctx: StoreContext, agent: string, version: string, channel: string, err: unknown, finalized: boolean): Promise<unknown> {
  if (!finalized) {
    const staging = ctx.stagingDir(agent, version)
    try {
      await rm(staging, { recursive: true, force: true })
    } catch (rmErr) {
      const cause = describeError(err)
      return errorFromCode(cause.error.code, `${cause.error.message}; and the staging directory ${staging} could not be removed (${(rmErr as Error).message})`, {
        hint: `${cause.error.hint ?? ''} \`modelforge store gc --older-than 0\` removes the staging directory.`.trim(),
        cause: err,
        details: { ...cause.error.details, staging },
      })
    }
    return err
  }
  // finalize's own error says the version stands and how to publish it; what failed is its cause.
  const cause = describeError(err instanceof ModelforgeError && err.cause !== undefined && err.details?.finalized ? err.cause : err)
  const facts = { ...cause.error.details, agent, version, channel }
  try {
    await whenUnlocked(() => deleteVersion(ctx, agent, version, { reason: `import failed: ${cause.error.code}` }))
  } catch (delErr) {
    if (delErr instanceof ModelforgeError && delErr.code === 'VERSION_IN_USE') {
      // The link was swapped and only what followed failed (its fsync), or another writer promoted it meanwhile.
      const channels = (delErr.details?.channels as string[] | undefined) ?? [channel]
      const published = channels.includes(channel)
      return errorFromCode(cause.error.code, `Publishing ${agent}/${version} to ${channel} ${published ? 'moved the link, then failed' : 'failed'}: ${cause.error.message}; the version stays, as ${channels.join(', ')} ${channels.length === 1 ? 'points' : 'point'} to it`, {
        hint: cause.error.hint,
        cause: err,
        details: { ...facts, finalized: true, published, channels },
      })
    }
    return errorFromCode(cause.error.code, `${agent}/${version} was finalized, but publishing it to ${channel} failed (${cause.error.message}), and removing it again failed too (${describeError(delErr).error.message})`, {
      hint: `Publish it with \`modelforge store promote ${agent} ${version}${channel === 'current' ? '' : ` --channel ${channel}`}\`, or remove it with \`modelforge store delete ${agent} ${version}\`.`,
      cause: err,
      details: { ...facts, finalized: true, published: false },
    })
  }
  return errorFromCode(cause.error.code, `Publishing ${agent}/${version} to ${channel} failed, so the import was undone (the version it had finalized was removed again): ${cause.error.message}`, {
    hint: cause.error.hint,
    cause: err,
    details: { ...facts, finalized: false, published: false },
  })
}

/** fn, tried again for a few seconds while another writer holds the agent's lock. */
async function whenUnlocked<T>(fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + LOCK_WAIT_MS
  for (;;) {
    try {
      return await fn()
    } catch (err) {
      if (!(err instanceof ConflictError && err.code === 'LOCKED') || Date.now() > deadline) throw err
      await sleep(50)
    }
  }
}

function howPlaced(c: Pick<ImportResult, 'linked' | 'reflinked' | 'copied'>): string {
  const parts = [[c.linked, 'hard-linked'], [c.reflinked, 'cloned (reflink)'], [c.copied, 'copied']] as const
  return parts.filter(([n]) => n > 0).map(([n, what]) => `${n} ${what}`).join(', ') || 'no files'
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`
}

function total(files: { size: number }[]): number {
  return files.reduce((a, f) => a + f.size, 0)
}
