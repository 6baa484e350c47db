/**
 * fetchModel: brings a model repository into the Hugging Face cache, offline-first.
 *
 *  1. Policy (allowedSources) before anything else.
 *  2. Resolve the revision from the cache (a commit as is, a branch or tag through refs/); when every wanted
 *     file of that commit is in the snapshot, return without a single request.
 *  3. Offline (--offline / HF_HUB_OFFLINE): stop here with NotFoundError (exit 6) naming what is missing.
 *  4. Approval (requireApproval -> --yes), then the Hub: revision -> commit once, the listing of that commit,
 *     each missing blob downloaded, verified and renamed into blobs/ under its lock, the snapshot linked,
 *     and only then trees/<commit>.json and refs/<revision>; then the audit log.
 */
import { readlink, realpath, stat } from 'node:fs/promises'
import { basename, join, resolve } from 'node:path'
import { checkConfig, hubCacheDir, hubCacheDirOrigin, hubEndpoint, hubOffline, hubToken, loadConfig, type ModelforgeConfig } from '../lib/env.js'
import { errnoCode, IntegrityError, NotFoundError, osFailure, UsageError } from '../lib/errors.js'
import { sha256File } from '../lib/hash.js'
import { formatBytes, planSteps, runStep, type Progress } from '../lib/progress.js'
import { listFiles, type TreeEntry } from '../lib/tree.js'
import { blobId, listRepoFiles, resolveRevision, type RemoteFile } from './api.js'
import { appendAudit } from './audit.js'
import {
  COMMIT_PREFIX_RE,
  checkCacheDir,
  COMMIT_RE,
  isDirectory,
  readTree,
  repoCache,
  resolveCachedCommit,
  snapshotDir,
  snapshotFile,
  validateRepoId,
  validateRevision,
  writeRef,
  writeTree,
  type RepoCache,
  type TreeCache,
} from './cache.js'
import { downloadBlobInThread } from './blob-thread.js'
import { downloadBlob } from './download.js'
import { createHasher } from '../lib/blob-hasher.js'
import { CancelledError, HubHttp, redact, type RetryOptions } from './http.js'
import { acquireLock } from './lock.js'
import { checkApproval, checkSourceAllowed } from './policy.js'
import { isLiteral, selectPaths } from './select.js'
import { linkSnapshot } from './snapshot.js'

export interface FetchOptions {
  /** Branch, tag or 40-hex commit (default "main"). */
  revision?: string
  /** Globs of files to fetch instead of the default set (config, tokenizer, weights, ONNX files). */
  include?: string[]
  /** Globs of files to leave out. */
  exclude?: string[]
  /** Never touch the network (default: HF_HUB_OFFLINE). */
  offline?: boolean
  /** Ask the Hub for the revision's current commit even when refs/ knows one. */
  refresh?: boolean
  /** Default: HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub. */
  cacheDir?: string
  /** Default: HF_ENDPOINT, else https://huggingface.co. */
  endpoint?: string
  /** Default: HF_TOKEN. Sent only to the endpoint's origin and never printed. */
  token?: string
  /** --yes: approves the download when the policy requires approval. */
  approved?: boolean
  /** --verify: re-hash every file of the result from the cache; a mismatch is exit 4 (CACHE_CORRUPT). */
  verify?: boolean
  /** Default: loadConfig() (MODELFORGE_CONFIG); either way checked by its keys (CONFIG_INVALID, exit 4). */
  config?: ModelforgeConfig
  /** Where the download reports progress (one step, a sub-step per file); silent when absent. */
  progress?: Progress
  /** Files downloaded at once (default 4). */
  concurrency?: number
  retry?: RetryOptions
  stallTimeoutMs?: number
  lockTimeoutMs?: number
  /** Files from this size on are hashed in a worker thread (default 32 MiB). */
  hashWorkerMinBytes?: number
  /** fsync every blob before it gets its name (default: MODELFORGE_FSYNC=1). */
  durable?: boolean
  /** Files from this size on are downloaded in a worker thread (default 32 MiB; see blob-thread.ts). */
  threadMinBytes?: number
}

const THREAD_MIN_BYTES = 32 * 1024 * 1024

