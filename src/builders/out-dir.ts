/**
 * The output directory of a build and its staging directory. Everything is written into a hidden sibling
 * of --out (the same filesystem, so the final step is one rename) and the sibling becomes --out only
 * when the engine is built and validated: at every instant --out is absent, the previous output, or the
 * new one, never a mix. A failure, a timeout or an abort removes the staging directory.
 */
import { randomBytes } from 'node:crypto'
import { hostname } from 'node:os'
import { mkdir, readdir, rename, rm, rmdir, stat } from 'node:fs/promises'
import { basename, dirname, join, resolve } from 'node:path'
import { ConflictError, errnoCode, osFailure, UsageError } from '../lib/errors.js'
import { fsyncDir } from '../lib/fs.js'
import { holderAlive } from '../lib/lock.js'

const BUILD_TAG = 'modelforge-build'
const OLD_TAG = 'modelforge-old'

/** What is at --out now. */
export type OutState = 'absent' | 'empty' | 'non-empty'

/**
 * Refuses an --out that cannot receive a build before anything runs: a file or a path through one (exit
 * 2), a directory holding files without --force (exit 5). An empty directory is taken as it is.
 */
export async function checkOut(out: string, force: boolean): Promise<OutState> {
  let state: OutState
  try {
    const s = await stat(out)
    if (!s.isDirectory()) throw notDirectory(out, 'it is a file')
    state = (await readdir(out)).length === 0 ? 'empty' : 'non-empty'
  } catch (err) {
    const code = errnoCode(err)
    if (code === 'ENOENT') return 'absent'
    if (code === 'ENOTDIR') throw notDirectory(out, 'a part of the path is a file')
    throw osFailure(err, 'looking at --out', out)
  }
  if (state === 'non-empty' && !force) throw outputExists(out)
  return state
}

function notDirectory(out: string, reason: string): UsageError {
  return new UsageError(`--out ${out} is not a directory: ${reason}`, {
    code: 'OUT_NOT_DIRECTORY',
    hint: 'Point --out at a directory (build creates it when it does not exist), or move the file out of the way.',
    details: { out },
  })
}

function outputExists(out: string): ConflictError {
  return new ConflictError(`--out ${out} already holds files`, {
    code: 'OUTPUT_EXISTS',
    hint: 'Choose another --out, or pass --force to replace it (the old one goes only when the new build is complete).',
    details: { out },
  })
}

export interface Staging {
  /** The staging directory. */
  dir: string
  out: string
  /** Ancestors of --out this build created (deepest last), removed again when the build fails. */
  created: string[]
}

/** `.<name>.<tag>-<host>-<pid>-<hex>`: who made it, so that a later build can tell a dead build's leftovers. */
function siblingName(out: string, tag: string): string {
  return `.${basename(out)}.${tag}-${hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`
}

const LEFTOVER = /^\.(.+)\.(modelforge-build|modelforge-old)-(.+)-(\d+)-[0-9a-f]{8}$/

/**
 * Leftovers of builds of this --out killed on this host (their process is gone): staging directories, and
 * a previous output set aside by a --force build killed between its two renames, once --out exists again
 * (while --out is missing, that is the last complete output, and stays for the user).
 */
async function removeLeftovers(parent: string, out: string): Promise<void> {
  let names: string[]
  try {
    names = await readdir(parent)
  } catch {
    return
  }
  const outExists = await stat(out).then(() => true, () => false)
  for (const name of names) {
    const m = LEFTOVER.exec(name)
    if (!m || m[1] !== basename(out) || m[3] !== hostname() || holderAlive({ pid: Number(m[4]) })) continue
    if (m[2] === OLD_TAG && !outExists) continue
    await rm(join(parent, name), { recursive: true, force: true })
  }
}

/** Creates the staging directory beside --out (and --out's missing ancestors). */
export async function openStaging(outPath: string): Promise<Staging> {
  const out = resolve(outPath)
  const parent = dirname(out)
  const created: string[] = []
  try {
    const missing: string[] = []
    for (let d = parent; !(await stat(d).then(() => true, () => false)); d = dirname(d)) missing.unshift(d)
    for (const d of missing) {
      await mkdir(d)
      created.push(d)
    }
    await removeLeftovers(parent, out)
    const dir = join(parent, siblingName(out, BUILD_TAG))
    await mkdir(dir)
    return { dir, out, created }
  } catch (err) {
    await removeCreated(created)
    throw osFailure(err, 'creating the staging directory of --out', parent)
  }
}

async function removeCreated(created: string[]): Promise<void> {
  for (const d of [...created].reverse()) await rmdir(d).catch(() => undefined)
}

/** After a failure: no trace of the build, and the directories it created for --out go too. */
export async function discardStaging(staging: Staging): Promise<void> {
  await rm(staging.dir, { recursive: true, force: true })
  await removeCreated(staging.created)
}

/**
 * The staging directory becomes --out. rename(2) replaces an absent or empty --out in one step; a
 * non-empty one (with --force) is first renamed aside, then removed once the new output is in place.
 */
export async function commitStaging(staging: Staging, force: boolean): Promise<void> {
  const { dir, out } = staging
  try {
    await rename(dir, out)
  } catch (err) {
    const code = errnoCode(err)
    if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw osFailure(err, 'moving the build into --out', out)
    // Something filled --out while the build ran (checkOut found it free).
    if (!force) throw outputExists(out)
    const aside = join(dirname(out), siblingName(out, OLD_TAG))
    try {
      await rename(out, aside)
    } catch (e) {
      throw osFailure(e, 'setting the previous --out aside', out)
    }
    try {
      await rename(dir, out)
    } catch (e) {
      await rename(aside, out).catch(() => undefined)
      throw osFailure(e, 'moving the build into --out', out)
    }
    await rm(aside, { recursive: true, force: true })
  }
  await fsyncDir(dirname(out)).catch(() => undefined)
}
