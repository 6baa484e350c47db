/**
 * The Hub's HTTP API through @huggingface/hub: revision -> commit (modelInfo with the "sha" field) and the
 * recursive listing of a commit (listFiles, which follows the Link paging). Requests go through HubHttp's
 * fetch (token, counting, retries, error mapping).
 *
 * The library's own cache writer (snapshotDownload / downloadFileToCacheDir) is not used: it writes
 * refs/<revision> before downloading anything, never checks sizes or hashes, names the snapshot of a file
 * fetched by branch after that file's last commit instead of the revision's commit, has no offline mode and
 * downloads without Range resume. See cache.ts, download.ts and snapshot.ts for what we do instead.
 */
import { ExternalError } from '../lib/errors.js'
import { COMMIT_RE, safeRepoPath } from './cache.js'
import type { HubHttp } from './http.js'

/** One file of a repo at a commit, as the tree API lists it. */
export interface RemoteFile {
  path: string
  size: number
  /** git blob sha1 of the file (or of its LFS pointer). */
  oid: string
  /** sha256 of the content for LFS files. */
  lfsSha256?: string
  xetHash?: string
}

/** The name of the file in blobs/: sha256 for LFS files, git blob sha1 for the others (as huggingface_hub). */
export function blobId(file: RemoteFile): string {
  return file.lfsSha256 ?? file.oid
}

function isSafePath(path: string): boolean {
  try {
    safeRepoPath(path)
    return true
  } catch {
    return false
  }
}

/** Loaded on first use: a fetch answered from the cache never needs the library. */
const hubLib = (): Promise<typeof import('@huggingface/hub')> => import('@huggingface/hub')

export async function resolveRevision(http: HubHttp, repoId: string, revision: string): Promise<string> {
  const { modelInfo } = await hubLib()
  const info = await modelInfo({ name: repoId, revision, hubUrl: http.endpoint, fetch: http.fetch, additionalFields: ['sha'] })
  const sha = (info as { sha?: unknown }).sha
  if (typeof sha !== 'string' || !COMMIT_RE.test(sha)) {
    throw new ExternalError(`The Hub did not return a commit for ${repoId}@${revision}`, {
      code: 'HUB_BAD_RESPONSE',
      hint: `Check that HF_ENDPOINT (${http.endpoint}) points at a Hugging Face Hub.`,
    })
  }
  return sha
}

export async function listRepoFiles(http: HubHttp, repoId: string, commit: string): Promise<RemoteFile[]> {
  const { listFiles } = await hubLib()
  const files: RemoteFile[] = []
  for await (const entry of listFiles({ repo: { type: 'model', name: repoId }, revision: commit, recursive: true, hubUrl: http.endpoint, fetch: http.fetch })) {
    if (entry.type !== 'file') continue
    if (!isSafePath(entry.path)) {
      throw new ExternalError(`The Hub's listing of ${repoId}@${commit} has a path that would escape the cache: ${JSON.stringify(entry.path)}`, {
        code: 'HUB_UNSAFE_PATH',
        hint: `Nothing was written. Check that HF_ENDPOINT (${http.endpoint}) points at a Hugging Face Hub, or report the repository.`,
      })
    }
    const oid = entry.oid
    const lfsOid = entry.lfs?.oid
    if (typeof oid !== 'string' || !/^[0-9a-f]{40}$/.test(oid) || typeof entry.size !== 'number' || (lfsOid !== undefined && !/^[0-9a-f]{64}$/.test(lfsOid))) {
      throw new ExternalError(`The Hub's listing of ${repoId}@${commit} has an entry without a valid oid/size: ${entry.path}`, {
        code: 'HUB_BAD_RESPONSE',
        hint: `Check that HF_ENDPOINT (${http.endpoint}) points at a Hugging Face Hub.`,
      })
    }
    files.push({ path: entry.path, size: entry.size, oid, lfsSha256: lfsOid, xetHash: entry.xetHash })
  }
  return files
}
