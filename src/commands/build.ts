import { Args, Flags } from '@oclif/core'
import { BaseCommand } from '../lib/base-command.js'
import { ModelforgeError } from '../lib/errors.js'
import { formatBytes } from '../lib/progress.js'
import { parseDuration } from '../publish/options.js'
import { buildEngine, parseDimFlags, type BuildResult } from '../builders/build.js'
import { BUILD_PRECISIONS, type BuildPrecision, type PerfStat } from '../builders/types.js'
import { formatValidation, type ValidateResult } from '../validate/report.js'
import { CALIB_METHODS, type CalibMethod } from '../validate/calibrate.js'

export default class Build extends BaseCommand {
  static summary = 'Build a TensorRT engine from an ONNX model with trtexec, benchmark it and validate it against onnxruntime'
  static description = `Finds trtexec (--trtexec, $TRTEXEC, PATH, /usr/src/tensorrt/bin/trtexec), learns its TensorRT version from its banner and builds the argument list for that version: precision flags (or --stronglyTyped for an fp16 or Q/DQ model), the optimization profile from the model's dynamic inputs (--batch, --seq, --dim), the workspace, a timing cache per TensorRT version and GPU reused across builds, and the exports.

--out receives engine.plan, engine.json (GPU, compute capability, TensorRT version, precision, profile, the ONNX file's sha256, the argv), build.log, layers.json, times.json, profile.json, perf.json and validation/ (the inputs of the validation run). It is written in a hidden directory beside --out and moved into place at the end: a failure, --timeout or Ctrl-C leaves --out as it was and no trtexec running.

--precision int8 from an fp32 model first makes a Q/DQ model calibrated on --calib-data (modelforge quantize --precision int8, with the --calib-* flags) and builds from it; so does --precision fp16 on TensorRT 11, which builds every network strongly typed, with an fp16 model (quantize --precision fp16). That model (model.int8.onnx or model.fp16.onnx, and the calibration cache) lands in --out beside the engine.

The engine is validated by running it through trtexec on generated inputs and comparing each output with onnxruntime on the ONNX model: fp32 by fp32's tolerances, fp16 and bf16 by fp16's, int8 by int8's (cosine, argmax), best by int8's for a Q/DQ model and fp16's otherwise.

Exit codes: 2 bad flags or ranges, 3 trtexec missing, failed (the cause and its [E] lines) or timed out, 4 the engine's outputs are off (the table says which) or the ONNX file is broken, 5 --out holds files (use --force), 6 the ONNX file does not exist, 130 interrupted. See docs/build.md.`
  static examples = [
    '<%= config.bin %> build exported/model.onnx --out engines/bert-fp16 --precision fp16',
    '<%= config.bin %> build model.onnx --out engines/bert --batch 1:8:32 --seq 1:128:512 --workspace 4096',
    '<%= config.bin %> build model-qdq.onnx --out engines/bert-int8 --precision int8 --timeout 30m --json',
    '<%= config.bin %> build model.onnx --out engines/bert-int8 --precision int8 --calib-data calib.txt --calib-method percentile',
    '<%= config.bin %> build model.onnx --out engines/bert --precision fp16 --dry-run',
    '<%= config.bin %> build model.onnx --out engines/bert --force --skip-benchmark --trtexec /opt/tensorrt/bin/trtexec',
  ]
  static args = {
    onnx: Args.string({ description: 'the ONNX model to build', required: true }),
  }
  static flags = {
    out: Flags.string({ description: 'directory that receives the engine and its files (created; must be absent or empty unless --force)', required: true, helpValue: '<dir>' }),
    precision: Flags.string({ description: 'engine precision (int8 from an fp32 model calibrates a Q/DQ model first: --calib-data)', options: [...BUILD_PRECISIONS], default: 'fp32' }),
    force: Flags.boolean({ description: 'replace a non-empty --out (only once the new build is complete)', default: false }),
    trtexec: Flags.string({ description: 'the trtexec program [default: $TRTEXEC, else PATH, else /usr/src/tensorrt/bin/trtexec]', helpValue: '<path>' }),
    batch: Flags.string({ description: 'range of batch dimensions, min:opt:max or one number [default: 1:8:32]', helpValue: '<min:opt:max>' }),
    seq: Flags.string({ description: 'range of sequence dimensions [default: 1:128:max_position_embeddings, the opt capped at the max]', helpValue: '<min:opt:max>' }),
    past: Flags.string({ description: 'decoders: range of the past (cached tokens), min:opt:max, min may be 0 [default: 0:min(128, (max_position_embeddings - 1) / 2):max_position_embeddings - 1]', helpValue: '<min:opt:max>' }),
    dim: Flags.string({ description: 'range of another symbolic dimension by name (repeatable)', multiple: true, helpValue: '<name=min:opt:max>' }),
    workspace: Flags.integer({ description: 'builder workspace in MiB (--memPoolSize=workspace:<N>M) [default: TensorRT\'s]', min: 1, helpValue: '<MiB>' }),
    'builder-optimization-level': Flags.integer({ description: 'TensorRT builder optimization level, 0 to 5 (TensorRT 8.6+) [default: TensorRT\'s, 3]', min: 0, max: 5 }),
    'hardware-compatibility-level': Flags.string({ description: 'none, ampere+ or sameComputeCapability (TensorRT 8.6+; sameComputeCapability 10.9+)', helpValue: '<level>' }),
    'timing-cache-dir': Flags.string({ description: 'root of the timing caches, one per TensorRT version and GPU [default: $MODELFORGE_CACHE/timing-cache, else ~/.cache/modelforge/timing-cache]', helpValue: '<dir>' }),
    'skip-benchmark': Flags.boolean({ description: 'build only: no inference run, so no times.json, profile.json or perf.json', default: false }),
    'skip-validation': Flags.boolean({ description: 'do not compare the engine\'s outputs with onnxruntime', default: false }),
    atol: Flags.string({ description: 'absolute tolerance of the validation: <number> for all outputs or <output>:<number> (repeatable)', multiple: true, helpValue: '<[output:]value>' }),
    rtol: Flags.string({ description: 'relative tolerance of the validation: <number> for all outputs or <output>:<number> (repeatable)', multiple: true, helpValue: '<[output:]value>' }),
    'dry-run': Flags.boolean({ description: 'print the trtexec command lines (build and validation), one per line, and write nothing', default: false }),
    'calib-data': Flags.string({ description: 'int8 from an fp32 model: calibration data for the Q/DQ model the build makes first (a text file, JSONL with "text", or ONNX test-data inputs)', helpValue: '<file|dir>' }),
    'calib-cache': Flags.string({ description: 'int8 from an fp32 model: reuse the ranges of an earlier calibration (a .calib.json)', helpValue: '<file>' }),
    'calib-method': Flags.string({ description: 'int8 from an fp32 model: calibration method [default: entropy]', options: [...CALIB_METHODS] }),
    'calib-batches': Flags.integer({ description: 'int8 from an fp32 model: calibration batches at most [default: 16]', min: 1 }),
    'calib-batch-size': Flags.integer({ description: 'int8 from an fp32 model: samples per calibration batch [default: 4]', min: 1 }),
    'calib-seq-len': Flags.integer({ description: 'int8 from an fp32 model: tokens per text sample [default: 128]', min: 1 }),
    tokenizer: Flags.string({ description: 'tokenizer.json (or its directory) for text calibration data [default: next to the model]', helpValue: '<file|dir>' }),
    'quantize-attention': Flags.boolean({ description: 'int8 from an fp32 model: also quantize the attention core', default: false }),
    'keep-fp32': Flags.string({ description: 'fp16 from an fp32 model on TensorRT 11: ops kept in fp32, comma-separated (replaces the default list)', helpValue: '<op,op>' }),
    'fp16-max-abs': Flags.string({ description: 'fp16 from an fp32 model on TensorRT 11: keep nodes whose values exceed this in fp32 [default: 512]', helpValue: '<number>' }),
    timeout: Flags.string({ description: 'stop trtexec and fail (exit 3) when the whole build takes longer, e.g. 30m', helpValue: '<duration>' }),
  }

