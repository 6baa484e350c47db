import { Args, Flags } from '@oclif/core'
import { BaseCommand } from '../lib/base-command.js'
import { ModelforgeError } from '../lib/errors.js'
import { formatBytes } from '../lib/progress.js'
import { CALIB_METHODS, type CalibMethod } from '../validate/calibrate.js'
import { QUANTIZE_DEFAULTS, QUANTIZE_PRECISIONS, quantizeModel, type QuantizePrecision, type QuantizeResult } from '../validate/quantize.js'
import { formatValidation, type ValidateResult } from '../validate/report.js'

export default class Quantize extends BaseCommand {
  static summary = 'Make an INT8 Q/DQ model calibrated with onnxruntime, or an fp16 model with fp32 edges, from an fp32 ONNX model'
  static description = `--precision int8 places QuantizeLinear/DequantizeLinear pairs the way TensorRT wants them (explicit quantization): weights of MatMul/Gemm/Conv symmetric per output channel, their activation inputs symmetric per tensor, zero points 0; the attention core, LayerNorm, Softmax and GELU stay in float unless --quantize-attention. Activation ranges come from running onnxruntime over --calib-data (text tokenized with the model's tokenizer.json, JSONL with a "text" field, or a directory of ONNX test-data inputs) by --method entropy (default), percentile or minmax, and are saved next to the output as <name>.calib.json, which --calib-cache reuses (same model, same bytes).

--precision fp16 converts float32 weights and computation to fp16, keeps the model's inputs and outputs in their types with Casts at the edges, keeps the --keep-fp32 ops (Resize, Range, CumSum, TopK and the like by default) and every node whose values exceed --fp16-max-abs on sample inputs in fp32.

Either way the new model is compared with the fp32 one on held-out inputs (the batches of --calib-data after the calibration ones, else generated): int8 by cosine (>= 0.99) and classifier argmax (>= 95% of rows), fp16 by atol/rtol 1e-2. A model that fails is not written.

Exit codes: 2 bad flags or a model that cannot take this transform (nothing to quantize, already quantized, already fp16), 4 the accuracy check failed (the table says which output) or a broken model or cache, 5 --out exists (use --force), 6 the model or the data does not exist. See docs/quantize.md.`
  static examples = [
    '<%= config.bin %> quantize exported/model.onnx --precision int8 --calib-data calib.txt --out exported/model.int8.onnx',
    '<%= config.bin %> quantize model.onnx --precision int8 --calib-data samples.jsonl --method percentile --percentile 99.99 --batch-size 8 --seq-len 128',
    '<%= config.bin %> quantize model.onnx --precision int8 --calib-cache model.int8.calib.json --calib-data calib.txt --force',
    '<%= config.bin %> quantize model.onnx --precision int8 --calib-data test-data/ --quantize-attention --json',
    '<%= config.bin %> quantize model.onnx --precision fp16 --out model.fp16.onnx --keep-fp32 Resize,TopK --fp16-max-abs 1024',
  ]
  static args = {
    model: Args.string({ description: 'the fp32 ONNX model', required: true }),
  }
  static flags = {
    precision: Flags.string({ description: 'int8 (calibrated Q/DQ) or fp16', options: [...QUANTIZE_PRECISIONS], required: true }),
    out: Flags.string({ description: 'the model to write [default: <model>.int8.onnx or <model>.fp16.onnx next to it]', helpValue: '<file>' }),
    force: Flags.boolean({ description: 'replace --out if it exists', default: false }),
    'calib-data': Flags.string({ description: 'int8 calibration (and held-out) inputs: a text file (a sample per line), a .jsonl file with a "text" field, or a directory of ONNX test-data inputs; fp16: optional sample inputs', helpValue: '<file|dir>' }),
    tokenizer: Flags.string({ description: 'tokenizer.json (or its directory) for text data [default: the one next to the model]', helpValue: '<file|dir>' }),
    'calib-batches': Flags.integer({ description: `int8: calibration batches at most [default: ${QUANTIZE_DEFAULTS.calibBatches}]`, min: 1 }),
    'batch-size': Flags.integer({ description: `samples per batch [default: ${QUANTIZE_DEFAULTS.batchSize}]`, min: 1 }),
    'seq-len': Flags.integer({ description: `tokens per text sample, padded or truncated [default: ${QUANTIZE_DEFAULTS.seqLen}, capped at max_position_embeddings]`, min: 1 }),
    method: Flags.string({ description: `int8 calibration method [default: ${QUANTIZE_DEFAULTS.method}]`, options: [...CALIB_METHODS] }),
    percentile: Flags.string({ description: `int8 --method percentile: the percentile of |x| kept [default: ${QUANTIZE_DEFAULTS.percentile}]`, helpValue: '<0-100>' }),
    'calib-cache': Flags.string({ description: 'int8: reuse the activation ranges of an earlier run (its <out>.calib.json) instead of calibrating', helpValue: '<file>' }),
    'quantize-attention': Flags.boolean({ description: 'int8: also quantize the attention core (the MatMuls of QK^T and of the weights with V)', default: false }),
    'keep-fp32': Flags.string({ description: 'fp16: ops kept in fp32, comma-separated (replaces the default list; "" for none)', helpValue: '<op,op>' }),
    'fp16-max-abs': Flags.string({ description: `fp16: keep in fp32 any node whose values exceed this on sample inputs [default: ${QUANTIZE_DEFAULTS.fp16MaxAbs}]`, helpValue: '<number>' }),
    'eval-batches': Flags.integer({ description: `held-out batches for the accuracy check [default: ${QUANTIZE_DEFAULTS.evalBatches}]`, min: 1 }),
    'min-cosine': Flags.string({ description: 'int8: lowest cosine similarity per output on held-out inputs [default: 0.99]', helpValue: '<-1..1>' }),
    atol: Flags.string({ description: 'fp16: absolute tolerance, <number> or <output>:<number> (repeatable) [default: 1e-2]', multiple: true, helpValue: '<[output:]value>' }),
    rtol: Flags.string({ description: 'fp16: relative tolerance, <number> or <output>:<number> (repeatable) [default: 1e-2]', multiple: true, helpValue: '<[output:]value>' }),
  }