export interface FetchedFile {
  path: string
  size: number
  /** The blob id: sha256 for LFS files, git blob sha1 for the others. */
  blob: string
  hashAlgorithm: 'sha256' | 'git-sha1'
  sha256?: string
  /**
   * Where sha256 comes from: 'content' when this run hashed the bytes (downloaded, a non-LFS file, or
   * --verify), 'listing' for an LFS file found in the cache, whose sha256 is its listed id (blob name) and is
   * not recomputed on every run.
   */
  sha256From: 'content' | 'listing'
  /** Already in the cache before this fetch. */
  fromCache: boolean
}

export interface FetchResult {
  source: 'hub' | 'local'
  repo: string
  revision?: string
  commit?: string
  /** The directory to read the model from (snapshots/<commit> or the local directory). */
  snapshot: string
  cacheDir?: string
  endpoint?: string
  files: FetchedFile[]
  bytesDownloaded: number
  /** Bytes of partial files from an earlier, interrupted fetch that were reused. */
  bytesResumed: number
  requests: number
  /** True when the cache satisfied the request without any network access. */
  fromCache: boolean
  /** Present (true) when --verify re-hashed every file of the result and each matched its id. */
  verified?: true
  /** What did not stop the fetch but should be known (a damaged blob downloaded again, a file --verify could not check). */
  warnings?: string[]
}

const BLOB_RE = /^([0-9a-f]{40}|[0-9a-f]{64})$/

function listingFromTree(tree: TreeCache): RemoteFile[] {
  return Object.entries(tree.files).map(([path, f]) => ({ path, size: f.size, oid: f.blob_id, lfsSha256: f.lfs_sha256, xetHash: f.xet_hash }))
}

function treeFromListing(files: RemoteFile[]): TreeCache {
  const out: TreeCache = { format_version: 1, files: {} }
  for (const f of [...files].sort((a, b) => (a.path < b.path ? -1 : 1))) {
    out.files[f.path] = {
      size: f.size,
      blob_id: f.oid,
      ...(f.lfsSha256 ? { lfs_sha256: f.lfsSha256, lfs_size: f.size } : {}),
      ...(f.xetHash ? { xet_hash: f.xetHash } : {}),
    }
  }
  return out
}

/** Follows links: a snapshot file is a symlink into blobs/, and a local model directory may be a snapshot. */
async function sha256Of(path: string): Promise<string> {
  return (await sha256File(path, { followSymlinks: true })).sha256
}

/** Files under a directory, following symlinks (snapshots are made of them), sorted by path. */
function walk(root: string): Promise<TreeEntry[]> {
  return listFiles(root, { followSymlinks: true, skip: ['.git'] })
}

interface CacheState {
  /** Files wanted from the cache (known when a listing exists, else what the snapshot holds). */
  wanted: RemoteFile[]
  missing: string[]
  /** Files that are there but not as listed (of another size). */
  damaged: Damaged[]
}

/** A cached file that is not what its listing says. */
interface Damaged {
  path: string
  blob: string
  problem: string
  /** Its size, when that is what is wrong. */
  size?: number
}

/** What the snapshot of a commit holds of the wanted selection. */
async function cacheState(repo: RepoCache, commit: string, listing: RemoteFile[] | undefined, options: FetchOptions): Promise<CacheState> {
  if (listing) {
    const byPath = new Map(listing.map((f) => [f.path, f]))
    const wanted = selectPaths([...byPath.keys()], options).map((p) => byPath.get(p)!)
    const missing: string[] = []
    const damaged: Damaged[] = []
    for (const f of wanted) {
      const s = await stat(snapshotFile(repo, commit, f.path)).catch(() => undefined)
      if (!s?.isFile()) missing.push(f.path)
      // A blob only gets its name once verified, so one of another size was damaged since: not missing.
      else if (s.size !== f.size) damaged.push({ path: f.path, blob: blobId(f), problem: `holds ${s.size} bytes, the listing says ${f.size}`, size: s.size })
    }
    if (wanted.length === 0) missing.push(...(options.include ?? ['(default file set)']))
    return { wanted, missing, damaged }
  }
  // No listing (a cache written by an older huggingface_hub or another tool): judge by what the snapshot holds.
  const dir = snapshotDir(repo, commit)
  if (!(await isDirectory(dir))) return { wanted: [], missing: ['snapshot'], damaged: [] }
  const present = (await walk(dir)).map((e) => e.rel)
  const wanted: RemoteFile[] = []
  for (const path of selectPaths(present, options)) {
    const file = snapshotFile(repo, commit, path)
    const id = basename(await readlink(file).catch(() => ''))
    const size = (await stat(file)).size
    wanted.push(BLOB_RE.test(id) ? { path, size, oid: id.length === 40 ? id : '', lfsSha256: id.length === 64 ? id : undefined } : { path, size, oid: '' })
  }
  const missing = (options.include ?? []).filter((p) => isLiteral(p) && !present.includes(p))
  if (wanted.length === 0) missing.push(...(options.include ?? ['(default file set)']))
  return { wanted, missing, damaged: [] }
}

