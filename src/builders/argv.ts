/**
 * trtexec's argument lists, per TensorRT version (../shared/research/trt-anchors.md has the contract; the
 * flags were checked against trtexec's sampleOptions.cpp at each tag and the help texts in
 * fixtures/trtexec-help):
 *
 * - every value as `--flag=value`: trtexec splits an argument at its first `=` only, so `--onnx model.onnx`
 *   is an empty --onnx plus an unknown option;
 * - precision: fp16 `--fp16`, bf16 `--bf16` (TensorRT 9+), int8 `--int8 --fp16` on a Q/DQ model (the float
 *   layers left in fp16), best `--best`; from 10.12 a model whose own types already say the precision (an
 *   fp16 model for fp16, a Q/DQ model for int8) is built `--stronglyTyped` instead, without those flags,
 *   which a strongly typed build would only warn about and drop; TensorRT 11 removed them (every network is
 *   strongly typed), so there fp16 and int8 need such a model and bf16 and best are refused;
 * - `--memPoolSize=workspace:<N>M`: 10.x reads a trailing B as bytes, so `1024MiB` would be 1 KiB (the
 *   cookbook's 10.16 log prints `workspace: 0.000976562 MiB` for it), while 8.x reads the leading number as
 *   MiB; `<N>M` is N MiB in both;
 * - the benchmark runs in the build's own process (trtexec's default 10 iterations / 3 s) unless skipped;
 *   `--exportProfile` attaches a profiler that suppresses the performance summary unless the profile runs
 *   separately (`--separateProfileRun`, always so in 11.x, where the flag is a deprecated no-op).
 */
import { ExternalError, UsageError } from '../lib/errors.js'
import { atLeast } from './trtexec-version.js'
import type { BuildArgvOptions, BuildPrecision, ShapeProfile, ShapeRange, TrtVersion, ValidateArgvOptions } from './types.js'

/** The oldest TensorRT whose trtexec has the flags a build needs (`--memPoolSize` arrived in 8.4). */
export const MIN_TRT = { major: 8, minor: 4 }

export const HARDWARE_COMPATIBILITY_LEVELS = ['none', 'ampere+', 'sameComputeCapability'] as const

/** Iterations of the validation run: outputs of one inference, not a benchmark. */
export const VALIDATION_RUN = ['--iterations=1', '--warmUp=0', '--duration=0', '--avgRuns=1']

export function assertSupported(v: TrtVersion): void {
  if (atLeast(v, MIN_TRT.major, MIN_TRT.minor)) return
  throw new ExternalError(`trtexec of TensorRT ${v.text} is older than modelforge drives (${MIN_TRT.major}.${MIN_TRT.minor} and later): it lacks --memPoolSize and the build flags of 8.6`, {
    code: 'TRTEXEC_UNSUPPORTED',
    hint: 'Install TensorRT 8.6 or later (10.x recommended), or point TRTEXEC at a newer trtexec.',
    details: { version: v.text },
  })
}

