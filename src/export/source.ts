/**
 * What `export <model>` points at: a local model directory (save_pretrained output, a cache snapshot), or a
 * repo id resolved offline through the Hugging Face cache (the fetch area's resolveCachedSnapshot).
 */
import { stat } from 'node:fs/promises'
import { isAbsolute, resolve } from 'node:path'
import { errnoCode, NotFoundError, UsageError } from '../lib/errors.js'
import { hubCacheDir } from '../lib/env.js'
import { parseRepoId, resolveCachedSnapshot } from '../hub/index.js'

export interface ModelSource {
  kind: 'dir' | 'hub'
  /** The directory holding config.json and the weights. */
  dir: string
  repo?: string
  revision?: string
}

/**
 * What can only be meant as a path (absolute, starting with "." or "~", a backslash, folders in folders):
 * a missing directory, not a repo id. Everything else is parsed as a repo id, as fetch parses it.
 */
function onlyAPath(text: string): boolean {
  return isAbsolute(text) || /^[.~]/.test(text) || text.includes('\\') || text.split('/').length > 2
}

export async function resolveModelSource(model: string, options: { revision?: string; cacheDir?: string } = {}): Promise<ModelSource> {
  let isDir = false
  try {
    const s = await stat(model)
    if (!s.isDirectory()) {
      throw new UsageError(`${model} is a file; export takes a model directory or a repo id`, {
        code: 'MODEL_NOT_DIRECTORY',
        hint: 'Give the directory that holds config.json and the weights (for a single .onnx file use validate or inspect).',
      })
    }
    isDir = true
  } catch (err) {
    if (err instanceof UsageError) throw err
    if (errnoCode(err) !== 'ENOENT') throw err
  }
  if (isDir) {
    if (options.revision) {
      throw new UsageError(`--revision applies to repo ids, but ${model} is a local directory`, {
        code: 'REVISION_WITH_DIRECTORY',
        hint: 'Drop --revision, or give the repo id ([org/]name) to resolve it through the Hugging Face cache.',
      })
    }
    return { kind: 'dir', dir: resolve(model) }
  }
  if (onlyAPath(model)) {
    throw new NotFoundError(`${model} is neither a directory nor a repo id ([org/]name)`, {
      code: 'MODEL_NOT_FOUND',
      hint: 'Give a local model directory, or a repo id fetched with `modelforge fetch <repo id>`.',
    })
  }
  const repo = parseRepoId(model).id
  const revision = options.revision ?? 'main'
  const dir = await resolveCachedSnapshot(repo, { revision, cacheDir: options.cacheDir ?? hubCacheDir() })
  return { kind: 'hub', dir, repo, revision }
}
