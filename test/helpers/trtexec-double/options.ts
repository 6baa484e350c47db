/**
 * trtexec's command line, per version. The grammar is trtexec's own (samples/common/sampleOptions.cpp):
 * every argument splits at its first '=' into a key and a value (no '=': the value is empty), each option
 * takes one occurrence of its key, and whatever is left over is an unknown option. So `--onnx model.onnx`
 * is `--onnx` with an empty value plus an unknown option `model.onnx`, and `--fp16=false` enables fp16.
 * Values are read the way the C++ reads them (std::stoi/stof/stod, the B/K/M/G suffixes of 10.x sizes), and
 * a value it cannot read throws the same message trtexec's invalid_argument carries.
 *
 * Which options exist is keyed on the version: the names every release from 8.6 to 11.1 reads, plus the
 * ranges below for those added or removed on the way (read from each release tag's sampleOptions.cpp).
 */
import { atLeast, type Version } from './version.js'

/** A value trtexec cannot read: printed as `[E] <message>` after the help, then FAILED. */
export class InvalidArgument extends Error {}

/** A std::exception other than invalid_argument (std::out_of_range from stoi): `Uncaught exception detected`. */
export class UncaughtException extends Error {}

// Read by every trtexec from 8.6 to 11.1.
const ALWAYS = `--allowGPUFallback --avgRuns --avgTiming --builderOptimizationLevel --consistency --device --directIO
--dumpLayerInfo --dumpOutput --dumpProfile --dumpRawBindingsToFile --dumpRefit --duration --dynamicPlugins
--excludeLeanRuntime --exportLayerInfo --exportOutput --exportProfile --exportTimes --exposeDMA
--hardwareCompatibilityLevel --help --idleTime --ignoreParsedPluginLibs --infStreams --inputIOFormats --iterations
--layerDeviceTypes --leanDLLPath --loadEngine --loadInputs --maxAuxStreams --maxShapes --memPoolSize --minShapes
--noBuilderCache --noDataTransfers --noTF32 --onnx --optShapes --outputIOFormats --percentile --persistentCacheRatio
--plugins --preview --profilingVerbosity --refit --safe --saveEngine --separateProfileRun --setPluginsToSerialize
--shapes --skipInference --sleepTime --sparsity --staticPlugins --streams --tacticSources --tempdir
--tempfileControls --threads --timeDeserialize --timeRefit --timingCacheFile --useCudaGraph --useDLACore
--useManagedMemory --useRuntime --useSpinWait --vc --verbose --versionCompatible --warmUp -h`.split(/\s+/)