async function describeCached(repo: RepoCache, commit: string, files: RemoteFile[]): Promise<FetchedFile[]> {
  const out: FetchedFile[] = []
  for (const f of files) {
    const id = f.oid || f.lfsSha256 ? blobId(f) : ''
    const lfs = Boolean(f.lfsSha256)
    out.push({
      path: f.path,
      size: f.size,
      blob: id,
      hashAlgorithm: lfs ? 'sha256' : 'git-sha1',
      sha256: lfs ? f.lfsSha256 : await sha256Of(snapshotFile(repo, commit, f.path)),
      sha256From: lfs ? 'listing' : 'content',
      fromCache: true,
    })
  }
  return out
}

function cacheCorrupt(repo: RepoCache, revision: string, commit: string, damaged: Damaged[]): IntegrityError {
  const blobs = [...new Set(damaged.filter((d) => d.blob).map((d) => join(repo.blobsDir, d.blob)))]
  const files = damaged.length === 1 ? 'cached file' : 'cached files'
  return new IntegrityError(`${damaged.length} ${files} of ${repo.repoId}@${revision} no longer match: ${damaged.map((d) => `${d.path} (${d.problem})`).join('; ')}`, {
    code: 'CACHE_CORRUPT',
    hint: `${blobs.length > 0 ? `Remove ${blobs.join(' ')} and run` : 'Run'} \`modelforge fetch ${repo.repoId} --revision ${revision}\` with network access to download ${damaged.length === 1 ? 'it' : 'them'} again.`,
    details: { repo: repo.repoId, revision, commit, files: damaged },
  })
}

/**
 * --verify: every file of the result hashed again from the cache (through the snapshot's links) with the
 * algorithm of its id; the files with sha256From 'content', or the damaged ones.
 */
async function verifyFiles(repo: RepoCache, commit: string, files: FetchedFile[], options: FetchOptions): Promise<{ files: FetchedFile[]; damaged: Damaged[]; warnings: string[] }> {
  const out: FetchedFile[] = []
  const damaged: Damaged[] = []
  const warnings: string[] = []
  for (const f of files) {
    const link = snapshotFile(repo, commit, f.path)
    let path: string
    try {
      path = await realpath(link)
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw osFailure(err, `verifying ${f.path}`, link)
      damaged.push({ path: f.path, blob: f.blob, problem: 'its blob is missing' })
      continue
    }
    const size = (await stat(path)).size
    if (size !== f.size) {
      damaged.push({ path: f.path, blob: f.blob, problem: `holds ${size} bytes, the listing says ${f.size}` })
      continue
    }
    const hasher = createHasher(path, f.hashAlgorithm, size, options.hashWorkerMinBytes)
    let digests
    try {
      await hasher.prefix(size)
      digests = await hasher.finish()
    } finally {
      await hasher.dispose()
    }
    if (!f.blob) {
      warnings.push(`${f.path}: the cache records no blob id for it (its snapshot file is no link into blobs/), so its sha256 was computed but not checked`)
    } else if (digests.digest !== f.blob) {
      damaged.push({ path: f.path, blob: f.blob, problem: `its ${f.hashAlgorithm === 'sha256' ? 'sha256' : 'git blob sha1'} is ${digests.digest}, not ${f.blob}` })
      continue
    }
    out.push({ ...f, sha256: digests.sha256, sha256From: 'content' })
  }
  return { files: out, damaged, warnings }
}

/** The result with --verify applied (exit 4 when anything no longer matches) and the warnings, if any. */
async function finish(repo: RepoCache, revision: string, result: FetchResult, warnings: string[], options: FetchOptions): Promise<FetchResult> {
  if (options.verify) {
    const checked = await verifyFiles(repo, result.commit!, result.files, options)
    if (checked.damaged.length > 0) throw cacheCorrupt(repo, revision, result.commit!, checked.damaged)
    result = { ...result, files: checked.files, verified: true }
    warnings.push(...checked.warnings)
  }
  return warnings.length > 0 ? { ...result, warnings } : result
}

