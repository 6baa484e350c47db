/**
 * Proving an engine against onnxruntime: inputs generated for the engine's inference shapes (the opt
 * shapes of its profile) as validate generates them, run through onnxruntime on the ONNX model for the
 * reference and through trtexec on the engine (--loadEngine --shapes --loadInputs --exportOutput), each
 * output compared with validate's rule for the precision. Inputs go to trtexec as raw little-endian files
 * of the engine binding's type, kept in validation/ so that the validation command can be rerun by hand.
 */
import { rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { ExternalError, UsageError } from '../lib/errors.js'
import { ensureDir } from '../lib/fs.js'
import { compareOutputs, DEFAULT_TOLERANCES, type Precision, type Tolerance } from '../validate/compare.js'
import { generateInputs, resolveShape, type ModelHints } from '../validate/inputs.js'
import type { ValueInfo } from '../validate/runtime.js'
import type { Dtype, HostTensor, TensorMap } from '../validate/tensors.js'
import type { ValidateResult } from '../validate/report.js'
import { validateArgv } from './argv.js'
import { runTrtexec, type Deadline, type TrtexecRun } from './run-trtexec.js'
import { readExportedOutputs } from './trtexec-output.js'
import type { BuildPrecision, TrtVersion } from './types.js'

type Env = Record<string, string | undefined>

export const VALIDATION_DIR = 'validation'
/** Where --exportOutput writes, relative to the engine's directory (removed after it is read: it can be large). */
export const EXPORTED_OUTPUTS = `${VALIDATION_DIR}/outputs.json`
/** The seed of the generated inputs: the same engine is always validated on the same inputs. */
export const VALIDATION_SEED = 0

/**
 * Which of validate's rules judges an engine: fp16 and bf16 engines by fp16's tolerances, int8 by int8's
 * (cosine, argmax), best by int8's when the model is Q/DQ (its int8 layers run int8) and fp16's otherwise.
 */
export function tolerancePrecision(precision: BuildPrecision, typedModel?: 'fp16' | 'qdq'): Precision {
  if (precision === 'fp32') return 'fp32'
  if (precision === 'int8') return 'int8'
  if (precision === 'best') return typedModel === 'qdq' ? 'int8' : 'fp16'
  return 'fp16'
}

function isDynamic(info: Pick<ValueInfo, 'shape'>): boolean {
  return info.shape.some((d) => typeof d !== 'number' || d < 0)
}

/** A name safe in a file name and in trtexec's `name:file` lists (no ':', ',', quotes or '/'). */
function fileStem(name: string, index: number): string {
  return `input-${index}-${name.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 64)}`
}

export interface ValidationPlan {
  argv: string[]
  /** Input name -> its raw file, relative to the engine's directory. */
  files: Record<string, string>
  /** The inference shape of every input (dynamic ones as planned, static ones as declared). */
  shapes: Record<string, number[]>
  output: string
}

/**
 * The validation command for an engine whose inputs are `inputs` (names, declared shapes), with the
 * planned inference shapes of its dynamic inputs; touches nothing (the dry run prints it).
 */
export function planValidation(o: {
  version: TrtVersion
  engine: string
  inputs: readonly Pick<ValueInfo, 'name' | 'shape'>[]
  inference: Record<string, number[]>
}): ValidationPlan {
  const files: Record<string, string> = {}
  const shapes: Record<string, number[]> = {}
  const dynamicShapes: Record<string, number[]> = {}
  o.inputs.forEach((input, i) => {
    files[input.name] = `${VALIDATION_DIR}/${fileStem(input.name, i)}.bin`
    const dynamic = isDynamic(input)
    // An input the plan gave no shape (it should give every dynamic one) gets validate's own choice.
    const shape = o.inference[input.name] ?? (dynamic ? resolveShape({ name: input.name, dtype: 'float32', shape: input.shape, isTensor: true }) : (input.shape as number[]))
    shapes[input.name] = shape
    if (dynamic) dynamicShapes[input.name] = shape
  })
  const argv = validateArgv({ version: o.version, engine: o.engine, shapes: dynamicShapes, inputs: files, output: EXPORTED_OUTPUTS })
  return { argv, files, shapes, output: EXPORTED_OUTPUTS }
}

/**
 * The bytes trtexec's --loadInputs expects: the binding's element type, little-endian (x86 and ARM hosts
 * are). TensorRT before 10 has no 64-bit integer bindings (the ONNX parser casts int64 inputs to int32), and
 * no TensorRT has float64 ones, so those narrow; bool is one byte, fp16 its half bits.
 */
export function bindingBytes(t: HostTensor, version: TrtVersion): Uint8Array {
  if ((t.dtype === 'int64' || t.dtype === 'uint64') && version.major < 10) {
    const src = t.data as BigInt64Array | BigUint64Array
    const out = new Int32Array(src.length)
    for (let i = 0; i < src.length; i++) {
      const v = src[i]!
      if (v > 2147483647n || v < -2147483648n) {
        throw new UsageError(`input value ${v} does not fit the int32 binding TensorRT ${version.text} gives a 64-bit input`, {
          code: 'REFERENCE_INVALID',
          hint: 'Keep integer inputs within int32, or build with TensorRT 10, which has int64 bindings.',
        })
      }
      out[i] = Number(v)
    }
    return new Uint8Array(out.buffer)
  }
  if (t.dtype === 'float64') {
    const f = Float32Array.from(t.data as Float64Array)
    return new Uint8Array(f.buffer)
  }
  if (t.dtype === 'string') {
    throw new UsageError('string inputs have no TensorRT binding', { code: 'DTYPE_UNSUPPORTED', hint: 'TensorRT engines take numeric and bool inputs only.' })
  }
  const data = t.data as Exclude<HostTensor['data'], string[]>
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
}

export interface EngineValidationOptions {
  trtexec: string
  version: TrtVersion
  onnx: string
  /** The engine's directory: trtexec runs there, and the plan's paths are relative to it. */
  dir: string
  /** The engine as the table names it. */
  label: string
  plan: ValidationPlan
  precision: BuildPrecision
  typedModel?: 'fp16' | 'qdq'
  atol: Tolerance
  rtol: Tolerance
  hints?: ModelHints
  env?: Env
  deadline?: Deadline
  signal?: AbortSignal
  onPhase?: (phase: string) => void
}

export interface EngineValidation {
  /** The table's shape, as validate reports it (formatValidation, validationError). */
  result: ValidateResult
  run: TrtexecRun
  /** The onnxruntime reference run, in milliseconds. */
  referenceMs: number
  /** The onnxruntime-node version that made the reference. */
  onnxruntime: string
}

/** Validates the engine; the result says whether it passed (the caller decides what a failure does). */
export async function validateEngine(o: EngineValidationOptions): Promise<EngineValidation> {
  const precision = tolerancePrecision(o.precision, o.typedModel)
  const refStarted = performance.now()
  // onnxruntime is loaded here, not with this module: a build without validation never pays its start-up.
  const [{ closeModel, loadModel, runModel }, { runtimeInfo }] = await Promise.all([import('../validate/runtime.js'), import('../validate/backends.js')])
  const model = await loadModel(o.onnx)
  let inputs: TensorMap
  let expected: TensorMap
  try {
    const concrete = model.inputs.map((info) => ({ ...info, shape: o.plan.shapes[info.name] ?? info.shape }))
    inputs = generateInputs(concrete, { seed: VALIDATION_SEED, vocabSize: o.hints?.vocabSize, typeVocabSize: o.hints?.typeVocabSize, maxPositions: o.hints?.maxPositions })
    expected = await runModel(model, inputs)
  } finally {
    await closeModel(model)
  }
  const referenceMs = performance.now() - refStarted

  await ensureDir(join(o.dir, VALIDATION_DIR))
  for (const [name, file] of Object.entries(o.plan.files)) await writeFile(join(o.dir, file), bindingBytes(inputs[name]!, o.version))
  const run = await runTrtexec(o.trtexec, o.plan.argv, { kind: 'validation', cwd: o.dir, env: o.env, deadline: o.deadline, signal: o.signal, onPhase: o.onPhase })

  const names = Object.keys(expected)
  const dtypes: Record<string, Dtype> = Object.fromEntries(names.map((n) => [n, expected[n]!.dtype]))
  const outputsFile = join(o.dir, o.plan.output)
  const actual = await readExportedOutputs(outputsFile, dtypes)
  await rm(outputsFile, { force: true })
  const missing = names.filter((n) => !(n in actual))
  if (missing.length) {
    throw new ExternalError(`trtexec exported no values for output${missing.length > 1 ? 's' : ''} ${missing.join(', ')} of the engine (it exported ${Object.keys(actual).join(', ') || 'none'})`, {
      code: 'TRTEXEC_BAD_OUTPUT',
      hint: 'TensorRT may have folded that output away (a constant, or an input passed through); compare the engine\'s bindings in layers.json with the model\'s outputs.',
      details: { missing, exported: Object.keys(actual) },
    })
  }
  const fallback = DEFAULT_TOLERANCES[precision]
  const metrics = compareOutputs(actual, expected, names, 'generated', { precision, atol: o.atol, rtol: o.rtol, fallback })
  const failed = metrics.filter((m) => !m.passed).map((m) => `${m.dataset}/${m.name}`)
  const result: ValidateResult = {
    candidate: o.label,
    reference: o.onnx,
    referenceKind: 'onnx',
    precision,
    inputsFrom: 'generated',
    generated: { seed: VALIDATION_SEED, shapes: o.plan.shapes },
    datasets: 1,
    outputs: metrics,
    passed: failed.length === 0,
    failed,
  }
  return { result, run, referenceMs, onnxruntime: runtimeInfo().version }
}
