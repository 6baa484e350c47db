/**
 * The build key: SHA-256 over everything that decides what a build produces, so that running the same
 * build again finds the version it made (manifest build.key) instead of making another one. What goes in
 * is kept beside the key in the manifest (build.key_inputs), so a user can see why two builds differ.
 *
 * The source counts by content: a repo's commit and the id of every file (git blob or LFS sha256), a local
 * directory's file hashes. Calibration data, a calibration cache, a tokenizer and reference outputs given
 * by path count by their bytes too, never by their path.
 */
import { createHash } from 'node:crypto'
import { stat } from 'node:fs/promises'
import { sha256File } from '../lib/hash.js'
import { listFiles } from '../lib/tree.js'
import { modelforgeVersion } from '../lib/version.js'
import { osFailure } from '../lib/errors.js'
import type { FetchResult } from '../hub/fetch.js'
import type { BuildEngineOptions, CheckedOptions } from './options.js'
import type { TrtVersion } from '../builders/types.js'

export const BUILD_KEY_SCHEMA = 'modelforge.build-key/v1'

/** JSON with object keys sorted at every depth and undefined members dropped: one text per value. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value)
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`
  const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`
}

/** The sha256 of a file, or of a directory's sorted `<sha256>  <path>` lines (what sha256sum prints). */
export async function contentDigest(path: string): Promise<string> {
  try {
    const st = await stat(path)
    if (!st.isDirectory()) return (await sha256File(path, { followSymlinks: true })).sha256
    const lines: string[] = []
    for (const f of await listFiles(path, { followSymlinks: true })) lines.push(`${(await sha256File(f.abs, { followSymlinks: true })).sha256}  ${f.rel}\n`)
    return createHash('sha256').update(lines.join('')).digest('hex')
  } catch (err) {
    throw osFailure(err, 'hashing an input of the build key', path)
  }
}

export interface KeyTools {
  onnxruntime: string
  trtexec?: TrtVersion
}

export async function buildKeyInputs(o: BuildEngineOptions, c: CheckedOptions, source: FetchResult, tools: KeyTools): Promise<Record<string, unknown>> {
  const t = o.transform ?? {}
  const digest = async (p: string | undefined) => (p === undefined ? undefined : contentDigest(p))
  return {
    schema: BUILD_KEY_SCHEMA,
    source: {
      ...(source.source === 'hub' ? { repo: source.repo, commit: source.commit } : { kind: 'local' }),
      files: source.files.map((f) => [f.path, f.sha256 ?? f.blob]).sort(([a], [b]) => (a! < b! ? -1 : a! > b! ? 1 : 0)),
    },
    target: c.target,
    precision: c.precision,
    export: { exporter: o.exporter ?? 'auto', task: o.task, opset: o.opset },
    engine: c.target === 'trt' ? {
      batch: o.batch, seq: o.seq, past: o.past, dims: o.dims, workspaceMiB: o.workspaceMiB,
      builderOptimizationLevel: o.builderOptimizationLevel, hardwareCompatibilityLevel: o.hardwareCompatibilityLevel,
    } : undefined,
    transform: {
      calibData: await digest(t.calibData), calibCache: await digest(t.calibCache), tokenizer: await digest(t.tokenizer),
      method: t.method, percentile: t.percentile, calibBatches: t.calibBatches, batchSize: t.batchSize, seqLen: t.seqLen,
      quantizeAttention: t.quantizeAttention, keepFp32: t.keepFp32, fp16MaxAbs: t.fp16MaxAbs,
    },
    validation: { atol: o.atol, rtol: o.rtol, reference: await digest(o.reference) },
    tools: {
      modelforge: modelforgeVersion(),
      onnxruntime: tools.onnxruntime,
      ...(tools.trtexec ? { tensorrt: tools.trtexec.text + (tools.trtexec.build !== undefined ? ` b${tools.trtexec.build}` : '') } : {}),
    },
  }
}

export function buildKey(inputs: Record<string, unknown>): string {
  return createHash('sha256').update(canonicalJson(inputs)).digest('hex')
}