/** [first version that reads it, first version that no longer does]; either end open. */
const RANGES: Record<string, [string | null, string | null]> = {
  // Gone in 9.x/10.0: implicit batch, UFF/Caffe, and the flags memPoolSize and skipInference replaced.
  '--batch': [null, '9.0.0'], '--deploy': [null, '9.0.0'], '--maxBatch': [null, '9.0.0'], '--model': [null, '9.0.0'],
  '--output': [null, '9.0.0'], '--uff': [null, '9.0.0'], '--uffInput': [null, '9.0.0'], '--uffNHWC': [null, '9.0.0'],
  '--buildOnly': [null, '10.0.0'], '--explicitBatch': [null, '10.0.0'], '--explicitPrecision': [null, '10.0.0'],
  '--heuristic': [null, '10.0.0'], '--minTiming': [null, '10.0.0'], '--nvtxMode': [null, '10.0.0'], '--workspace': [null, '10.0.0'],
  // Weak typing and implicit INT8 calibration, removed in 11.0 (networks are always strongly typed there).
  '--fp16': [null, '11.0.0'], '--int8': [null, '11.0.0'], '--fp8': [null, '11.0.0'], '--best': [null, '11.0.0'],
  '--bf16': ['9.0.0', '11.0.0'], '--int4': ['10.1.0', '11.0.0'], '--calib': [null, '11.0.0'], '--calibProfile': ['9.0.0', '11.0.0'],
  '--precisionConstraints': [null, '11.0.0'], '--layerPrecisions': [null, '11.0.0'], '--layerOutputTypes': [null, '11.0.0'],
  '--minShapesCalib': [null, '11.0.0'], '--optShapesCalib': [null, '11.0.0'], '--maxShapesCalib': [null, '11.0.0'],
  '--restricted': [null, '11.0.0'], '--weightless': ['9.0.0', '11.0.0'],
  '--buildDLAStandalone': ['8.6.1', null],
  '--stronglyTyped': ['9.0.0', null], '--dumpOptimizationProfile': ['9.0.0', null], '--errorOnTimingCacheMiss': ['9.0.0', null],
  '--getPlanVersionOnly': ['9.0.0', null], '--noCompilationCache': ['9.0.0', null], '--profile': ['9.0.0', null], '--useProfile': ['9.0.0', null],
  '--allocationStrategy': ['10.0.0', null], '--allowWeightStreaming': ['10.0.0', null], '--markDebug': ['10.0.0', null],
  '--pi': ['10.0.0', null], '--pluginInstanceNorm': ['10.0.0', null], '--saveDebugTensors': ['10.0.0', null],
  '--stripWeights': ['10.0.0', null], '--weightStreamingBudget': ['10.0.0', null], '--stripAllWeights': ['10.1.0', null],
  '--runtimePlatform': ['10.2.0', null], '--maxTactics': ['10.4.0', null], '--monitorMemory': ['10.6.0', null],
  '--asyncFileReader': ['10.7.0', null], '--l2LimitForTiling': ['10.8.0', null], '--tilingOptimizationLevel': ['10.8.0', null],
  '--uint8AsymmetricQuantizationDLA': ['10.11.0', null], '--distributiveIndependence': ['10.12.0', null],
  '--markUnfusedTensorsAsDebugTensors': ['10.12.0', null], '--saveAllDebugTensors': ['10.12.0', null],
  '--dumpKernelText': ['10.13.0', null], '--remoteAutoTuningConfig': ['10.13.0', null], '--safetyPlugins': ['10.13.0', null],
  '--decomposableAttentions': ['10.14.0', null], '--refitFromOnnx': ['10.14.0', null], '--cpuOnly': ['10.15.0', null],
  '--enablePluginOverride': ['10.15.0', null], '--adjustForDLA': ['10.16.0', null], '--reportCapabilityDLA': ['10.16.0', null],
  // 11.x: transfers off, CUDA graphs and spin-wait on by default; built-in accuracy checks and build-route tuning.
  '--includeDataTransfers': ['11.0.0', null], '--noCudaGraph': ['11.0.0', null], '--noSpinWait': ['11.0.0', null],
  '--accuracyAlgorithm': ['11.1.0', null], '--accuracyThreshold': ['11.1.0', null], '--atol': ['11.1.0', null], '--rtol': ['11.1.0', null],
  '--continue': ['11.1.0', null], '--dryRun': ['11.1.0', null], '--helpBuildRoute': ['11.1.0', null], '--loadRefOutputs': ['11.1.0', null],
  '--refPair': ['11.1.0', null], '--saveAllEngines': ['11.1.0', null], '--setBuildRoute': ['11.1.0', null],
  '--tuneBuildRouteFile': ['11.1.0', null], '--tuneBuildRoutes': ['11.1.0', null], '--tuningCacheFile': ['11.1.0', null],
  '--tuningResultFile': ['11.1.0', null], '--tuningSearch': ['11.1.0', null], '--tuningTimeOut': ['11.1.0', null],
}

function inRange(v: Version, [since, before]: [string | null, string | null]): boolean {
  const at = (s: string) => s.split('.').map(Number) as [number, number, number]
  if (since && !atLeast(v, ...at(since))) return false
  if (before && atLeast(v, ...at(before))) return false
  return true
}

/** Every option key this version's trtexec reads. */
export function knownOptions(v: Version): Set<string> {
  const known = new Set(ALWAYS)
  for (const [name, range] of Object.entries(RANGES)) if (inRange(v, range)) known.add(name)
  return known
}

