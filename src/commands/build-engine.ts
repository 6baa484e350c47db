import { Flags } from '@oclif/core'
import { BaseCommand, capabilityFlag, finalizeFlags, registryFlag, resolveStore, storeFlag } from '../lib/base-command.js'
import { parseCapabilities, recordStoreWrites } from '../registry/index.js'
import { ModelforgeError } from '../lib/errors.js'
import { formatBytes } from '../lib/progress.js'
import { parseMetadata } from '../publish/options.js'
import { parseDimFlags } from '../builders/build.js'
import { BUILD_PRECISIONS, type BuildPrecision } from '../builders/types.js'
import { EXPORTERS, type Exporter } from '../export/exporter.js'
import { CALIB_METHODS, type CalibMethod } from '../validate/calibrate.js'
import { formatValidation, type ValidateResult } from '../validate/report.js'
import { runBuildEngine, TARGETS, type BuildEngineResult, type Target } from '../pipeline/index.js'

export default class BuildEngine extends BaseCommand {
  static summary = 'Build a model into a validated, published version of the store: fetch, export, quantize, build, validate, finalize'
  static description = `The main job. --model-id is a Hugging Face repo id (fetched offline-first: the cache first, the Hub only for what it lacks; HF_HUB_OFFLINE=1 or --offline never download) or a local model directory.

Steps: resolve the model -> build key -> stage <agent>/versions/<version>.tmp -> export to ONNX -> quantize (int8 Q/DQ calibrated on --calib-data; fp16 on the onnx target or on TensorRT 11) -> build the engine with trtexec (--target trt) -> validate against the fp32 ONNX (the engine through trtexec against onnxruntime) -> measure latency -> finalize (manifest with source, build, validation and performance sections) -> publish --channel (current).

Nothing is published unless validation passed: on any failure or Ctrl-C the staging directory is removed, current is untouched, and the message says which step failed. The build key (SHA-256 over the source's commit and file hashes, exporter, precision, shapes, calibration data and tool versions) is kept in the manifest: the same build again reports the existing version and writes nothing (--force builds a new one). The version is --output-version, else v<YYYY-MM-DD> (UTC) with .1, .2 ... when taken.

--target trt (default, precision fp16 by default) writes engine.plan and engine.json (GPU, compute capability, TensorRT version) beside the fp32 model.onnx; --target onnx (precision fp32 by default) writes model.onnx at the precision asked, with the fp32 export in fp32/. With GITHUB_STEP_SUMMARY set, a markdown summary of the steps, the accuracy and the latency is appended to it.

Exit codes: 2 bad flags, 3 trtexec, the network or another tool failed, 4 validation failed or a file is broken, 5 the version exists or the agent is locked, 6 the model is not in the cache while offline, 7 the source is not allowed, 130 interrupted. See docs/build-engine.md.`
  static examples = [
    '<%= config.bin %> build-engine --agent demo --model-id fixtures/hf-tiny/tiny-bert --target onnx --precision int8 --calib-data fixtures/calib/tiny-words.txt --store ./model-store',
    '<%= config.bin %> build-engine --agent analyst --model-id org/name --revision main --precision fp16 --output-version v2026-12-01',
    '<%= config.bin %> build-engine --agent analyst --model-id org/name --precision int8 --calib-data calib.jsonl --batch 1:8:32 --seq 1:128:512',
    '<%= config.bin %> build-engine --agent analyst --model-id org/name --precision fp16 --dry-run',
    '<%= config.bin %> build-engine --agent analyst --model-id org/name --channel staging --json',
    '<%= config.bin %> build-engine --agent analyst --model-id org/name --offline --force --no-publish',
  ]
  static flags = {
    agent: Flags.string({ description: 'the agent the version is built for', required: true, helpValue: '<name>' }),
    'model-id': Flags.string({ description: 'a Hugging Face repo id, or a local model directory', required: true, helpValue: '<org/name|dir>' }),
    revision: Flags.string({ description: 'branch, tag or commit of the repo [default: main]', helpValue: '<rev>' }),
    target: Flags.string({ description: 'trt: a TensorRT engine; onnx: an ONNX model for onnxruntime', options: [...TARGETS], default: 'trt' }),
    precision: Flags.string({ description: 'precision of the artifact [default: fp16 for trt, fp32 for onnx; onnx takes fp32, fp16, int8]', options: [...BUILD_PRECISIONS] }),
    'output-version': Flags.string({ description: 'name of the new version [default: v<YYYY-MM-DD>, with .1, .2 ... when taken]', helpValue: '<version>' }),
    store: storeFlag,
    registry: registryFlag,
    capability: capabilityFlag,
    channel: Flags.string({ description: 'the channel to publish to', default: 'current', helpValue: '<channel>' }),
    publish: Flags.boolean({ description: 'point the channel at the new version', default: true, allowNo: true }),
    force: Flags.boolean({ description: 'build even when a version with the same build key exists', default: false }),
    'dry-run': Flags.boolean({ description: 'print the plan (steps, trtexec command lines, paths) and write nothing', default: false }),
    offline: Flags.boolean({ description: 'never touch the network: the model must be in the HF cache [default: HF_HUB_OFFLINE]', default: false }),
    ...finalizeFlags,
    exporter: Flags.string({ description: 'how to export to ONNX [default: auto]', options: [...EXPORTERS] }),
    task: Flags.string({ description: 'the export task [default: from config.json]', helpValue: '<task>' }),
    opset: Flags.integer({ description: 'ONNX opset of the export [default: the exporter\'s]', min: 7 }),
    trtexec: Flags.string({ description: 'the trtexec program [default: $TRTEXEC, else PATH, else /usr/src/tensorrt/bin/trtexec]', helpValue: '<path>' }),
    batch: Flags.string({ description: 'range of batch dimensions of the engine, min:opt:max [default: 1:8:32]', helpValue: '<min:opt:max>' }),
    seq: Flags.string({ description: 'range of sequence dimensions of the engine [default: 1:128:max_position_embeddings]', helpValue: '<min:opt:max>' }),
    past: Flags.string({ description: 'decoders: range of the past (cached tokens) of the engine, min:opt:max [default: 0:min(128, (max positions - 1) / 2):max positions - 1]', helpValue: '<min:opt:max>' }),
    dim: Flags.string({ description: 'range of another symbolic dimension by name (repeatable)', multiple: true, helpValue: '<name=min:opt:max>' }),
    workspace: Flags.integer({ description: 'builder workspace in MiB [default: TensorRT\'s]', min: 1, helpValue: '<MiB>' }),
    'builder-optimization-level': Flags.integer({ description: 'TensorRT builder optimization level, 0 to 5', min: 0, max: 5 }),
    'hardware-compatibility-level': Flags.string({ description: 'none, ampere+ or sameComputeCapability', helpValue: '<level>' }),
    'timing-cache-dir': Flags.string({ description: 'root of the timing caches [default: $MODELFORGE_CACHE/timing-cache]', helpValue: '<dir>' }),
    'calib-data': Flags.string({ description: 'int8: calibration data (a text file, JSONL with "text", or ONNX test-data inputs)', helpValue: '<file|dir>' }),
    'calib-cache': Flags.string({ description: 'int8: reuse the ranges of an earlier calibration (a .calib.json)', helpValue: '<file>' }),
    'calib-method': Flags.string({ description: 'int8: calibration method [default: entropy]', options: [...CALIB_METHODS], aliases: ['method'] }),
    'calib-batches': Flags.integer({ description: 'int8: calibration batches at most [default: 16]', min: 1 }),
    'calib-batch-size': Flags.integer({ description: 'int8: samples per calibration batch [default: 4]', min: 1 }),
    'calib-seq-len': Flags.integer({ description: 'int8: tokens per text sample [default: 128]', min: 1 }),
    tokenizer: Flags.string({ description: 'tokenizer.json (or its directory) for text calibration data [default: the model\'s]', helpValue: '<file|dir>' }),
    'quantize-attention': Flags.boolean({ description: 'int8: also quantize the attention core', default: false }),
    'keep-fp32': Flags.string({ description: 'fp16 (onnx target, TensorRT 11): ops kept in fp32, comma-separated', helpValue: '<op,op>' }),
    'fp16-max-abs': Flags.string({ description: 'fp16 (onnx target, TensorRT 11): keep nodes whose values exceed this in fp32 [default: 512]', helpValue: '<number>' }),
    atol: Flags.string({ description: 'absolute tolerance of the validation: <number> or <output>:<number> (repeatable)', multiple: true, helpValue: '<[output:]value>' }),
    rtol: Flags.string({ description: 'relative tolerance of the validation: <number> or <output>:<number> (repeatable)', multiple: true, helpValue: '<[output:]value>' }),
    reference: Flags.string({ description: 'onnx target: validate against these outputs (reference JSON or ONNX test data) [default: the fp32 export; for fp32, the source\'s reference.json, else onnxruntime with optimizations off]', helpValue: '<file|dir>' }),
  }