/** The arguments of a build (and, unless skipBenchmark, its benchmark) for this trtexec. */
export function buildArgv(o: BuildArgvOptions): string[] {
  const v = o.version
  assertSupported(v)
  const argv = [`--onnx=${o.onnx}`, `--saveEngine=${o.engine}`, ...precisionFlags(o)]
  if (o.workspaceMiB !== undefined) {
    if (!Number.isSafeInteger(o.workspaceMiB) || o.workspaceMiB < 1) {
      throw new UsageError(`The workspace must be a whole number of MiB of at least 1 (got ${o.workspaceMiB})`, { code: 'INVALID_OPTION', hint: 'For example --workspace 4096 (MiB).', details: { workspaceMiB: o.workspaceMiB } })
    }
    argv.push(`--memPoolSize=workspace:${o.workspaceMiB}M`)
  }
  if (o.builderOptimizationLevel !== undefined) {
    const level = o.builderOptimizationLevel
    if (!Number.isInteger(level) || level < 0 || level > 5) {
      throw new UsageError(`The builder optimization level must be a whole number from 0 to 5 (got ${level})`, { code: 'INVALID_OPTION', hint: 'TensorRT\'s default is 3; higher levels search longer for faster kernels.', details: { builderOptimizationLevel: level } })
    }
    requireVersion(v, 8, 6, '--builderOptimizationLevel')
    argv.push(`--builderOptimizationLevel=${level}`)
  }
  if (o.hardwareCompatibilityLevel !== undefined) {
    const level = HARDWARE_COMPATIBILITY_LEVELS.find((l) => l.toLowerCase() === o.hardwareCompatibilityLevel!.toLowerCase())
    if (!level) {
      throw new UsageError(`Unknown hardware compatibility level ${JSON.stringify(o.hardwareCompatibilityLevel)}`, { code: 'INVALID_OPTION', hint: `Use one of ${HARDWARE_COMPATIBILITY_LEVELS.join(', ')}.`, details: { hardwareCompatibilityLevel: o.hardwareCompatibilityLevel } })
    }
    requireVersion(v, 8, 6, '--hardwareCompatibilityLevel')
    if (level === 'sameComputeCapability') requireVersion(v, 10, 9, '--hardwareCompatibilityLevel=sameComputeCapability')
    argv.push(`--hardwareCompatibilityLevel=${level}`)
  }
  if (o.timingCacheFile) argv.push(`--timingCacheFile=${o.timingCacheFile}`)
  if (Object.keys(o.profile).length > 0) {
    for (const which of ['min', 'opt', 'max'] as const) argv.push(`--${which}Shapes=${shapeSpec(o.profile, which)}`)
  }
  if (o.layerInfo) argv.push('--profilingVerbosity=detailed', `--exportLayerInfo=${o.layerInfo}`)
  if (o.skipBenchmark) {
    // --exportTimes and --exportProfile are written by the inference phase, which is skipped: not asked for.
    argv.push(atLeast(v, 8, 6) ? '--skipInference' : '--buildOnly')
  } else {
    if (o.times) argv.push(`--exportTimes=${o.times}`)
    if (o.profileJson) {
      argv.push(`--exportProfile=${o.profileJson}`)
      if (v.major < 11) argv.push('--separateProfileRun')
    }
  }
  return argv
}

/** The arguments that run a built engine once on given inputs and write its outputs as JSON. */
export function validateArgv(o: ValidateArgvOptions): string[] {
  assertSupported(o.version)
  const argv = [`--loadEngine=${o.engine}`]
  if (Object.keys(o.shapes).length > 0) {
    argv.push(`--shapes=${Object.entries(o.shapes).map(([name, dims]) => `${specName(name, '--shapes')}:${dims.join('x')}`).join(',')}`)
  }
  const inputs = Object.entries(o.inputs)
  if (inputs.length > 0) argv.push(`--loadInputs=${inputs.map(([name, file]) => loadInput(name, file)).join(',')}`)
  argv.push(`--exportOutput=${o.output}`, ...VALIDATION_RUN)
  return argv
}

function requireVersion(v: TrtVersion, major: number, minor: number, option: string): void {
  if (atLeast(v, major, minor)) return
  throw new UsageError(`trtexec of TensorRT ${v.text} has no ${option} (it arrived in TensorRT ${major}.${minor})`, {
    code: 'TRTEXEC_OPTION_UNSUPPORTED',
    hint: `Drop the option, or build with TensorRT ${major}.${minor} or later.`,
    details: { option, version: v.text, since: `${major}.${minor}` },
  })
}

// buildEngine makes these models itself from an fp32 one; argv refuses anything else, as a library guard.
const TRANSFORM = {
  fp16: '`modelforge quantize --precision fp16` (or let `build --precision fp16` make it)',
  int8: '`modelforge quantize --precision int8 --calib-data <file>` (or `build --precision int8 --calib-data <file>`)',
} as const

