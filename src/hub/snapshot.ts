/**
 * Links verified blobs into snapshots/<commit>/. A new snapshot is built in a staging folder next to
 * snapshots/ (same depth, so the relative links stay valid) and renamed into place in one step: a fetch
 * that dies halfway never leaves a snapshot that looks complete. Files added to an existing snapshot (a
 * later fetch with other --include patterns) are linked one by one, each link created under a temporary
 * name and renamed over, so a reader sees either no file or the whole file.
 */
import { randomBytes } from 'node:crypto'
import { readdir, readlink, rename, rm, rmdir } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { errnoCode } from '../lib/errors.js'
import { ensureDir, swapSymlink } from '../lib/fs.js'
import { holderAlive } from '../lib/lock.js'
import { blobLinkTarget, isDirectory, safeRepoPath, snapshotDir, type RepoCache } from './cache.js'

export interface SnapshotEntry {
  path: string
  blobId: string
}

const STAGING = '.modelforge-staging'

async function linkInto(root: string, entry: SnapshotEntry): Promise<void> {
  const file = join(root, ...safeRepoPath(entry.path))
  const target = blobLinkTarget(entry.path, entry.blobId)
  try {
    if ((await readlink(file)) === target) return
  } catch (err) {
    const code = errnoCode(err)
    if (code !== 'ENOENT' && code !== 'EINVAL') throw err
  }
  await ensureDir(dirname(file))
  // No fsync, as huggingface_hub: a link lost to a power loss reads as a missing file and is linked again.
  await swapSymlink(dirname(file), basename(file), target, { durable: false })
}


/** Removes staging folders left by killed processes (their pid is in the name). */
async function cleanStaging(repo: RepoCache): Promise<void> {
  const dir = join(repo.repoDir, STAGING)
  let names: string[]
  try {
    names = await readdir(dir)
  } catch {
    return
  }
  for (const name of names) {
    const pid = Number(name.split('.')[1])
    if (Number.isInteger(pid) && pid > 0 && !holderAlive({ pid })) await rm(join(dir, name), { recursive: true, force: true })
  }
}

export async function linkSnapshot(repo: RepoCache, commit: string, entries: SnapshotEntry[]): Promise<string> {
  const target = snapshotDir(repo, commit)
  await cleanStaging(repo)
  if (!(await isDirectory(target))) {
    const staging = join(repo.repoDir, STAGING, `${commit}.${process.pid}.${randomBytes(4).toString('hex')}`)
    await ensureDir(staging)
    try {
      for (const e of entries) await linkInto(staging, e)
      await ensureDir(repo.snapshotsDir)
      try {
        await rename(staging, target)
        return target
      } catch (err) {
        const code = errnoCode(err)
        // Another process created the snapshot meanwhile: add our links to it below.
        if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err
      }
    } finally {
      await rm(staging, { recursive: true, force: true })
      await rmdir(join(repo.repoDir, STAGING)).catch(() => undefined)
    }
  }
  for (const e of entries) await linkInto(target, e)
  return target
}