  async run(): Promise<BuildEngineResult> {
    const { flags } = await this.parse(BuildEngine)
    const metadata = parseMetadata(flags.metadata, flags['metadata-file'])
    let result: BuildEngineResult
    try {
      const capabilities = parseCapabilities(flags.capability ?? [])
      const store = resolveStore(flags.store)
      result = await recordStoreWrites({ store, url: flags.registry }, () => this.withInterrupt((signal) => this.withProgress((progress) => runBuildEngine({
        agent: flags.agent,
        modelId: flags['model-id'],
        revision: flags.revision,
        target: flags.target as Target,
        precision: flags.precision as BuildPrecision | undefined,
        outputVersion: flags['output-version'],
        store,
        channel: flags.channel,
        publish: flags.publish,
        force: flags.force,
        dryRun: flags['dry-run'],
        offline: flags.offline || undefined,
        metadata,
        capabilities,
        legacyChecksum: flags['legacy-checksum'],
        exporter: flags.exporter as Exporter | undefined,
        task: flags.task,
        opset: flags.opset,
        trtexec: flags.trtexec,
        batch: flags.batch,
        seq: flags.seq,
        past: flags.past,
        dims: flags.dim ? parseDimFlags(flags.dim) : undefined,
        workspaceMiB: flags.workspace,
        builderOptimizationLevel: flags['builder-optimization-level'],
        hardwareCompatibilityLevel: flags['hardware-compatibility-level'],
        timingCacheDir: flags['timing-cache-dir'],
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
        atol: flags.atol,
        rtol: flags.rtol,
        reference: flags.reference,
        stepSummary: process.env.GITHUB_STEP_SUMMARY || undefined,
        signal,
        progress,
      }), { callerHandlesSigint: true })))
    } catch (err) {
      const validation = err instanceof ModelforgeError && err.code === 'VALIDATION_FAILED' ? (err.details?.result as ValidateResult | undefined) : undefined
      if (validation) this.say(formatValidation(validation))
      throw err
    }
    this.say(render(result))
    return this.withWarnings(result)
  }
}

