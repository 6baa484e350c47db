/**
 * The Hugging Face cache layout, shared with Python's huggingface_hub (same directory, readable by both):
 *
 *   <cache>/models--org--name/
 *     blobs/<sha256 for LFS files | git blob sha1 for the others>
 *     snapshots/<commit>/<path>  -> ../../blobs/<id>   (relative symlink, one more ../ per sub-folder)
 *     refs/<revision>            the 40-hex commit, no newline ("refs/pr/1" -> refs/refs/pr/1)
 *     trees/<commit>.json        the repo listing at that commit (huggingface_hub >= 1.22)
 *
 * This module only knows paths and the small metadata files; downloading and linking live in download.ts
 * and snapshot.ts. Everything that is written here is written atomically (temporary file + rename) so a
 * reader (ours or Python's) never sees half a ref or half a tree listing.
 */
import { readFile, readdir, stat } from 'node:fs/promises'
import { join, sep } from 'node:path'
import { hubCacheDir } from '../lib/env.js'
import { errnoCode, IntegrityError, NotFoundError, osFailure, UsageError } from '../lib/errors.js'
import { writeFileAtomic } from '../lib/fs.js'
import { parseRepoId } from './repo-id.js'

export const COMMIT_RE = /^[0-9a-f]{40}$/
/** An abbreviated commit (git's default abbreviation is 7): resolved against the cached snapshots. */
export const COMMIT_PREFIX_RE = /^[0-9a-f]{7,39}$/

/** parseRepoId for callers that only need the id checked (INVALID_REPO_ID, exit 2). */
export function validateRepoId(repoId: string): void {
  parseRepoId(repoId)
}

/** A branch, tag or commit. Refs are stored as files, so anything that could escape refs/ is refused. */
export function validateRevision(revision: string): void {
  const parts = revision.split('/')
  if (!revision || revision.length > 255 || parts.some((p) => p === '' || p === '.' || p === '..') || /[\0\\]/.test(revision)) {
    throw new UsageError(`Invalid revision "${revision}"`, {
      code: 'INVALID_REVISION',
      hint: 'Pass a branch, a tag or a 40-hex commit, e.g. main, v1.0 or refs/pr/1.',
    })
  }
}

export function repoFolderName(repoId: string): string {
  return ['models', ...repoId.split('/')].join('--')
}

export interface RepoCache {
  cacheDir: string
  repoId: string
  repoDir: string
  blobsDir: string
  snapshotsDir: string
  refsDir: string
  treesDir: string
  /** Per-blob locks, where Python keeps its own: <cache>/.locks/models--org--name/<blob>.lock */
  locksDir: string
}

export function repoCache(cacheDir: string, repoId: string): RepoCache {
  validateRepoId(repoId)
  const folder = repoFolderName(repoId)
  const repoDir = join(cacheDir, folder)
  return {
    cacheDir,
    repoId,
    repoDir,
    blobsDir: join(repoDir, 'blobs'),
    snapshotsDir: join(repoDir, 'snapshots'),
    refsDir: join(repoDir, 'refs'),
    treesDir: join(repoDir, 'trees'),
    locksDir: join(cacheDir, '.locks', folder),
  }
}

export function snapshotDir(repo: RepoCache, commit: string): string {
  return join(repo.snapshotsDir, commit)
}

/** Repo-relative file paths from the Hub are split on "/" and must stay inside the snapshot. */
export function safeRepoPath(path: string): string[] {
  const parts = path.split('/')
  if (!path || path.startsWith('/') || parts.some((p) => p === '' || p === '.' || p === '..') || path.includes('\0') || path.includes('\\')) {
    throw new UsageError(`Refusing unsafe file path "${path}" from the Hub listing`, {
      code: 'UNSAFE_PATH',
      hint: 'The repository lists a path that would escape the cache; report it to the repository owner.',
    })
  }
  return parts
}

export function snapshotFile(repo: RepoCache, commit: string, path: string): string {
  return join(snapshotDir(repo, commit), ...safeRepoPath(path))
}