/** A local model directory: nothing is fetched; the files are listed with their sha256. */
async function localSource(dir: string): Promise<FetchResult> {
  const root = resolve(dir)
  const files: FetchedFile[] = []
  for (const e of await walk(root)) {
    const sha256 = await sha256Of(e.abs)
    files.push({ path: e.rel, size: e.size, blob: sha256, hashAlgorithm: 'sha256', sha256, sha256From: 'content', fromCache: true })
  }
  return { source: 'local', repo: root, snapshot: root, files, bytesDownloaded: 0, bytesResumed: 0, requests: 0, fromCache: true }
}

function resolveUrl(endpoint: string, repoId: string, commit: string, path: string): string {
  return `${endpoint}/${repoId}/resolve/${commit}/${path.split('/').map(encodeURIComponent).join('/')}`
}

/**
 * HF_ENDPOINT / endpoint must be an http(s) URL without user info: credentials in it would be echoed by the
 * result, the audit log and error messages (fetch() refuses such URLs anyway); the token goes in HF_TOKEN.
 */
function checkEndpoint(endpoint: string): string {
  let url: URL | undefined
  try {
    url = new URL(endpoint)
  } catch {
    url = undefined
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.username || url.password) {
    throw new UsageError(`Invalid Hub endpoint "${redact(endpoint)}": expected an http(s) URL without credentials`, {
      code: 'INVALID_ENDPOINT',
      hint: 'Set HF_ENDPOINT to the Hub URL, e.g. https://huggingface.co, and pass the token in HF_TOKEN or --token.',
    })
  }
  return endpoint
}

/**
 * The token as huggingface_hub cleans it (CR/LF removed, whitespace trimmed: a token file saved with CRLF
 * still works). Anything else that cannot go in an HTTP header is refused here, without echoing it: fetch()
 * would throw a TypeError that quotes the whole header value, token included.
 */
function cleanToken(token: string | undefined): string | undefined {
  const clean = token?.replace(/[\r\n]/g, '').trim()
  if (!clean) return undefined
  if (!/^[\x21-\x7e]+$/.test(clean)) {
    throw new UsageError('The Hub token (HF_TOKEN or --token) holds characters that cannot be sent in an HTTP header', {
      code: 'INVALID_TOKEN',
      hint: 'Copy the token again from https://huggingface.co/settings/tokens (it looks like hf_...), without spaces or other characters around it.',
    })
  }
  return clean
}

