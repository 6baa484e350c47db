/**
 * The Hugging Face Hub client and its offline-first cache (HF cache layout). Other areas (export, the
 * pipeline) resolve repo ids through resolveCachedSnapshot; fetchModel brings a repo into the cache.
 */
export {
  resolveCachedSnapshot,
  resolveCachedCommit,
  repoCache,
  repoFolderName,
  snapshotDir,
  validateRepoId,
  COMMIT_RE,
  type RepoCache,
  type ResolveCachedOptions,
  type TreeCache,
  type TreeFileEntry,
} from './cache.js'
export { parseRepoId, type RepoId } from './repo-id.js'
export { fetchModel, type FetchOptions, type FetchResult, type FetchedFile } from './fetch.js'
export { selectPaths, defaultPatterns, type SelectOptions } from './select.js'
export { auditLogPath, type AuditEntry } from './audit.js'