  async run(): Promise<QuantizeResult> {
    const { args, flags } = await this.parse(Quantize)
    const number = (v: string | undefined) => (v === undefined ? undefined : Number(v))
    let result: QuantizeResult
    try {
      result = await this.withProgress((progress) => quantizeModel({
        model: args.model,
        precision: flags.precision as QuantizePrecision,
        out: flags.out,
        force: flags.force,
        calibData: flags['calib-data'],
        tokenizer: flags.tokenizer,
        calibBatches: flags['calib-batches'],
        batchSize: flags['batch-size'],
        seqLen: flags['seq-len'],
        method: flags.method as CalibMethod | undefined,
        percentile: number(flags.percentile),
        calibCache: flags['calib-cache'],
        quantizeAttention: flags['quantize-attention'] || undefined,
        keepFp32: flags['keep-fp32'] === undefined ? undefined : flags['keep-fp32'].split(',').map((s) => s.trim()).filter(Boolean),
        fp16MaxAbs: number(flags['fp16-max-abs']),
        evalBatches: flags['eval-batches'],
        minCosine: number(flags['min-cosine']),
        atol: flags.atol,
        rtol: flags.rtol,
        progress,
      }))
    } catch (err) {
      const validation = err instanceof ModelforgeError && err.code === 'VALIDATION_FAILED' ? (err.details?.result as ValidateResult | undefined) : undefined
      if (validation) this.say(formatValidation(validation))
      throw err
    }
    this.say(render(result))
    return this.withWarnings(result)
  }
}

function counts(c: Record<string, number>): string {
  return Object.entries(c).map(([k, n]) => `${n} ${k}`).join(', ') || 'none'
}

function render(r: QuantizeResult): string {
  const lines = [`Wrote ${r.out.path} (${formatBytes(r.out.bytes)}, ${r.precision}; from ${formatBytes(r.source.bytes)})`]
  if (r.calibration) {
    const c = r.calibration
    lines.push(`  calibration:  ${c.method}${c.percentile !== undefined ? ` ${c.percentile}` : ''}, ${c.tensors} tensors, ${c.from === 'cache' ? 'from the cache' : `${c.data?.batches} batches of ${c.data?.batchSize}x${c.data?.seqLen} from ${c.data?.source}`} (${(c.ms / 1000).toFixed(1)} s)`)
    lines.push(`  cache:        ${c.cache}`)
  }
  if (r.placement) {
    lines.push(`  quantized:    ${counts(r.placement.quantized)} (${r.placement.weights} weights per channel, ${r.placement.activations} activations per tensor)`)
    lines.push(`  left float:   ${counts(r.placement.skipped)}`)
  }
  if (r.fp16) {
    const reasons: Record<string, number> = {}
    for (const k of r.fp16.kept) reasons[`${k.opType} (${k.reason})`] = (reasons[`${k.opType} (${k.reason})`] ?? 0) + 1
    lines.push(`  fp16 nodes:   ${r.fp16.convertedNodes}; kept in fp32: ${counts(reasons)}`)
    lines.push(`  casts:        ${r.fp16.castsInserted} inserted, ${r.fp16.castsRetargeted} retargeted; ${r.fp16.clampedValues} weight values clamped to the fp16 range`)
  }
  lines.push('', formatValidation(r.accuracy))
  return lines.join('\n')
}
