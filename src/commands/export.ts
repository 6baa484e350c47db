import { Args, Flags } from '@oclif/core'
import { BaseCommand } from '../lib/base-command.js'
import { formatBytes } from '../lib/progress.js'
import { EXPORT_DTYPES, EXPORTERS, exportModel, type ExportDtype, type Exporter, type ExportResult } from '../export/index.js'

export default class Export extends BaseCommand {
  static summary = 'Export a Hugging Face model (directory or cached repo id) to ONNX, checked by a run in onnxruntime'
  static description = `Writes model.onnx (plus external data over 2 GB), config.json and the tokenizer files to --out.

--exporter auto uses the repository's own ONNX when it ships one for the task, else the native TypeScript exporter (bert, roberta, xlm-roberta, distilbert: feature-extraction, text-classification, sentence-embedding; llama, mistral, qwen2, gpt2: text-generation-with-past, text-generation), else optimum-cli. A causal LM's export also holds onnx/model.onnx (a hard link, for transformers.js) and genai_config.json (onnxruntime-genai). The task defaults from config.json's architectures (sentence-embedding for sentence-transformers repositories); an explicit --task must find its outputs (e.g. logits [batch_size, sequence_length, vocab_size] for fill-mask) in whatever model the exporter wrote, else exit 2 with nothing written.

Every export ends with a smoke run in onnxruntime-node (for a causal LM: a left-padded prefill and one cached decode step); nothing is written to --out unless it passes. It is skipped with --skip-smoke, and above 8 GiB of weights, which onnxruntime cannot hold here next to the export. Exit codes: 2 usage or unsupported model, 3 optimum-cli missing or failed, 4 the smoke run failed, 5 --out already holds an export or another export is writing to it, 6 model or revision not found. See docs/export.md.`
  static examples = [
    '<%= config.bin %> export ./bert-base-uncased --out ./exported',
    '<%= config.bin %> export sentence-transformers/all-MiniLM-L6-v2 --revision main --out ./minilm --exporter native',
    '<%= config.bin %> export Xenova/bert-base-uncased --exporter repo --variant quantized --out ./bert-q --json',
    '<%= config.bin %> export meta-llama/Meta-Llama-3-8B-Instruct --task text-generation-with-past --out ./llama3 --skip-smoke',
    '<%= config.bin %> export ./tiny-llama --exporter native --dtype fp16 --out ./tiny-llama-fp16',
  ]
  static args = {
    model: Args.string({ description: 'model directory, cache snapshot, or repo id ([org/]name) in the Hugging Face cache', required: true }),
  }
  static flags = {
    out: Flags.string({ description: 'directory that receives model.onnx, config.json and tokenizer files (created when missing; locked while the export writes)', required: true, helpValue: '<dir>' }),
    exporter: Flags.string({ description: 'how to produce the ONNX model', options: [...EXPORTERS], default: 'auto' }),
    task: Flags.string({ description: 'feature-extraction, text-classification, sentence-embedding, text-generation-with-past, text-generation (native), or any Optimum task [default: from config.json; a causal LM with its KV cache]' }),
    opset: Flags.integer({ description: 'ONNX opset (native: 17 to 21) [default: 17]' }),
    variant: Flags.string({ description: 'shipped ONNX variant for the repo exporter: fp32 (model.onnx), fp16, quantized, ... (model_<variant>.onnx)' }),
    revision: Flags.string({ description: 'branch, tag or commit of a repo id [default: main]' }),
    'cache-dir': Flags.string({ description: 'Hugging Face cache [default: $HF_HUB_CACHE, else $HF_HOME/hub]', helpValue: '<dir>' }),
    force: Flags.boolean({ description: 'replace an existing model.onnx in --out', default: false }),
    dtype: Flags.string({ description: 'native exporter: write the weights and computation in fp16 as they stream (the fp16 transform\'s default block list stays float32, as do the inputs and outputs; nothing is measured: see quantize --precision fp16)', options: [...EXPORT_DTYPES], default: 'fp32' }),
    'skip-smoke': Flags.boolean({ description: 'do not run the exported model in onnxruntime (for models bigger than this machine can run; the result says it was skipped)', default: false }),
  }

  async run(): Promise<ExportResult> {
    const { args, flags } = await this.parse(Export)
    const result = this.withWarnings(await this.withProgress((progress) => exportModel({
      model: args.model,
      out: flags.out,
      exporter: flags.exporter as Exporter,
      task: flags.task,
      opset: flags.opset,
      variant: flags.variant,
      revision: flags.revision,
      cacheDir: flags['cache-dir'],
      force: flags.force,
      skipSmoke: flags['skip-smoke'],
      dtype: flags.dtype as ExportDtype,
      progress,
    })))
    const shape = (s: (number | string)[]): string => `[${s.join(', ')}]`
    this.say(`Exported ${result.source.repo ?? result.source.dir} with the ${result.exporter} exporter (task ${result.task}, opset ${result.opset}${result.dtype ? `, ${result.dtype}` : ''})`)
    this.say(`  inputs:  ${result.inputs.map((i) => `${i.name} ${i.dtype} ${shape(i.shape)}`).join(', ')}`)
    this.say(`  outputs: ${result.outputs.map((o) => `${o.name} ${o.dtype} ${shape(o.shape)}`).join(', ')}`)
    for (const f of result.files) this.say(`  ${result.out}/${f.path}  ${formatBytes(f.size)}`)
    if ('skipped' in result.smoke) this.say(`  smoke run ${result.smoke.skipped}`)
    return result
  }
}
