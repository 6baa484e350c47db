/**
 * The staging directory of an export: a fresh directory inside --out (so the final moves are renames on one
 * file system) that the exporter writes into, with the tokenizer and pipeline files next to the model. Its
 * files move into --out only after the smoke run passed; a failed export leaves --out as it was.
 */
import { cp, mkdtemp, readdir, rename, rm, rmdir, stat } from 'node:fs/promises'
import { listFiles as listTree } from '../lib/tree.js'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { ConflictError, errnoCode, osFailure, UsageError } from '../lib/errors.js'
import { tryLock, type FileLock } from '../lib/lock.js'
import { externalDataFiles } from '../onnx/external-data.js'
import { readModel } from '../onnx/proto.js'
import { type ModelContext } from './exporter.js'
import { ensureDir } from '../lib/fs.js'

export interface ExportedFile {
  path: string
  size: number
}

/** Tokenizer and pipeline files copied next to the model when the source has them. */
const SIDE_FILES = [
  'config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json',
  'added_tokens.json', 'vocab.txt', 'vocab.json', 'merges.txt', 'sentencepiece.bpe.model', 'spiece.model',
  'tokenizer.model', 'modules.json', 'sentence_bert_config.json', 'config_sentence_transformers.json',
  '1_Pooling/config.json',
]

/** --out must be a directory or not exist yet (export creates it); checked before any work. */
export async function checkOutDirectory(out: string): Promise<void> {
  let reason: string | undefined
  try {
    if (!(await stat(out)).isDirectory()) reason = 'it is a file'
  } catch (err) {
    const code = errnoCode(err)
    if (code === 'ENOENT') return
    if (code !== 'ENOTDIR') throw osFailure(err, 'looking at --out', out)
    reason = 'a part of the path is a file'
  }
  if (reason) {
    throw new UsageError(`--out ${out} is not a directory: ${reason}`, {
      code: 'OUT_NOT_DIRECTORY',
      hint: 'Point --out at a directory (export creates it when it does not exist), or move the file out of the way.',
      details: { out },
    })
  }
}

export const OUT_LOCK = '.modelforge-export.lock'

/**
 * The lock of --out (lib/lock.ts), held from the last look at --out to the end of the commit: two exports
 * into one --out cannot both find it free and then both move their files in. Never waits: the second
 * export fails (exit 5). A lock left by a process that died is taken over.
 */
export function lockOut(out: string): FileLock {
  const path = join(out, OUT_LOCK)
  let attempt
  try {
    attempt = tryLock(path, { record: { op: 'export' } })
  } catch (err) {
    throw osFailure(err, 'locking --out', path)
  }
  if (attempt.lock) return attempt.lock
  const holder = attempt.holder
  throw new ConflictError(`Another export is writing to ${out}${holder ? ` (pid ${holder.pid} on ${holder.host})` : ''}${attempt.contended ? ': other exports keep taking its lock' : ''}`, {
    code: 'OUT_LOCKED',
    hint: 'Wait for it to finish, or export into another --out. A lock whose process has died is taken over by the next export.',
    details: { out, lock: path, holder: holder ?? undefined },
  })
}

const STAGING_PREFIX = '.modelforge-export-'

/**
 * A new staging directory in --out. Called under the lock of --out (lockOut), so no live export owns any
 * other staging directory there: those are what killed exports left, and they go first.
 */
export async function openStaging(out: string): Promise<string> {
  await ensureDir(out)
  for (const name of await readdir(out)) {
    if (name.startsWith(STAGING_PREFIX)) await rm(join(out, name), { recursive: true, force: true })
  }
  return mkdtemp(join(out, STAGING_PREFIX))
}

/** The staging dir holds only what export wrote (copies, never links), so nothing needs following. */
export async function listFiles(dir: string): Promise<ExportedFile[]> {
  return (await listTree(dir)).map((f) => ({ path: f.rel, size: f.size }))
}

async function copySideFiles(from: string, to: string): Promise<void> {
  for (const rel of SIDE_FILES) {
    const src = join(from, rel)
    const dst = join(to, rel)
    if (!existsSync(src) || existsSync(dst)) continue
    await ensureDir(join(dst, '..'))
    await cp(src, dst, { dereference: true })
  }
}

/**
 * The side files of the model: those of the Transformer module first (its config.json is the model's), then
 * those of a sentence-transformers root that lies elsewhere (modules.json, 1_Pooling/).
 */
export async function stageSideFiles(ctx: ModelContext, staging: string): Promise<void> {
  const transformerDir = ctx.sentenceTransformers?.transformerDir ?? ctx.sourceDir
  await copySideFiles(transformerDir, staging)
  if (transformerDir !== ctx.sourceDir) await copySideFiles(ctx.sourceDir, staging)
}

/** --force: the old model.onnx and the external data files it names go, so no stale weights remain. */
async function removePreviousExport(out: string): Promise<void> {
  const old = join(out, 'model.onnx')
  if (!existsSync(old)) return
  let external: string[] = []
  try {
    external = externalDataFiles(await readModel(old))
  } catch {
    // A broken previous export: only model.onnx itself is known to be ours.
  }
  for (const f of ['model.onnx', ...external]) await rm(join(out, f), { force: true })
}

/** Moves the staged files into --out (after the previous export, with force) and removes the staging dir. */
export async function commitStaging(staging: string, out: string, force = false): Promise<ExportedFile[]> {
  const staged = await listFiles(staging)
  if (force) await removePreviousExport(out)
  for (const f of staged) {
    const dst = join(out, f.path)
    await ensureDir(join(dst, '..'))
    await rename(join(staging, f.path), dst)
  }
  await rm(staging, { recursive: true, force: true })
  return staged
}

/**
 * After a failure: no trace of the export, and an --out it created goes too (rmdir: only when still empty,
 * so after the lock is released).
 */
export async function discardStaging(staging: string | undefined, out: string, outExisted: boolean, lock?: FileLock): Promise<void> {
  if (staging) await rm(staging, { recursive: true, force: true })
  lock?.release()
  if (!outExisted) await rmdir(out).catch(() => undefined)
}
