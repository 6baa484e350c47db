/**
 * `--exporter optimum`: Hugging Face Optimum's exporter (`optimum-cli export onnx`), for every architecture
 * the native exporter does not cover. Run through the one exec wrapper; a missing optimum-cli is an
 * ExternalError (exit 3) with the install command.
 */
import { run } from '../lib/exec.js'

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
