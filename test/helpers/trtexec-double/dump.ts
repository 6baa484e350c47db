/**
 * The options dump trtexec logs before it starts: Model, Build (a blank line instead when loading an engine,
 * from 10.0), System, Inference and Reporting sections, one [I] line each. The lines and their order are
 * those of the real 8.6.0 and 10.16.1 logs (fixtures of the log stream); 11.x drops the lines of the
 * options it removed (weak typing, INT8 calibration, restricted mode) as its sampleOptions.cpp does.
 */
import { cpp, dimsText } from './format.js'
import type { Log } from './log.js'
import type { Options, Range } from './options.js'
import { atLeast } from './version.js'

const enabled = (b: boolean) => (b ? 'Enabled' : 'Disabled')

function precision(o: Options): string {
  if (o.stronglyTyped) return 'Strongly Typed'
  let p = 'FP32'
  if (o.fp16 || o.best) p += '+FP16'
  if (o.bf16 || (o.best && o.version.major >= 10)) p += '+BF16'
  if (o.int8 || o.best) p += '+INT8'
  if (o.fp8) p += '+FP8'
  if (o.int4) p += '+INT4'
  if (o.precisionConstraints === 'obey') p += ' (obey precision constraints)'
  if (o.precisionConstraints === 'prefer') p += ' (prefer precision constraints)'
  return p
}

function pools(o: Options): string {
  const v = (x: number | undefined, unit = 'MiB') => (x === undefined ? 'default' : `${cpp(x)} ${unit}`)
  const m = o.memPools
  const list = [`workspace: ${v(m.workspace)}`, `dlaSRAM: ${v(m.dlaSRAM)}`, `dlaLocalDRAM: ${v(m.dlaLocalDRAM)}`, `dlaGlobalDRAM: ${v(m.dlaGlobalDRAM)}`]
  if (o.version.major >= 10) list.push(`tacticSharedMem: ${v(m.tacticSharedMem, 'KiB')}`)
  return list.join(', ')
}

function buildShapes(o: Options): string[] {
  if (o.profile.size === 0) return ['Input build shapes: model']
  const range = (r: Range) => `${dimsText(r.min)}+${dimsText(r.opt)}+${dimsText(r.max)}`
  // 8.x printed one profile with no index.
  const label = o.version.major >= 10 ? 'Input build shape (profile 0): ' : 'Input build shape: '
  return [...o.profile].map(([name, r]) => `${label}${name}=${range(r)}`)
}

function inferenceShapes(o: Options): string[] {
  if (o.shapes.size === 0) return ['Input inference shapes: model']
  const label = o.version.major >= 10 ? 'Input inference shape : ' : 'Input inference shape: '
  return [...o.shapes].map(([name, dims]) => `${label}${name}=${dimsText(dims)}`)
}

function modelSection(o: Options): string[] {
  const load = o.loadEngine !== undefined
  return ['=== Model Options ===', `Format: ${load ? '*' : 'ONNX'}`, `Model: ${load ? '' : (o.onnx ?? '')}`, 'Output:']
}