// Options read with std::stoi (int) or std::stof/stod (float), for the ones the double only validates.
const INTS = new Set(['--avgTiming', '--maxAuxStreams', '--builderOptimizationLevel', '--maxTactics', '--device', '--useDLACore',
  '--iterations', '--avgRuns', '--infStreams', '--streams', '--calibProfile', '--useProfile', '--tilingOptimizationLevel',
  '--minTiming', '--batch', '--maxBatch', '--nvtxMode', '--refPair'])
const FLOATS = new Set(['--duration', '--warmUp', '--sleepTime', '--idleTime', '--persistentCacheRatio', '--atol', '--rtol',
  '--accuracyThreshold', '--workspace'])
// Read once per occurrence, so they may repeat.
const REPEATABLE = new Set(['--plugins', '--staticPlugins', '--dynamicPlugins', '--setPluginsToSerialize', '--safetyPlugins'])

export interface Arg { key: string; value: string; pos: number }

/** argsToArgumentsMap: split each argument at its first '='. */
export function splitArgs(args: readonly string[]): Arg[] {
  return args.map((a, i) => {
    const at = a.indexOf('=')
    return at < 0 ? { key: a, value: '', pos: i + 1 } : { key: a.slice(0, at), value: a.slice(at + 1), pos: i + 1 }
  })
}

/** std::stoi: leading whitespace, a sign and digits; trailing text is ignored; no digits throws. */
export function stoi(s: string): number {
  const m = /^\s*([+-]?\d+)/.exec(s)
  if (!m) throw new InvalidArgument('stoi')
  const n = Number(m[1])
  if (n > 2147483647 || n < -2147483648) throw new UncaughtException('stoi')
  return n
}

/** std::stof / std::stod: the longest leading float (inf and nan included). */
export function stof(s: string, fn = 'stof'): number {
  const m = /^\s*([+-]?(?:inf(?:inity)?|nan|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?))/i.exec(s)
  if (!m) throw new InvalidArgument(fn)
  const t = m[1]!.toLowerCase()
  if (t.replace(/^[+-]/, '').startsWith('inf')) return t.startsWith('-') ? -Infinity : Infinity
  if (t.replace(/^[+-]/, '') === 'nan') return NaN
  return Number(m[1])
}

const UNITS: Record<string, number> = { B: 1, K: 1 << 10, M: 1 << 20, G: 1 << 30 }

/** A 10.x size: stod times the unit of its last character (a digit means bytes). */
export function sizeBytes(s: string): number {
  const last = s.at(-1) ?? ''
  let unit = 1
  if (last && !/\d/.test(last)) {
    const u = last.toUpperCase()
    if (!(u in UNITS)) {
      throw new InvalidArgument(`Error parsing "${s}": invalid unit specifier '${u}'. Valid base-2 unit suffixes include: B (Bytes), G (Gibibytes), K (Kibibytes), M (Mebibytes).`)
    }
    unit = UNITS[u]!
  }
  return stof(s, 'stod') * unit
}

/** splitToStringVec: empty pieces between separators are kept, a trailing separator adds none. */
export function splitList(s: string, sep: string): string[] {
  const out: string[] = []
  for (let start = 0; start < s.length;) {
    let at = s.indexOf(sep, start)
    if (at < 0) at = s.length
    out.push(s.slice(start, at))
    start = at + 1
  }
  return out
}

/** splitNameAndValue: `'name:with:colons':value`, or everything before the last ':' is the name. */
export function splitNameValue(s: string): [string, string] {
  const quoted = splitList(s, "'")
  if (quoted.length !== 1) {
    if (quoted.length !== 3) {
      throw new InvalidArgument(`Found invalid number of 's when parsing ${s}. Expected: 2, received: ${quoted.length - 1}. Please ensure that a singular comma is used within each comma-separated key-value pair for options like --inputIOFormats, --optShapes, --optShapesCalib, --layerPrecisions, etc.`)
    }
    return [quoted[0]! + quoted[1]!, quoted[2]!.slice(1)]
  }
  const parts = splitList(s, ':')
  if (parts.length < 2) return [parts[0] ?? '', parts[0] ?? '']
  return [parts.slice(0, -1).join(':'), parts.at(-1)!]
}