function precisionFlags(o: BuildArgvOptions): string[] {
  const v = o.version
  const p: BuildPrecision = o.precision
  const typed = (p === 'fp16' && o.typedModel === 'fp16') || (p === 'int8' && o.typedModel === 'qdq')
  if (p === 'int8' && o.typedModel !== 'qdq') {
    throw new UsageError(`An int8 build needs a Q/DQ model (QuantizeLinear/DequantizeLinear nodes holding calibrated scales): ${o.onnx} has none${v.major >= 11 ? `, and TensorRT ${v.text} takes int8 only from them` : ', and trtexec\'s --int8 on such a model uses placeholder ranges that make its outputs meaningless'}`, {
      code: 'PRECISION_NEEDS_TRANSFORM',
      hint: `Make a Q/DQ model calibrated on real inputs with ${TRANSFORM.int8}, then build that model.`,
      details: { precision: p, version: v.text },
    })
  }
  if (v.major >= 11) {
    if (p === 'fp16' && !typed) {
      throw new UsageError(`TensorRT ${v.text} builds every network strongly typed, so the model's own types decide the precision, and ${o.onnx} is not an fp16 model (trtexec 11 has no --fp16)`, {
        code: 'PRECISION_NEEDS_TRANSFORM',
        hint: `Make an fp16 model with ${TRANSFORM.fp16}, then build that model.`,
        details: { precision: p, version: v.text },
      })
    }
    if (p === 'bf16' || p === 'best') {
      throw new UsageError(`TensorRT ${v.text} has no --${p}: every network is strongly typed, so the precision comes from the model's own types${p === 'bf16' ? ', and modelforge has no bf16 transform' : ''}`, {
        code: 'PRECISION_UNSUPPORTED',
        hint: `Build --precision fp16 from a model made by ${TRANSFORM.fp16}, or int8 from one made by ${TRANSFORM.int8}, or fp32 from the model as it is.`,
        details: { precision: p, version: v.text },
      })
    }
    if (p === 'fp32' && o.typedModel) {
      throw new UsageError(`TensorRT ${v.text} builds a model in its own types: this ${o.typedModel === 'fp16' ? 'fp16' : 'Q/DQ'} model would give an ${o.typedModel === 'fp16' ? 'fp16' : 'int8'} engine, not fp32`, {
        code: 'PRECISION_UNSUPPORTED',
        hint: `Build --precision ${o.typedModel === 'fp16' ? 'fp16' : 'int8'} from this model, or fp32 from the model it was made from.`,
        details: { precision: p, typedModel: o.typedModel, version: v.text },
      })
    }
    return []
  }
  if (typed && atLeast(v, 10, 12)) return ['--stronglyTyped']
  switch (p) {
    case 'fp32': return []
    case 'fp16': return ['--fp16']
    case 'bf16':
      if (v.major < 9) {
        throw new UsageError(`trtexec of TensorRT ${v.text} has no --bf16 (bf16 builds arrived in TensorRT 9)`, {
          code: 'PRECISION_UNSUPPORTED',
          hint: 'Build --precision fp16 instead, or use TensorRT 10 for bf16.',
          details: { precision: p, version: v.text },
        })
      }
      return ['--bf16']
    case 'int8': return ['--int8', '--fp16']
    case 'best': return ['--best']
  }
}

/**
 * A tensor name inside one of trtexec's name:value lists. trtexec cuts the list at every ',' first and
 * reads a name quoted with single quotes after that, so a name with ':' is quoted ('Input:0':1x3) while
 * one with ',' or "'" cannot be written at all; in shape lists '*' is a wildcard.
 */
function specName(name: string, flag: '--shapes' | '--minShapes' | '--optShapes' | '--maxShapes' | '--loadInputs', forceQuote = false): string {
  const bad = flag === '--loadInputs' ? /[,']/ : /[,'*]/
  if (bad.test(name)) {
    throw new UsageError(`trtexec cannot take input ${JSON.stringify(name)} in ${flag}: ${flag === '--loadInputs' ? 'commas and single quotes' : "commas, single quotes and '*'"} in a name break its list syntax`, {
      code: 'TRTEXEC_NAME_UNSUPPORTED',
      hint: 'Rename the input (re-export the model with another input name).',
      details: { input: name, flag },
    })
  }
  return forceQuote || name.includes(':') ? `'${name}'` : name
}

function shapeSpec(profile: ShapeProfile, which: keyof ShapeRange): string {
  const flag = `--${which}Shapes` as const
  return Object.entries(profile).map(([name, r]) => `${specName(name, flag)}:${r[which].join('x')}`).join(',')
}

function loadInput(name: string, file: string): string {
  if (/[,']/.test(file)) {
    throw new UsageError(`trtexec cannot read input file ${file} through --loadInputs: commas and single quotes in a path break its list syntax`, {
      code: 'TRTEXEC_NAME_UNSUPPORTED',
      hint: 'Use an output directory whose path has no commas or single quotes.',
      details: { input: name, file },
    })
  }
  // Unquoted, trtexec takes the name up to the last ':', which a path with ':' would move into the name.
  return `${specName(name, '--loadInputs', file.includes(':'))}:${file}`
}

/** One line a POSIX shell runs as exactly `file argv...` (for --dry-run: engineers paste it). */
export function shellCommand(file: string, argv: string[]): string {
  // In the command's place a word with '=' would be read as a variable assignment.
  return [shellQuote(file, file.includes('=')), ...argv.map((a) => shellQuote(a))].join(' ')
}

function shellQuote(word: string, always = false): string {
  if (!always && /^[A-Za-z0-9_\-+=:,./@%]+$/.test(word)) return word
  return `'${word.replaceAll("'", `'\\''`)}'`
}