  async run(): Promise<BuildResult> {
    const { args, flags } = await this.parse(Build)
    const timeoutMs = flags.timeout === undefined ? undefined : parseDuration(flags.timeout)
    const dims = parseDimFlags(flags.dim)
    let result: BuildResult
    try {
      result = await this.withInterrupt((signal) => this.withProgress((progress) => buildEngine({
        onnx: args.onnx,
        out: flags.out,
        force: flags.force,
        precision: flags.precision as BuildPrecision,
        trtexec: flags.trtexec,
        batch: flags.batch,
        seq: flags.seq,
        past: flags.past,
        dims,
        workspaceMiB: flags.workspace,
        builderOptimizationLevel: flags['builder-optimization-level'],
        hardwareCompatibilityLevel: flags['hardware-compatibility-level'],
        timingCacheDir: flags['timing-cache-dir'],
        skipBenchmark: flags['skip-benchmark'],
        skipValidation: flags['skip-validation'],
        dryRun: flags['dry-run'],
        timeoutMs,
        atol: flags.atol,
        rtol: flags.rtol,
        transform: {
          calibData: flags['calib-data'],
          calibCache: flags['calib-cache'],
          method: flags['calib-method'] as CalibMethod | undefined,
          calibBatches: flags['calib-batches'],
          batchSize: flags['calib-batch-size'],
          seqLen: flags['calib-seq-len'],
          tokenizer: flags.tokenizer,
          quantizeAttention: flags['quantize-attention'] || undefined,
          keepFp32: flags['keep-fp32'] === undefined ? undefined : flags['keep-fp32'].split(',').map((x) => x.trim()).filter(Boolean),
          fp16MaxAbs: flags['fp16-max-abs'] === undefined ? undefined : Number(flags['fp16-max-abs']),
        },
        signal,
        progress,
      }), { callerHandlesSigint: true }))
    } catch (err) {
      // The per-output table of a failed validation, as validate prints it, above the error.
      const validation = err instanceof ModelforgeError && err.code === 'VALIDATION_FAILED' ? (err.details?.result as ValidateResult | undefined) : undefined
      if (validation) this.say(formatValidation(validation))
      throw err
    }
    if (result.dryRun) {
      this.say(result.commands.build)
      if (result.commands.validation) this.say(result.commands.validation)
      return result
    }
    this.say(render(result))
    return this.withWarnings(result)
  }
}