/** `1x3x224x224`, `scalar` or nothing for a 0-D shape. */
export function parseDims(s: string): number[] {
  if (s === 'scalar') return []
  return splitList(s, 'x').map((d) => stoi(d))
}

export type ShapeSpec = Map<string, number[]>

export interface Range { min: number[]; opt: number[]; max: number[] }

/**
 * processShapes: fills the missing ends of the build profile from the given ones (warning about each
 * broadcast), then shares shapes between build and inference: inference shapes default to the opt shapes,
 * and an input given only in --shapes is built with min = opt = max.
 */
function buildProfile(min: ShapeSpec, opt: ShapeSpec, max: ShapeSpec, inference: ShapeSpec, warn: (m: string) => void): Map<string, Range> {
  const profile = new Map<string, Range>()
  const given = { min: min.size > 0, opt: opt.size > 0, max: max.size > 0 }
  if (given.min || given.opt || given.max) {
    for (const name of new Set([...min.keys(), ...opt.keys(), ...max.keys()])) {
      let lo = min.get(name)
      let mid = opt.get(name)
      let hi = max.get(name)
      if (!given.min) {
        warn(`${given.opt ? 'optShapes' : 'maxShapes'} is being broadcasted to minShapes for tensor ${name}`)
        lo = given.opt ? mid : hi
      }
      if (!given.opt) {
        warn(`${given.max ? 'maxShapes' : 'minShapes'} is being broadcasted to optShapes for tensor ${name}`)
        mid = given.max ? hi : lo
      }
      if (!given.max) {
        warn(`${given.opt ? 'optShapes' : 'minShapes'} is being broadcasted to maxShapes for tensor ${name}`)
        hi = given.opt ? mid : lo
      }
      const any = (lo ?? mid ?? hi)!
      profile.set(name, { min: lo ?? any, opt: mid ?? any, max: hi ?? any })
    }
  }
  for (const [name, r] of profile) if (!inference.has(name)) inference.set(name, r.opt)
  for (const [name, dims] of inference) if (!profile.has(name)) profile.set(name, { min: dims, opt: dims, max: dims })
  return profile
}

function parseShapeSpec(value: string): ShapeSpec {
  const out: ShapeSpec = new Map()
  for (const item of splitList(value, ',')) {
    const [name, dims] = splitNameValue(item)
    if (!out.has(name)) out.set(name, parseDims(dims))
  }
  return out
}

export interface MemPools { workspace?: number; dlaSRAM?: number; dlaLocalDRAM?: number; dlaGlobalDRAM?: number; tacticSharedMem?: number }

export interface Options {
  version: Version
  onnx?: string
  loadEngine?: string
  saveEngine?: string
  fp16: boolean; bf16: boolean; int8: boolean; fp8: boolean; int4: boolean; best: boolean
  stronglyTyped: boolean
  tf32: boolean
  precisionConstraints: 'none' | 'prefer' | 'obey'
  calib: string
  /** MiB (tacticSharedMem: KiB), as the options dump prints them. */
  memPools: MemPools
  builderOptimizationLevel: number
  maxAuxStreams: number
  avgTiming: number
  hardwareCompatibilityLevel: 'none' | 'ampere+' | 'sameComputeCapability'
  versionCompatible: boolean
  refit: boolean
  stripWeights: boolean
  skipInference: boolean
  timingCacheFile: string
  noBuilderCache: boolean
  /** 0 layer_names_only, 1 none, 2 detailed (nvinfer1::ProfilingVerbosity). */
  profilingVerbosity: number
  getPlanVersionOnly: boolean
  inputIOFormats: string
  outputIOFormats: string
  minShapes: ShapeSpec
  optShapes: ShapeSpec
  maxShapes: ShapeSpec
  shapes: ShapeSpec
  /** The one optimization profile, after broadcasting and sharing with --shapes. */
  profile: Map<string, Range>
  loadInputs: Map<string, string>
  iterations: number
  duration: number
  warmUp: number
  sleepTime: number
  idleTime: number
  infStreams: number
  avgRuns: number
  percentiles: number[]
  dataTransfers: boolean
  spinWait: boolean
  cudaGraph: boolean
  separateProfileRun: boolean
  verbose: boolean
  dumpOutput: boolean
  dumpProfile: boolean
  dumpLayerInfo: boolean
  dumpRawBindingsToFile: boolean
  exportTimes: string
  exportOutput: string
  exportProfile: string
  exportLayerInfo: string
  device: number
  plugins: string[]
  /** What the log says while the options are read (deprecations, precision notes), in order. */
  notes: { severity: 'I' | 'W'; message: string }[]
}