export async function fetchModel(source: string, options: FetchOptions = {}): Promise<FetchResult> {
  if (await isDirectory(source)) return localSource(source)
  validateRepoId(source)
  const repoId = source
  const revision = options.revision ?? 'main'
  validateRevision(revision)
  const offline = options.offline ?? hubOffline()
  if (offline && options.refresh) {
    throw new UsageError('--refresh needs the network and cannot be combined with --offline / HF_HUB_OFFLINE', {
      code: 'USAGE_OFFLINE_REFRESH',
      hint: 'Drop --refresh, or unset HF_HUB_OFFLINE.',
    })
  }
  // Every key the policy reads is checked by its name first, from the file or from a library caller.
  const configFile = options.config === undefined ? process.env.MODELFORGE_CONFIG : undefined
  const config = options.config === undefined ? loadConfig() : checkConfig(options.config, 'the config option of fetchModel')
  checkSourceAllowed(repoId, config, configFile)

  const cacheDir = options.cacheDir ? resolve(options.cacheDir) : hubCacheDir()
  await checkCacheDir(cacheDir, hubCacheDirOrigin(options.cacheDir))
  const endpoint = checkEndpoint((options.endpoint ?? hubEndpoint()).replace(/\/+$/, ''))
  const repo = repoCache(cacheDir, repoId)
  const base = { source: 'hub' as const, repo: repoId, revision, cacheDir, endpoint }

  // 2. Offline-first: the cache alone.
  let commit = options.refresh ? undefined : await resolveCachedCommit(repo, revision)
  let listing: RemoteFile[] | undefined
  let missing: string[] = [`refs/${revision}`]
  let damaged: Damaged[] = []
  if (commit) {
    const tree = await readTree(repo, commit)
    listing = tree ? listingFromTree(tree) : undefined
    // Without trees/<commit>.json (a snapshot written by hf_hub_download, e.g. AutoConfig.from_pretrained,
    // holds config.json alone) only the Hub's listing tells whether the snapshot is complete: online, ask for
    // it; offline, accept what the snapshot holds, as huggingface_hub's snapshot_download does.
    const state = listing || offline ? await cacheState(repo, commit, listing, options) : { wanted: [], missing: [`trees/${commit}.json`], damaged: [] }
    if (state.missing.length === 0 && state.damaged.length === 0) {
      return finish(repo, revision, {
        ...base,
        commit,
        snapshot: snapshotDir(repo, commit),
        files: await describeCached(repo, commit, state.wanted),
        bytesDownloaded: 0,
        bytesResumed: 0,
        requests: 0,
        fromCache: true,
      }, [], options)
    }
    missing = state.missing
    damaged = state.damaged
  }

  // 3. Offline and not satisfied: a damaged file is said as such, before what is missing.
  if (offline && damaged.length > 0) throw cacheCorrupt(repo, revision, commit!, damaged)
  if (offline) {
    const what = commit ? `files missing from snapshot ${commit}: ${missing.join(', ')}` : `no cached commit for revision "${revision}" (refs/${revision} is absent)`
    throw new NotFoundError(`${repoId}@${revision} is not fully in the cache and the Hub may not be contacted (offline): ${what}`, {
      code: 'NOT_CACHED',
      hint: `Fetch it once with network access (without --offline / HF_HUB_OFFLINE=1), or check --cache-dir (${cacheDir}).`,
      details: { repo: repoId, revision, commit, missing, cacheDir },
    })
  }

  // 4. Online.
  checkApproval(repoId, config, options.approved ?? false)
  const http = new HubHttp({ endpoint, token: cleanToken(options.token ?? hubToken()), retry: options.retry, context: { repoId, revision } })
  if (!commit) {
    commit = await resolveRevision(http, repoId, revision)
    const tree = await readTree(repo, commit)
    listing = tree ? listingFromTree(tree) : undefined
  }
  if (!listing) listing = await listRepoFiles(http, repoId, commit)
  const byPath = new Map(listing.map((f) => [f.path, f]))
  const selected = selectPaths([...byPath.keys()], options).map((p) => byPath.get(p)!)
  if (selected.length === 0) {
    throw new NotFoundError(`No file of ${repoId}@${revision} matches ${options.include?.length ? `--include ${options.include.join(' ')}` : 'the default file set'}`, {
      code: 'NO_MATCHING_FILES',
      hint: `The repository has: ${[...byPath.keys()].slice(0, 20).join(', ')}${byPath.size > 20 ? ', ...' : ''}. Adjust --include / --exclude.`,
      details: { repo: repoId, revision, commit },
    })
  }

  const files = await downloadAll(http, repo, commit, selected, options)
  const snapshot = await linkSnapshot(
    repo,
    commit,
    selected.map((f) => ({ path: f.path, blobId: blobId(f) })),
  )
  // Only now, with every file in place, do the listing and the ref make the snapshot findable.
  await writeTree(repo, commit, treeFromListing(listing))
  // A commit, full or abbreviated, is no ref: refs/ holds branch and tag names only.
  if (!COMMIT_RE.test(revision) && !(COMMIT_PREFIX_RE.test(revision) && commit.startsWith(revision))) await writeRef(repo, revision, commit)
  const bytesDownloaded = files.reduce((n, f) => n + f.downloaded, 0)
  const bytesResumed = files.reduce((n, f) => n + f.resumedFrom, 0)
  const fetched: FetchedFile[] = files.map((f) => f.file)
  if (fetched.some((f) => !f.fromCache)) {
    await appendAudit(cacheDir, {
      event: 'fetch',
      repo: repoId,
      revision,
      commit,
      endpoint,
      bytesDownloaded,
      files: fetched.map((f) => ({ path: f.path, size: f.size, blob: f.blob, sha256: f.sha256, downloaded: !f.fromCache })),
    })
  }
  // Online, a blob of the wrong size is downloaded again (downloadBlob replaces it): said, not hidden.
  const warnings = damaged.map((d) => `${d.path}: the cached blob held ${d.size} bytes, the listing says ${byPath.get(d.path)!.size}; it was downloaded again`)
  return finish(repo, revision, { ...base, commit, snapshot, files: fetched, bytesDownloaded, bytesResumed, requests: http.requests, fromCache: false }, warnings, options)
}

interface Downloaded {
  file: FetchedFile
  downloaded: number
  resumedFrom: number
}