function stat(s: PerfStat | undefined): string {
  return s ? `median ${s.median} ms, mean ${s.mean} ms${Object.entries(s.percentiles).map(([p, v]) => `, p${p} ${v} ms`).join('')}` : '-'
}

function render(r: BuildResult): string {
  const gpu = r.gpu.device ?? r.gpu.nvidiaSmi
  const lines = [
    `Built ${r.out}/${r.engine?.file} (${formatBytes(r.engine?.bytes ?? 0)}, ${r.precision}) with TensorRT ${r.tool.version.text} on ${gpu ? `${gpu.name}${gpu.computeCapability ? ` (compute ${gpu.computeCapability})` : ''}` : 'an unnamed GPU'}`,
    `  trtexec:      ${r.tool.path}`,
    `  timing cache: ${r.timingCache.file ?? 'none'}${r.timingCache.loaded ? ' (loaded)' : ''}`,
    `  build:        ${((r.timings.buildMs ?? 0) / 1000).toFixed(1)} s${r.timings.trtexecBuildS !== undefined ? ` (trtexec: engine built in ${r.timings.trtexecBuildS} s)` : ''}`,
  ]
  if (r.perf?.throughputQps !== undefined) {
    lines.push(`  throughput:   ${r.perf.throughputQps} qps at ${Object.entries(r.inferenceShapes).map(([n, d]) => `${n} ${d.join('x')}`).join(', ') || 'the model\'s shapes'}`)
    lines.push(`  latency:      ${stat(r.perf.latency)}`)
    lines.push(`  GPU compute:  ${stat(r.perf.gpuCompute)}`)
  }
  if (r.transform) lines.push(`  built from:   ${r.out}/${r.transform.file} (the ${r.transform.precision} model made from ${r.onnx.path})`)
  for (const s of r.skipped) lines.push(`  not written:  ${s.files.join(', ')} (${s.reason})`)
  if (r.validation) lines.push('', formatValidation(r.validation))
  lines.push('', ...r.files.map((f) => `  ${r.out}/${f.path}  ${formatBytes(f.size)}`))
  return lines.join('\n')
}