export interface ParseResult {
  /** Present when the run only prints the help. */
  help?: 'help-flag' | 'no-arguments'
  options?: Options
  /** Keys left over: `[E] Unknown option: <key> <value>` each. */
  unknown: Arg[]
}

class Args {
  constructor(private readonly list: Arg[]) {}
  get rest(): Arg[] { return this.list }
  has(key: string): boolean { return this.list.some((a) => a.key === key) }
  /** getAndDelOption: one occurrence (the first), removed. */
  take(key: string): string | undefined {
    const i = this.list.findIndex((a) => a.key === key)
    if (i < 0) return undefined
    return this.list.splice(i, 1)[0]!.value
  }
  takeAll(key: string): string[] {
    const out: string[] = []
    for (let v = this.take(key); v !== undefined; v = this.take(key)) out.push(v)
    return out
  }
  flag(key: string): boolean { return this.take(key) !== undefined }
}

/**
 * Reads the command line for the version. Throws InvalidArgument/UncaughtException as trtexec does; returns
 * the options (or that only the help is wanted) and the keys nobody read.
 */
export function parseOptions(argv: readonly string[], version: Version, smVersion: number, onNote?: (severity: 'I' | 'W', message: string) => void): ParseResult {
  const list = splitArgs(argv)
  if (list.some((a) => a.key === '--help' || a.key === '-h')) return { help: 'help-flag', unknown: [] }
  if (list.length === 0) return { help: 'no-arguments', unknown: [] }
  const known = knownOptions(version)
  // Options this version does not know stay in the list: they are what "Unknown option" reports.
  const args = new Args(list)
  const usable = (key: string) => known.has(key)
  const take = (key: string) => (usable(key) ? args.take(key) : undefined)
  const flag = (key: string) => (usable(key) ? args.flag(key) : false)
  const int = (key: string, fallback: number) => {
    const v = take(key)
    return v === undefined ? fallback : stoi(v)
  }
  const float = (key: string, fallback: number) => {
    const v = take(key)
    return v === undefined ? fallback : stof(v)
  }
  const notes: Options['notes'] = []
  const note = (severity: 'I' | 'W', message: string) => {
    notes.push({ severity, message })
    onNote?.(severity, message)
  }
  const warn = (message: string) => note('W', message)
  const v11 = version.major >= 11
  const v10 = version.major >= 10

  // --- model
  const onnxArg = take('--onnx')
  // trtexec expands a leading ~ with $HOME.
  const onnx = onnxArg?.startsWith('~') && process.env.HOME ? process.env.HOME + onnxArg.slice(1) : onnxArg
  if (version.major < 10) for (const k of ['--uff', '--model', '--deploy', '--output', '--uffInput', '--uffNHWC']) take(k)

  // --- build
  if (flag('--explicitBatch')) warn('--explicitBatch flag has been deprecated and has no effect!')
  if (flag('--explicitPrecision')) warn('--explicitPrecision flag has been deprecated and has no effect!')
  const memPools: MemPools = {}
  const workspace = take('--workspace')
  if (workspace !== undefined) {
    warn('--workspace flag has been deprecated by --memPoolSize flag.')
    memPools.workspace = stof(workspace, 'stod')
  }
  const poolText = take('--memPoolSize')
  if (poolText !== undefined) {
    for (const spec of splitList(poolText, ',')) {
      const [pool, size] = splitNameValue(spec)
      let mib: number
      if (v10) {
        // 10.x: a size without a unit is MiB; "1024MiB" ends in B, so it is 1024 bytes.
        let bytes: number
        try {
          bytes = sizeBytes(/\d$/.test(size) ? `${size}M` : size)
        } catch (err) {
          if (err instanceof InvalidArgument) throw new InvalidArgument(`${err.message} conversion failure: failed to parse --memPoolSize. Please double check your input string.`)
          throw err
        }
        mib = bytes / (1 << 20)
      } else {
        // 8.x reads the number in MiB and ignores what follows it.
        mib = stof(size, 'stod')
      }
      if (mib < 0) throw new InvalidArgument(`Negative memory pool size: ${(mib * (v10 ? 1 << 20 : 1)).toFixed(6)}`)
      if (pool === 'workspace') memPools.workspace = mib
      else if (pool === 'dlaSRAM') memPools.dlaSRAM = mib
      else if (pool === 'dlaLocalDRAM') memPools.dlaLocalDRAM = mib
      else if (pool === 'dlaGlobalDRAM') memPools.dlaGlobalDRAM = mib
      else if (pool === 'tacticSharedMem' && v10) memPools.tacticSharedMem = mib * 1024
      else throw new InvalidArgument(`Unknown memory pool: ${pool}`)
    }
  }
  const avgTiming = int('--avgTiming', 8)
  const maxAuxStreams = int('--maxAuxStreams', -1)
  const builderOptimizationLevel = int('--builderOptimizationLevel', v10 ? -1 : 3)
  const tf32 = !flag('--noTF32')
  let fp16 = flag('--fp16')
  let bf16 = flag('--bf16')
  let int8 = flag('--int8')
  let fp8 = flag('--fp8')
  let int4 = flag('--int4')
  const best = flag('--best')
  const stronglyTypedFlag = flag('--stronglyTyped')
  const stronglyTyped = v11 || stronglyTypedFlag
  if (v11 && stronglyTypedFlag) warn('--stronglyTyped flag has been deprecated. Strongly typed network is now enabled by default. This flag is a no-op.')
  if (!v11) {
    if (best && stronglyTyped) {
      throw new InvalidArgument('--best and --stronglyTyped cannot be both set. --best enables implicit precisions, while --stronglyTyped enforces explicit precisions.')
    }
    if (stronglyTyped) {
      const disable = (on: boolean, mode: string, type: string) => {
        if (on) warn(`Invalid usage, setting ${mode} mode is not allowed if graph is strongly typed. Disabling BuilderFlag::${type}.`)
        return false
      }
      fp16 = disable(fp16, 'fp16', 'kFP16')
      int8 = disable(int8, 'int8', 'kINT8')
      bf16 = disable(bf16, 'bf16', 'kBF16')
      fp8 = disable(fp8, 'fp8', 'kFP8')
      int4 = disable(int4, 'int4', 'kINT4')
    }
    // 10.14 deprecated weak typing (and removed it in 11.0).
    if (atLeast(version, 10, 14) && (fp16 || bf16 || int8 || fp8 || int4 || best)) {
      warn('Weakly-typed networks have been deprecated in TensorRT. You can use the AutoCast tool (https://nvidia.github.io/TensorRT-Model-Optimizer/guides/8_autocast.html) to convert the network to be strongly typed.')
    }
    if (v10 && smVersion >= 80 && !(stronglyTyped || fp16 || bf16 || int8 || fp8 || int4)) {
      note('I', 'TF32 is enabled by default. Add --noTF32 flag to further improve accuracy with some performance cost.')
    }
    if (fp8 && int8) throw new InvalidArgument("Invalid usage, fp8 and int8 aren't allowed to be enabled together.")
  }
  const pc = take('--precisionConstraints')
  let precisionConstraints: Options['precisionConstraints'] = 'none'
  if (pc !== undefined) {
    if (pc === 'prefer' || pc === 'obey' || pc === 'none') precisionConstraints = pc
    else throw new InvalidArgument(`Unknown precision constraints: ${pc}`)
  }
  take('--layerPrecisions')
  take('--layerOutputTypes')
  const calib = take('--calib') ?? ''
  const refit = flag('--refit')
  const stripWeights = flag('--stripWeights') || flag('--stripAllWeights')
  const versionCompatible = flag('--versionCompatible') || flag('--vc')
  let skipInference = flag('--skipInference')
  if (flag('--buildOnly')) {
    warn('--buildOnly flag has been deprecated by --skipInference flag.')
    skipInference = true
  }
  const saveEngine = take('--saveEngine')
  const loadEngine = take('--loadEngine')
  const timingCacheFile = take('--timingCacheFile') ?? ''
  const noBuilderCache = flag('--noBuilderCache')
  const pv = take('--profilingVerbosity')
  let profilingVerbosity = 0
  if (pv !== undefined) {
    if (pv === 'layer_names_only') profilingVerbosity = 0
    else if (pv === 'none') profilingVerbosity = 1
    else if (pv === 'detailed') profilingVerbosity = 2
    else if (pv === 'default') {
      warn('--profilingVerbosity=default has been deprecated by --profilingVerbosity=layer_names_only.')
    } else if (pv === 'verbose') {
      warn('--profilingVerbosity=verbose has been deprecated by --profilingVerbosity=detailed.')
      profilingVerbosity = 2
    } else if (pv !== '') throw new InvalidArgument(`Unknown profilingVerbosity: ${pv}`)
  }
  if (loadEngine !== undefined && saveEngine !== undefined) throw new InvalidArgument('Incompatible load and save engine options selected')
  const hw = take('--hardwareCompatibilityLevel')
  let hardwareCompatibilityLevel: Options['hardwareCompatibilityLevel'] = 'none'
  if (hw !== undefined) {
    const l = hw.toLowerCase()
    if (l === 'none') hardwareCompatibilityLevel = 'none'
    else if (l === 'ampere+') hardwareCompatibilityLevel = 'ampere+'
    else if (l === 'samecomputecapability' && v10) hardwareCompatibilityLevel = 'sameComputeCapability'
    else throw new InvalidArgument(`Unknown hardwareCompatibilityLevel: ${hw}. Valid options: none, ampere+${v10 ? ', sameComputeCapability' : ''}.`)
  }
  const getPlanVersionOnly = flag('--getPlanVersionOnly')
  const inputIOFormats = take('--inputIOFormats') ?? ''
  const outputIOFormats = take('--outputIOFormats') ?? ''

  // Shapes: one profile unless --profile is given (which the double does not play).
  const shapeSpec = (key: string, what: string) => {
    const v = take(key)
    if (v === undefined) return new Map<string, number[]>()
    try {
      return parseShapeSpec(v)
    } catch (err) {
      if (err instanceof InvalidArgument) throw new InvalidArgument(`${err.message} conversion failure: failed to parse ${what}. Please double check your input string.`)
      throw err
    }
  }
  const minShapes = shapeSpec('--minShapes', 'minShapes/optShapes/maxShapes')
  const optShapes = shapeSpec('--optShapes', 'minShapes/optShapes/maxShapes')
  const maxShapes = shapeSpec('--maxShapes', 'minShapes/optShapes/maxShapes')
  if (v10 && (args.has('--minShapes') || args.has('--optShapes') || args.has('--maxShapes'))) {
    throw new InvalidArgument('Multiple --minShapes/--optShapes/--maxShapes without --profile are not allowed. ')
  }
  for (const k of ['--minShapesCalib', '--optShapesCalib', '--maxShapesCalib']) shapeSpec(k, 'minShapesCalib/optShapesCalib/maxShapesCalib')

  // --- inference
  const shapes = shapeSpec('--shapes', 'shapes')
  const profile = buildProfile(minShapes, optShapes, maxShapes, shapes, warn)
  const loadInputs = new Map<string, string>()
  const li = take('--loadInputs')
  if (li !== undefined) {
    for (const item of splitList(li, ',')) {
      const [name, file] = splitNameValue(item)
      if (!loadInputs.has(name)) loadInputs.set(name, file)
    }
  }
  const iterations = int('--iterations', 10)
  const duration = float('--duration', 3)
  const warmUp = float('--warmUp', 200)
  const sleepTime = float('--sleepTime', 0)
  const idleTime = float('--idleTime', 0)
  let infStreams = int('--infStreams', 1)
  const streams = take('--streams')
  if (streams !== undefined) {
    warn('--streams flag has been deprecated, use --infStreams flag instead.')
    infStreams = stoi(streams)
  }
  let dataTransfers = true
  let spinWait = false
  let cudaGraph = false
  let separateProfileRun = false
  if (v11) {
    // 11.x measures the GPU alone by default: no transfers, CUDA graphs, spin-wait, a separate profile run.
    dataTransfers = flag('--includeDataTransfers')
    if (flag('--noDataTransfers')) warn('--noDataTransfers is deprecated. Data transfers are now disabled by default. Use --includeDataTransfers to re-enable data transfers.')
    if (flag('--useSpinWait')) warn('--useSpinWait is deprecated. Spin wait is now enabled by default. Use --noSpinWait to disable spin wait.')
    spinWait = !flag('--noSpinWait')
    if (flag('--useCudaGraph')) warn('--useCudaGraph is deprecated. CUDA graph is now enabled by default. Use --noCudaGraph to disable CUDA graph.')
    cudaGraph = !flag('--noCudaGraph')
    if (flag('--separateProfileRun')) warn('--separateProfileRun is deprecated. Separate profile run is now always enabled. This flag will be removed in a future release.')
    separateProfileRun = true
  } else {
    dataTransfers = !flag('--noDataTransfers')
    spinWait = flag('--useSpinWait')
    cudaGraph = flag('--useCudaGraph')
    separateProfileRun = flag('--separateProfileRun')
  }

  // --- reporting
  const verbose = flag('--verbose')
  const avgRuns = int('--avgRuns', 10)
  const percentileText = take('--percentile')
  const percentiles = percentileText === undefined || percentileText === '' ? [90, 95, 99] : splitList(percentileText, ',').map((p) => stof(p))
  for (const p of percentiles) {
    if (!(p >= 0 && p <= 100)) throw new InvalidArgument(`Percentile ${p.toFixed(6)}is not in [0,100]`)
  }
  const dumpOutput = flag('--dumpOutput')
  const dumpProfile = flag('--dumpProfile')
  const dumpLayerInfo = flag('--dumpLayerInfo')
  const dumpRawBindingsToFile = flag('--dumpRawBindingsToFile')
  const exportTimes = take('--exportTimes') ?? ''
  const exportOutput = take('--exportOutput') ?? ''
  const exportProfile = take('--exportProfile') ?? ''
  const exportLayerInfo = take('--exportLayerInfo') ?? ''

  // --- system
  const device = int('--device', 0)
  const plugins: string[] = []
  const oldPlugins = usable('--plugins') ? args.takeAll('--plugins') : []
  if (oldPlugins.length) {
    warn('--plugins flag has been deprecated, use --staticPlugins flag instead.')
    plugins.push(...oldPlugins)
  }
  if (usable('--staticPlugins')) plugins.push(...args.takeAll('--staticPlugins'))

  // Everything else this version knows is read and, where it is a number, checked as trtexec checks it.
  for (const key of known) {
    if (REPEATABLE.has(key)) {
      args.takeAll(key)
      continue
    }
    const v = args.take(key)
    if (v === undefined) continue
    if (INTS.has(key)) stoi(v)
    else if (FLOATS.has(key)) stof(v)
  }

  if (onnx === undefined && loadEngine === undefined) throw new InvalidArgument('Model missing or format not recognized')
  const options: Options = {
    version, onnx, loadEngine, saveEngine, fp16, bf16, int8, fp8, int4, best, stronglyTyped, tf32, precisionConstraints, calib,
    memPools, builderOptimizationLevel, maxAuxStreams, avgTiming, hardwareCompatibilityLevel, versionCompatible, refit,
    stripWeights, skipInference,
    timingCacheFile, noBuilderCache, profilingVerbosity, getPlanVersionOnly, inputIOFormats, outputIOFormats, minShapes,
    optShapes, maxShapes, shapes, profile, loadInputs, iterations, duration, warmUp, sleepTime, idleTime, infStreams, avgRuns,
    percentiles, dataTransfers, spinWait, cudaGraph, separateProfileRun, verbose, dumpOutput, dumpProfile, dumpLayerInfo,
    dumpRawBindingsToFile, exportTimes, exportOutput, exportProfile, exportLayerInfo, device, plugins, notes,
  }
  return { options, unknown: args.rest }
}