async function fetchOne(
  http: HubHttp,
  repo: RepoCache,
  commit: string,
  f: RemoteFile,
  options: FetchOptions,
  onBytes: (delta: number) => void,
  signal: AbortSignal,
): Promise<Downloaded> {
  const id = blobId(f)
  const lfs = Boolean(f.lfsSha256)
  // A blob only ever gets its name once verified (by us or huggingface_hub), so one that is there needs no
  // lock: waiting on the lock of a blob another process already finished would only cost time.
  const blobPath = join(repo.blobsDir, id)
  const present = await stat(blobPath).catch(() => undefined)
  if (present?.isFile() && present.size === f.size) {
    const sha256 = lfs ? id : await sha256Of(blobPath)
    return {
      file: { path: f.path, size: f.size, blob: id, hashAlgorithm: lfs ? 'sha256' : 'git-sha1', sha256, sha256From: lfs ? 'listing' : 'content', fromCache: true },
      downloaded: 0,
      resumedFrom: 0,
    }
  }
  const lock = await acquireLock(join(repo.locksDir, `${id}.lock`), { timeoutMs: options.lockTimeoutMs })
  try {
    const download = f.size >= (options.threadMinBytes ?? THREAD_MIN_BYTES) ? downloadBlobInThread : downloadBlob
    const r = await download({
      http,
      url: resolveUrl(http.endpoint, repo.repoId, commit, f.path),
      path: f.path,
      blobPath: join(repo.blobsDir, id),
      size: f.size,
      algorithm: lfs ? 'sha256' : 'git-sha1',
      expected: id,
      onBytes,
      stallTimeoutMs: options.stallTimeoutMs,
      hashWorkerMinBytes: options.hashWorkerMinBytes,
      durable: options.durable ?? process.env.MODELFORGE_FSYNC === '1',
      signal,
    })
    const sha256 = r.sha256 ?? (await sha256Of(join(repo.blobsDir, id)))
    // A blob another process finished meanwhile is not re-hashed: an LFS one's sha256 is then its id.
    const sha256From = r.reused && lfs ? 'listing' : 'content'
    return {
      file: { path: f.path, size: f.size, blob: id, hashAlgorithm: lfs ? 'sha256' : 'git-sha1', sha256, sha256From, fromCache: r.reused },
      downloaded: r.downloaded,
      resumedFrom: r.resumedFrom,
    }
  } finally {
    await lock.release()
  }
}

/** Downloads what is missing, a few files at a time, reporting bytes per file and in total. */
async function downloadAll(http: HubHttp, repo: RepoCache, commit: string, files: RemoteFile[], options: FetchOptions): Promise<Downloaded[]> {
  const progress = options.progress
  const concurrency = options.concurrency ?? 4
  const results: Downloaded[] = new Array(files.length)
  // The first failure stops the other downloads (their partial files stay for a resume) and is what the
  // caller sees; nothing keeps running in the background once fetchModel has settled.
  const stop = new AbortController()
  let failure: unknown
  const total = files.reduce((n, f) => n + f.size, 0)
  let done = 0
  const label = `${repo.repoId}@${commit.slice(0, 10)}`
  const totalTitle = (): string => `Fetch ${label}: ${files.length} files, ${formatBytes(done)} / ${formatBytes(total)}`
  planSteps(progress, [{ id: 'fetch', title: totalTitle() }])
  await runStep(progress, 'fetch', async (parent) => {
    const ids = parent.plan(files.map((f) => ({ id: f.path, title: `${f.path} (${formatBytes(f.size)})` })), concurrency)
    let next = 0
    const worker = async (): Promise<void> => {
      while (failure === undefined && next < files.length) {
        const i = next++
        const f = files[i]!
        let mine = 0
        try {
          results[i] = await runStep(progress, ids[i]!, async (task) => {
            const r = await fetchOne(http, repo, commit, f, options, (delta) => {
              mine += delta
              done += delta
              task.bytes(mine, f.size)
              parent.title(totalTitle())
            }, stop.signal)
            if (r.file.fromCache && mine === 0) done += f.size
            parent.title(totalTitle())
            return r
          }, {
            title: (r) => `${f.path} ${formatBytes(f.size)} ${r.file.fromCache ? '(cached)' : 'verified'}`,
            skipped: (err) => (err instanceof CancelledError ? 'cancelled: another file failed' : undefined),
          })
        } catch (err) {
          if (failure === undefined && !(err instanceof CancelledError)) {
            failure = err
            stop.abort()
          }
        }
      }
    }
    await Promise.all(Array.from({ length: Math.min(concurrency, files.length) }, worker))
    if (failure !== undefined) throw failure
  }, { title: totalTitle })
  return results
}