function render(r: BuildEngineResult): string {
  if (r.status === 'planned') {
    return [
      `Plan for ${r.agent}/${r.version} (${r.target}, ${r.precision}); nothing was written:`,
      ...r.plan!.steps.map((s) => `  ${s.id.padEnd(9)} ${s.action}`),
      ...(r.plan!.commands.length ? ['', 'Commands:', ...r.plan!.commands.map((c) => `  ${c}`)] : []),
    ].join('\n')
  }
  if (r.status === 'up-to-date') {
    return `${r.agent}/${r.version} is up to date: it was built with build key ${r.buildKey.slice(0, 16)}; nothing was written (--force builds a new version)\n  ${r.path}`
  }
  const v = r.metrics.validation
  const p = r.metrics.performance
  const e = r.metrics.engine
  return [
    `Built ${r.agent}/${r.version} (${r.target}, ${r.precision}): ${r.files} files, ${formatBytes(r.bytes ?? 0)}${r.published ? `; ${r.channel} -> ${r.version}` : '; not published'}`,
    `  path:        ${r.path}`,
    `  artifact:    ${r.artifacts.find((a) => a.role === 'serve')?.path ?? '-'}`,
    ...(e ? [`  engine:      TensorRT ${e.tensorrt} on ${e.gpu ?? 'an unnamed GPU'}${e.computeCapability ? ` (compute ${e.computeCapability})` : ''}`] : []),
    ...(v ? [`  validation:  ${v.passed ? 'passed' : 'FAILED'} against ${v.reference} (${v.precision}): ${v.outputs.map((o) => `${o.name} cosine ${o.cosine.toFixed(5)}`).join(', ')}`] : []),
    ...(p?.latencyMs ? [`  latency:     median ${p.latencyMs.median} ms, p95 ${p.latencyMs.p95 ?? '-'} ms (${p.source})`] : []),
    `  build key:   ${r.buildKey}`,
    `  time:        ${(r.timings.totalMs / 1000).toFixed(1)} s (${r.timings.steps.filter((s) => s.status === 'done').map((s) => `${s.id} ${(s.ms / 1000).toFixed(1)} s`).join(', ')})`,
  ].join('\n')
}
