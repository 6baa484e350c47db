/**
 * `--exporter repo`: the repository already ships ONNX. Optimum and sentence-transformers put it at
 * model.onnx or onnx/model.onnx, with variants named model_<variant>.onnx (model_fp16.onnx,
 * model_quantized.onnx, model_O3.onnx, ...). The model is copied with the external data files it names
 * inside itself (never a guessed name), and checked by the smoke run like any export.
 */
import { copyFile, readdir } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { NotFoundError, UsageError } from '../../lib/errors.js'
import { externalDataFiles } from '../../onnx/external-data.js'
import { readModel, num, type ModelProto } from '../../onnx/proto.js'
import { type ModelExporter } from '../exporter.js'
import { smokeHintsFromConfig } from '../smoke.js'
import { ensureDir } from '../../lib/fs.js'
import { declaredOutputs, taskOutputProblem } from '../task-outputs.js'


export interface RepoOnnx {
  /** Path relative to the model directory, e.g. onnx/model_fp16.onnx. */
  path: string
  variant: string
}

const VARIANT_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/

export function variantFileName(variant = 'fp32'): string {
  if (!VARIANT_RE.test(variant)) {
    throw new UsageError(`--variant ${JSON.stringify(variant)} is not a variant name`, {
      code: 'INVALID_VARIANT',
      hint: 'Variants are suffixes of model_<variant>.onnx, e.g. fp16, quantized, int8, O3; fp32 means model.onnx.',
    })
  }
  return variant === 'fp32' ? 'model.onnx' : `model_${variant}.onnx`
}

/** Every shipped ONNX model in the usual places, as variants. */
export async function listRepoOnnx(dir: string): Promise<RepoOnnx[]> {
  const found: RepoOnnx[] = []
  for (const sub of ['onnx', '.']) {
    let names: string[]
    try {
      names = await readdir(join(dir, sub))
    } catch {
      continue
    }
    for (const name of names.sort()) {
      const m = /^model(?:_(.+))?\.onnx$/.exec(name)
      if (m) found.push({ path: sub === '.' ? name : `${sub}/${name}`, variant: m[1] ?? 'fp32' })
    }
  }
  return found
}

/** The shipped model for a variant: onnx/<file> first (transformers.js, sentence-transformers), then <file>. */
export function findRepoOnnx(dir: string, variant?: string): string | undefined {
  const file = variantFileName(variant)
  for (const candidate of [`onnx/${file}`, file]) if (existsSync(join(dir, candidate))) return candidate
  return undefined
}

export async function requireRepoOnnx(dir: string, variant?: string): Promise<string> {
  const found = findRepoOnnx(dir, variant)
  if (found) return found
  const available = await listRepoOnnx(dir)
  throw new NotFoundError(`${dir} ships no ${variantFileName(variant)} (looked in onnx/ and the top level)`, {
    code: 'REPO_ONNX_NOT_FOUND',
    hint: available.length > 0
      ? `Available variants: ${available.map((a) => `${a.variant} (${a.path})`).join(', ')}; pick one with --variant.`
      : 'The repository has no ONNX files; use --exporter native or --exporter optimum.',
    details: { available },
  })
}

export interface CopiedRepoModel {
  model: ModelProto
  opset: number
  externalData: string[]
}

/** Copies the shipped model to `<outDir>/model.onnx` and its external data files under their stored names. */
export async function copyRepoOnnx(dir: string, relPath: string, outDir: string): Promise<CopiedRepoModel> {
  const source = join(dir, relPath)
  const model = await readModel(source)
  const external = externalDataFiles(model)
  for (const location of external) {
    const from = join(dirname(source), location)
    if (!existsSync(from)) {
      throw new NotFoundError(`${relPath} stores its weights in ${location}, which is missing next to it`, {
        code: 'EXTERNAL_DATA_MISSING',
        hint: `Fetch ${dirname(relPath) === '.' ? '' : dirname(relPath) + '/'}${location} too (modelforge fetch <repo> --include '${location}').`,
      })
    }
  }
  // copyFile follows the HF cache's snapshot symlinks, so the output holds real files.
  await copyFile(source, join(outDir, 'model.onnx'))
  for (const location of external) {
    await ensureDir(dirname(join(outDir, location)))
    await copyFile(join(dirname(source), location), join(outDir, location))
  }
  const opset = num(model.opsetImport?.find((o) => !o.domain || o.domain === 'ai.onnx')?.version)
  return { model, opset, externalData: external }
}

export const repoExporter: ModelExporter = {
  name: 'repo',
  needsConfig: false,

  async fits({ sourceDir, task, options }) {
    const shipped = findRepoOnnx(sourceDir, options.variant)
    // A shipped model exported for another task is never handed back under this one.
    const problem = shipped ? taskOutputProblem(task, declaredOutputs(await readModel(join(sourceDir, shipped)))) : undefined
    if (shipped && !problem) return { fits: true, reason: `the repository ships ${shipped}` }
    if (options.variant && options.variant !== 'fp32') {
      // A non-fp32 variant can only come from the repository: exporting fp32 natively instead would hand back
      // something else than what was asked for.
      const rel = await requireRepoOnnx(sourceDir, options.variant)
      throw new UsageError(`${rel} ${problem}, which task ${task} needs`, {
        code: 'VARIANT_TASK_MISMATCH',
        hint: `Pass the task this file was exported for (--task), or drop --variant to export ${task} with another exporter.`,
      })
    }
    return { fits: false, reason: shipped ? `${shipped} ${problem}` : 'the repository ships no ONNX model' }
  },

  async produce({ sourceDir, config, staging, options }, step) {
    const rel = await requireRepoOnnx(sourceDir, options.variant)
    step.title(`Copying ${rel}`)
    const copied = await copyRepoOnnx(sourceDir, rel, staging)
    if (options.opset !== undefined && options.opset !== copied.opset) {
      throw new UsageError(`${rel} is opset ${copied.opset}, not the requested --opset ${options.opset}; the repo exporter copies models as they are`, {
        code: 'OPSET_MISMATCH',
        hint: 'Drop --opset, or use --exporter native / optimum to export at another opset.',
      })
    }
    return {
      opset: copied.opset,
      modelType: config?.model_type,
      externalData: copied.externalData,
      smoke: smokeHintsFromConfig(config),
      outputs: declaredOutputs(copied.model),
      shipped: rel,
    }
  },
}