function buildSection10(o: Options): string[] {
  const v = o.version
  const v11 = v.major >= 11
  const at = (minor: number) => v11 || atLeast(v, 10, minor)
  const lines = [
    '=== Build Options ===',
    `Memory Pools: ${pools(o)}`,
    `avgTiming: ${o.avgTiming}`,
    `Precision: ${precision(o)}`,
    ...(v11 ? [] : ['LayerPrecisions: ']),
    'Layer Device Types: ',
    ...(at(14) ? ['Decomposable Attentions: '] : []),
    ...(v11 ? [] : [`Calibration: ${o.int8 && !o.calib ? 'Dynamic' : o.calib}`]),
    `Refit: ${enabled(o.refit)}`,
    `Strip weights: ${enabled(o.stripWeights)}`,
    `Version Compatible: ${enabled(o.versionCompatible)}`,
    'ONNX Plugin InstanceNorm: Disabled',
    ...(at(11) ? ['ONNX kENABLE_UINT8_AND_ASYMMETRIC_QUANTIZATION_DLA flag: Disabled'] : []),
    ...(at(16) ? ['ONNX kREPORT_CAPABILITY_DLA flag: Disabled', 'ONNX kADJUST_FOR_DLA flag: Disabled'] : []),
    ...(at(15) ? ['ONNX kENABLE_PLUGIN_OVERRIDE flag: Disabled'] : []),
    'TensorRT runtime: full',
    'Lean DLL Path: ',
    'Tempfile Controls: { in_memory: allow, temporary: allow }',
    'Exclude Lean Runtime: Disabled',
    'Sparsity: Disabled',
    'Safe mode: Disabled',
    'Build DLA standalone loadable: Disabled',
    'Allow GPU fallback for DLA: Disabled',
    'DirectIO mode: Disabled',
    ...(v11 ? [] : ['Restricted mode: Disabled']),
    `Skip inference: ${enabled(o.skipInference)}`,
    `Save engine: ${o.saveEngine ?? ''}`,
    'Load engine: ',
    `Profiling verbosity: ${o.profilingVerbosity}`,
    'Tactic sources: Using default tactic sources',
    `timingCacheMode: ${o.noBuilderCache ? 'disable' : o.timingCacheFile ? 'global' : 'local'}`,
    `timingCacheFile: ${o.timingCacheFile}`,
    'Enable Compilation Cache: Enabled',
    ...(at(6) ? ['Enable Monitor Memory: Disabled'] : []),
    ...(at(15) ? ['CPU Only Mode: Disabled'] : []),
    'errorOnTimingCacheMiss: Disabled',
    'Preview Features: Use default preview flags.',
    `MaxAuxStreams: ${o.maxAuxStreams}`,
    `BuilderOptimizationLevel: ${o.builderOptimizationLevel}`,
    ...(at(4) ? ['MaxTactics: -1'] : []),
    ...(v11 ? [] : ['Calibration Profile Index: 0']),
    'Weight Streaming: Disabled',
    ...(at(2) ? ['Runtime Platform: Same As Build'] : []),
    'Debug Tensors: ',
    ...(at(12) ? ['Distributive Independence: Disabled', 'Mark Unfused Tensors As Debug Tensors: Disabled'] : []),
    ...ioFormats(o, v11 ? 'CHW' : 'fp32:CHW'),
    ...buildShapes(o),
    ...(v11 ? [] : ['Input calibration shapes: model']),
  ]
  return lines
}

function ioFormats(o: Options, fallback: string): string[] {
  const one = (label: string, spec: string) => (spec ? spec.split(',').map((f) => `${label}: ${f}`) : [`${label}s format: ${fallback}`])
  return [...one('Input(s)', o.inputIOFormats), ...one('Output(s)', o.outputIOFormats)]
}

function buildSection8(o: Options): string[] {
  return [
    '=== Build Options ===',
    'Max batch: explicit batch',
    `Memory Pools: ${pools(o)}`,
    'minTiming: 1',
    `avgTiming: ${o.avgTiming}`,
    `Precision: ${precision(o)}`,
    'LayerPrecisions: ',
    'Layer Device Types: ',
    `Calibration: ${o.int8 && !o.calib ? 'Dynamic' : o.calib}`,
    `Refit: ${enabled(o.refit)}`,
    `Version Compatible: ${enabled(o.versionCompatible)}`,
    'TensorRT runtime: full',
    'Lean DLL Path: ',
    'Tempfile Controls: { in_memory: allow, temporary: allow }',
    'Exclude Lean Runtime: Disabled',
    'Sparsity: Disabled',
    'Safe mode: Disabled',
    'DirectIO mode: Disabled',
    'Restricted mode: Disabled',
    `Skip inference: ${enabled(o.skipInference)}`,
    `Save engine: ${o.saveEngine ?? ''}`,
    `Load engine: ${o.loadEngine ?? ''}`,
    `Profiling verbosity: ${o.profilingVerbosity}`,
    'Tactic sources: Using default tactic sources',
    `timingCacheMode: ${o.noBuilderCache ? 'disable' : o.timingCacheFile ? 'global' : 'local'}`,
    `timingCacheFile: ${o.timingCacheFile}`,
    'Heuristic: Disabled',
    'Preview Features: Use default preview flags.',
    `MaxAuxStreams: ${o.maxAuxStreams}`,
    `BuilderOptimizationLevel: ${o.builderOptimizationLevel}`,
    ...ioFormats(o, 'fp32:CHW'),
    ...buildShapes(o),
    'Input calibration shapes: model',
  ]
}

