/**
 * `--exporter optimum`: Hugging Face Optimum's exporter (`optimum-cli export onnx`), for every architecture
 * the native exporter does not cover. Run through the one exec wrapper; a missing optimum-cli is an
 * ExternalError (exit 3) with the install command.
 */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { ExternalError } from '../../lib/errors.js'
import { run } from '../../lib/exec.js'
import { externalDataFiles } from '../../onnx/external-data.js'
import { num, readModel } from '../../onnx/proto.js'
import { type ModelExporter } from '../exporter.js'
import { smokeHintsFromConfig } from '../smoke.js'
import { declaredOutputs } from '../task-outputs.js'
import { listFiles } from '../staging.js'

export const OPTIMUM_INSTALL_HINT = 'Install Optimum\'s exporter: pip install "optimum[exporters]" (or "optimum-onnx"), then check that `optimum-cli --help` runs; or use --exporter native for bert, roberta, xlm-roberta and distilbert.'

export interface OptimumOptions {
  task?: string
  opset?: number
  /** Lines of optimum-cli output, for progress. */
  onLine?: (line: string) => void
  optimumCli?: string
}

/** The argv for optimum-cli; sentence-embedding maps to Optimum's sentence_transformers library export. */
export function optimumArgs(modelDir: string, outDir: string, options: OptimumOptions = {}): string[] {
  const args = ['export', 'onnx', '--model', modelDir]
  if (options.task === 'sentence-embedding') args.push('--library-name', 'sentence_transformers', '--task', 'feature-extraction')
  else if (options.task) args.push('--task', options.task)
  if (options.opset) args.push('--opset', String(options.opset))
  args.push(outDir)
  return args
}

export async function runOptimum(modelDir: string, outDir: string, options: OptimumOptions = {}): Promise<void> {
  await run(options.optimumCli ?? 'optimum-cli', optimumArgs(modelDir, outDir, options), {
    missingHint: OPTIMUM_INSTALL_HINT,
    // The model is local: never let Optimum reach for the Hub.
    env: { ...process.env, HF_HUB_OFFLINE: '1' },
    onLine: options.onLine ? (line) => options.onLine!(line) : undefined,
  })
}

export const optimumExporter: ModelExporter = {
  name: 'optimum',
  needsConfig: false,

  // The fallback: Optimum exports what the exporters auto asks first cannot.
  async fits() {
    return { fits: true }
  },

  async produce({ sourceDir, config, task, staging, options }, step) {
    step.title('Running optimum-cli export onnx')
    await runOptimum(sourceDir, staging, { task, opset: options.opset, optimumCli: options.optimumCli, onLine: (line) => step.message(line) })
    const model = join(staging, 'model.onnx')
    if (!existsSync(model)) {
      const made = (await listFiles(staging)).map((f) => f.path)
      throw new ExternalError(`optimum-cli wrote no model.onnx (it wrote: ${made.join(', ') || 'nothing'})`, {
        code: 'OPTIMUM_NO_MODEL',
        hint: 'Encoder-decoder models export to several files, which modelforge does not handle; pick an encoder-only model.',
      })
    }
    const proto = await readModel(model)
    return {
      opset: num(proto.opsetImport?.find((o) => !o.domain)?.version),
      modelType: config?.model_type,
      externalData: externalDataFiles(proto),
      smoke: smokeHintsFromConfig(config),
      outputs: declaredOutputs(proto),
    }
  },
}