/** The relative target of snapshots/<commit>/<path>: one "../" per level back up to the repo folder. */
export function blobLinkTarget(path: string, blobId: string): string {
  const depth = safeRepoPath(path).length + 1
  return [...Array<string>(depth).fill('..'), 'blobs', blobId].join('/')
}

/**
 * The commit refs/<revision> holds; undefined when there is no such ref. A ref that holds anything but a
 * commit is damaged (exit 4), not absent: taken as absent, it would send an offline run to "not cached" and
 * an online one past the ref the user may rely on.
 */
export async function readRef(repo: RepoCache, revision: string): Promise<string | undefined> {
  validateRevision(revision)
  const file = join(repo.refsDir, ...revision.split('/'))
  let text: string
  try {
    text = (await readFile(file, 'utf8')).trim()
  } catch (err) {
    const code = errnoCode(err)
    // A directory: refs of branches named <revision>/..., not this one.
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') return undefined
    throw osFailure(err, `reading refs/${revision}`, file)
  }
  if (COMMIT_RE.test(text)) return text
  throw new IntegrityError(`${file} holds ${JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}...` : text)}, not a 40-hex commit`, {
    code: 'REF_INVALID',
    hint: `Rerun with --refresh to ask the Hub which commit ${revision} is (modelforge fetch ${repo.repoId} --revision ${revision} --refresh); that rewrites the ref.`,
    details: { ref: file, repo: repo.repoId, revision },
  })
}

export async function writeRef(repo: RepoCache, revision: string, commit: string): Promise<void> {
  validateRevision(revision)
  // Python writes the commit without a trailing newline; so do we, so that both read the same bytes.
  await writeFileAtomic(join(repo.refsDir, ...revision.split('/')), commit)
}

/** One entry of trees/<commit>.json. */
export interface TreeFileEntry {
  size: number
  blob_id: string
  lfs_sha256?: string
  lfs_size?: number
  xet_hash?: string
}

export interface TreeCache {
  format_version: 1
  files: Record<string, TreeFileEntry>
}

/**
 * trees/<commit>.json as huggingface_hub >= 1.22 writes it (huggingface_hub/_tree_cache.py): the full
 * recursive listing at that commit, used by snapshot_download offline to check that a snapshot is complete
 * (IncompleteSnapshotError otherwise). Checked against huggingface_hub 1.33.0 and 2.0.0 reading our cache offline in
 * test/hub/python-interop.test.ts (skipped where the Python package is not installed).
 */
export async function readTree(repo: RepoCache, commit: string): Promise<TreeCache | undefined> {
  let text: string
  try {
    text = await readFile(join(repo.treesDir, `${commit}.json`), 'utf8')
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined
    throw err
  }
  try {
    const parsed = JSON.parse(text) as TreeCache
    if (parsed && typeof parsed === 'object' && parsed.files && typeof parsed.files === 'object' && Object.entries(parsed.files).every(validTreeEntry)) return parsed
  } catch {
    // A damaged listing is treated as absent: it is a cache of the Hub's answer and can be fetched again.
  }
  return undefined
}

/** Blob ids become file names under blobs/ and paths under snapshots/: a listing that would escape is not used. */
function validTreeEntry([path, f]: [string, TreeFileEntry]): boolean {
  try {
    safeRepoPath(path)
  } catch {
    return false
  }
  return (
    typeof f === 'object' &&
    f !== null &&
    Number.isSafeInteger(f.size) &&
    f.size >= 0 &&
    typeof f.blob_id === 'string' &&
    /^[0-9a-f]{40}$/.test(f.blob_id) &&
    (f.lfs_sha256 === undefined || f.lfs_sha256 === null || /^[0-9a-f]{64}$/.test(f.lfs_sha256))
  )
}

export async function writeTree(repo: RepoCache, commit: string, tree: TreeCache): Promise<void> {
  await writeFileAtomic(join(repo.treesDir, `${commit}.json`), JSON.stringify(tree))
}

/**
 * The cache must be a directory or not exist yet (fetch creates it): a file there is a usage error, found
 * before any request rather than after a download, when the first blob cannot be written.
 */
export async function checkCacheDir(cacheDir: string, origin?: string): Promise<void> {
  let reason: string
  try {
    if ((await stat(cacheDir)).isDirectory()) return
    reason = 'it is a file'
  } catch (err) {
    const code = errnoCode(err)
    if (code === 'ENOENT') return
    if (code !== 'ENOTDIR') throw osFailure(err, 'looking at the Hugging Face cache', cacheDir)
    reason = 'a part of the path is a file'
  }
  throw new UsageError(`The Hugging Face cache ${cacheDir}${origin ? ` (${origin})` : ''} is not a directory: ${reason}`, {
    code: 'CACHE_NOT_DIRECTORY',
    hint: 'Point --cache-dir (or HF_HUB_CACHE, HF_HOME) at a directory, or move the file out of the way.',
    details: { cacheDir },
  })
}

export async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory()
  } catch {
    return false
  }
}

export interface ResolveCachedOptions {
  /** Branch, tag or 40-hex commit; default "main". */
  revision?: string
  /** The hub cache directory; default from HF_HUB_CACHE / HF_HOME (see hubCacheDir()). */
  cacheDir?: string
}

/** The commit a revision points to in the cache, without any network access; undefined when unknown. */
export async function resolveCachedCommit(repo: RepoCache, revision: string): Promise<string | undefined> {
  if (COMMIT_RE.test(revision)) return revision
  const ref = await readRef(repo, revision)
  if (ref || !COMMIT_PREFIX_RE.test(revision)) return ref
  return cachedCommitByPrefix(repo, revision)
}

/**
 * An abbreviated commit (e.g. "dd4bc8b", as `git log --oneline` prints it) matched against snapshots/:
 * the one snapshot whose commit starts with it, else undefined (none, or ambiguous). A ref of that name,
 * checked first by resolveCachedCommit, wins, as a branch named like a hex string does in git.
 * huggingface_hub only knows full hashes offline; this adds to it and writes nothing Python would misread.
 */
async function cachedCommitByPrefix(repo: RepoCache, prefix: string): Promise<string | undefined> {
  let names: string[]
  try {
    names = await readdir(repo.snapshotsDir)
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return undefined
    throw err
  }
  const hits = names.filter((n) => COMMIT_RE.test(n) && n.startsWith(prefix))
  return hits.length === 1 ? hits[0] : undefined
}

/**
 * The snapshot directory of a cached repo id, resolved offline (a 40-hex commit as is, a branch or tag
 * through refs/). Throws NotFoundError (exit 6) when the repo, the revision or the snapshot is not cached.
 * The returned path is the snapshot path, not a realpath: ONNX external data next to a model must resolve
 * through the snapshot's symlinks.
 */
export async function resolveCachedSnapshot(repoId: string, options: ResolveCachedOptions = {}): Promise<string> {
  const revision = options.revision ?? 'main'
  const cacheDir = options.cacheDir ?? hubCacheDir()
  validateRevision(revision)
  await checkCacheDir(cacheDir)
  const repo = repoCache(cacheDir, repoId)
  const commit = await resolveCachedCommit(repo, revision)
  const hint = `Run \`modelforge fetch ${repoId} --revision ${revision}\` while online first (cache: ${cacheDir}).`
  if (!commit) {
    throw new NotFoundError(`${repoId}@${revision} is not in the Hugging Face cache (no refs/${revision})`, {
      code: 'NOT_CACHED',
      hint,
      details: { repo: repoId, revision, cacheDir },
    })
  }
  const dir = snapshotDir(repo, commit)
  if (!(await isDirectory(dir))) {
    throw new NotFoundError(`${repoId}@${revision} (commit ${commit}) has no snapshot in the Hugging Face cache`, {
      code: 'NOT_CACHED',
      hint,
      details: { repo: repoId, revision, commit, cacheDir },
    })
  }
  return dir
}

/** For messages: a path relative to the cache, with "/" separators. */
export function cacheRelative(repo: RepoCache, path: string): string {
  return path.startsWith(repo.cacheDir + sep) ? path.slice(repo.cacheDir.length + 1).split(sep).join('/') : path
}