function systemSection(o: Options): string[] {
  const v10 = o.version.major >= 10
  return [
    '=== System Options ===',
    `Device: ${o.device}`,
    'DLACore: ',
    `${v10 ? 'Loaded static plugins:' : 'Plugins:'}${o.plugins.map((p) => ` ${p}`).join('')}`,
    'setPluginsToSerialize:',
    'dynamicPlugins:',
    'ignoreParsedPluginLibs: 0',
    '',
  ]
}

function inferenceSection(o: Options): string[] {
  const v10 = o.version.major >= 10
  return [
    '=== Inference Options ===',
    'Batch: Explicit',
    ...inferenceShapes(o),
    `Iterations: ${o.iterations}`,
    `Duration: ${cpp(o.duration)}s (+ ${cpp(o.warmUp)}ms warm up)`,
    `Sleep time: ${cpp(o.sleepTime)}ms`,
    `Idle time: ${cpp(o.idleTime)}ms`,
    `Inference Streams: ${o.infStreams}`,
    'ExposeDMA: Disabled',
    `Data transfers: ${enabled(o.dataTransfers)}`,
    `Spin-wait: ${enabled(o.spinWait)}`,
    'Multithreading: Disabled',
    `CUDA Graph: ${enabled(o.cudaGraph)}`,
    `Separate profiling: ${enabled(o.separateProfileRun)}`,
    'Time Deserialize: Disabled',
    'Time Refit: Disabled',
    `NVTX verbosity: ${o.profilingVerbosity}`,
    'Persistent Cache Ratio: 0',
    ...(v10 ? ['Optimization Profile Index: 0', 'Weight Streaming Budget: 100.000000%'] : []),
    'Inputs:',
    ...[...o.loadInputs].map(([name, file]) => `${name}<-${file}`),
    ...(v10 ? ['Debug Tensor Save Destinations:', 'Dump All Debug Tensor in Formats: '] : []),
  ]
}

function reportingSection(o: Options): string[] {
  return [
    '=== Reporting Options ===',
    `Verbose: ${enabled(o.verbose)}`,
    `Averages: ${o.avgRuns} inferences`,
    `Percentiles: ${o.percentiles.map((p) => cpp(p)).join(',')}`,
    'Dump refittable layers:Disabled',
    `Dump output: ${enabled(o.dumpOutput)}`,
    `Profile: ${enabled(o.dumpProfile)}`,
    `Export timing to JSON file: ${o.exportTimes}`,
    `Export output to JSON file: ${o.exportOutput}`,
    `Export profile to JSON file: ${o.exportProfile}`,
    '',
  ]
}

/** `sample::gLogInfo << options`. */
export function dumpOptions(log: Log, o: Options): void {
  const v10 = o.version.major >= 10
  const build = v10 ? (o.loadEngine !== undefined ? [''] : buildSection10(o)) : buildSection8(o)
  for (const line of [...modelSection(o), ...build, ...systemSection(o), ...inferenceSection(o), ...reportingSection(o)]) log.info(line)
}
