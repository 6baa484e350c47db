/**
 * validate: run a candidate ONNX model and compare its outputs with a reference (another ONNX model run on
 * the same inputs, ONNX test data, or a reference JSON), output by output.
 */
import { UsageError } from '../lib/errors.js'
import { planSteps, runStep, type Progress } from '../lib/progress.js'
import {
  checkToleranceNames, compareOutputs, DEFAULT_TOLERANCES, parseTolerance, PRECISIONS,
  type OutputMetrics, type Precision, type Tolerance,
} from './compare.js'
import type { ValidateResult } from './report.js'
import { generateInputs, modelHints, type GenerateOptions } from './inputs.js'
import { bindByName, classifyPath, readDataSets, type DataSet, type ReferenceKind } from './reference.js'
import { closeModel, loadModel, runModel, type LoadedModel, type LoadOptions } from './runtime.js'
import type { TensorMap } from './tensors.js'

export { assertValidated, formatValidation, validationError, type ValidateResult, type ValidationErrorOptions } from './report.js'

export interface ValidateOptions {
  /** Path to the candidate .onnx. */
  candidate: string
  /** Another .onnx, an ONNX test data directory, or a reference JSON. */
  reference: string
  /** Inputs: a JSON file or test data directory; default: the reference's own inputs, else generated. */
  inputs?: string
  precision?: Precision
  /** Raw --atol/--rtol values ("1e-4", "logits:1e-3"), or parsed tolerances. */
  atol?: readonly (string | number)[] | Tolerance
  rtol?: readonly (string | number)[] | Tolerance
  /** Minimum cosine similarity per output (int8 default 0.99; otherwise off unless given). */
  minCosine?: number
  /** Compare only these outputs. */
  outputs?: string[]
  /** Input generation (samples, seed, sequence length, vocabulary); missing limits come from config.json. */
  generate?: GenerateOptions
  /**
   * Session options of an ONNX reference. With the candidate itself as the reference and graph optimizations
   * off (graphOptimizationLevel 'disabled'), the optimized session a service runs is checked against the
   * plain graph run op by op: what build-engine does for an fp32 model that has no other reference.
   */
  referenceSessionOptions?: LoadOptions['sessionOptions']
  /** Where the steps report progress (silent when absent). */
  progress?: Progress
}


function asTolerance(v: ValidateOptions['atol'], flag: string): Tolerance {
  if (v && !Array.isArray(v) && typeof v === 'object' && 'perOutput' in v) return v as Tolerance
  return parseTolerance(v as readonly (string | number)[] | undefined, flag)
}

export async function validateModel(options: ValidateOptions): Promise<ValidateResult> {
  const precision = options.precision ?? 'fp32'
  if (!PRECISIONS.includes(precision)) {
    throw new UsageError(`unknown precision ${precision}`, { code: 'INVALID_PRECISION', hint: `Use one of ${PRECISIONS.join(', ')}.` })
  }
  const atol = asTolerance(options.atol, 'atol')
  const rtol = asTolerance(options.rtol, 'rtol')
  const minCosine = options.minCosine
  if (minCosine !== undefined && !(minCosine >= -1 && minCosine <= 1)) {
    throw new UsageError(`--min-cosine must be a number between -1 and 1, got ${minCosine}`, {
      code: 'INVALID_COSINE',
      hint: 'For example --min-cosine 0.99.',
    })
  }

  const referenceKind = await classifyPath(options.reference, 'reference')
  const fallback = DEFAULT_TOLERANCES[precision]
  const ctx: Ctx = { reports: [], sets: [] }
  const progress = options.progress
  planSteps(progress, [
    { id: 'load', title: `Loading candidate ${options.candidate}` },
    { id: 'reference', title: `Preparing reference ${options.reference}` },
    { id: 'compare', title: 'Running and comparing' },
  ])
  const c = ctx
  try {
    await runStep(progress, 'load', async () => {
      c.given = options.inputs ? await readDataSets(options.inputs, 'inputs') : undefined
      c.candidate = await loadModel(options.candidate)
    })
    await runStep(progress, 'reference', async () => prepareSets(c, options, referenceKind), {
      title: () => `Reference ${options.reference}: ${c.sets.length} input set${c.sets.length === 1 ? '' : 's'} (${c.inputsFrom})`,
    })
    await runStep(progress, 'compare', async (t) => {
      for (const set of c.sets) {
        t.message(set.label)
        c.reports.push(...(await compareSet(c, set, options, precision, { atol, rtol, fallback })))
      }
    }, {
      title: () => {
        const bad = c.reports.filter((r) => !r.passed).length
        return `Compared ${c.reports.length} outputs: ${bad ? `${bad} FAILED` : 'all within tolerance'}`
      },
    })
  } finally {
    if (ctx.candidate) await closeModel(ctx.candidate)
    if (ctx.referenceModel) await closeModel(ctx.referenceModel)
  }
  const failed = ctx.reports.filter((r) => !r.passed).map((r) => `${r.dataset}/${r.name}`)
  return {
    candidate: options.candidate,
    reference: options.reference,
    referenceKind,
    precision,
    inputsFrom: ctx.inputsFrom!,
    ...(ctx.generated ? { generated: ctx.generated } : {}),
    datasets: ctx.sets.length,
    outputs: ctx.reports,
    passed: failed.length === 0,
    failed,
  }
}

interface InputSet { label: string; inputs: TensorMap; expected?: TensorMap }

interface Ctx {
  given?: DataSet[]
  candidate?: LoadedModel
  referenceModel?: LoadedModel
  sets: InputSet[]
  inputsFrom?: ValidateResult['inputsFrom']
  generated?: ValidateResult['generated']
  reports: OutputMetrics[]
}

async function prepareSets(c: Ctx, options: ValidateOptions, referenceKind: ReferenceKind): Promise<void> {
  const candidate = c.candidate!
  const inputNames = candidate.inputs.map((i) => i.name)
  if (referenceKind === 'onnx') {
    c.referenceModel = await loadModel(options.reference, options.referenceSessionOptions ? { sessionOptions: options.referenceSessionOptions } : {})
    if (c.given) {
      c.inputsFrom = 'inputs'
      c.sets = c.given.map((d) => ({ label: d.label, inputs: bindByName(d.inputs, inputNames, 'input') }))
    } else {
      c.inputsFrom = 'generated'
      const gen = { ...(await modelHints(options.candidate)), ...options.generate }
      const inputs = generateInputs(candidate.inputs, gen)
      c.generated = { seed: gen.seed ?? 0, shapes: Object.fromEntries(Object.entries(inputs).map(([k, t]) => [k, t.dims])) }
      c.sets = [{ label: 'generated', inputs }]
    }
    return
  }
  const refSets = await readDataSets(options.reference, 'reference')
  if (c.given && c.given.length !== 1 && c.given.length !== refSets.length) {
    throw new UsageError(`--inputs holds ${c.given.length} input sets but the reference ${refSets.length} output sets`, {
      code: 'REFERENCE_MISMATCH',
      hint: 'Give one input set for all, or one per test_data_set_N of the reference, in the same order.',
    })
  }
  c.inputsFrom = c.given ? 'inputs' : 'reference'
  c.sets = refSets.map((d: DataSet, i) => {
    const source = c.given ? c.given[c.given.length === 1 ? 0 : i] : d
    if (source.inputs.length === 0) {
      throw new UsageError(`reference ${options.reference} (${d.label}) holds expected outputs but no inputs`, {
        code: 'INPUTS_REQUIRED',
        hint: 'Outputs are only comparable on the inputs they came from: pass those with --inputs <dir|json>.',
      })
    }
    if (d.outputs.length === 0) {
      throw new UsageError(`reference ${options.reference} (${d.label}) holds no expected outputs`, {
        code: 'REFERENCE_EMPTY',
        hint: 'Add "outputs" (JSON) or output_N.pb files, or give an ONNX model as the reference.',
      })
    }
    return {
      label: d.label,
      inputs: bindByName(source.inputs, inputNames, 'input'),
      expected: bindByName(d.outputs, candidate.outputs.map((o) => o.name), 'expected output'),
    }
  })
}

async function compareSet(
  c: Ctx, set: InputSet, options: ValidateOptions, precision: Precision,
  tol: { atol: Tolerance; rtol: Tolerance; fallback: { atol: number; rtol: number } },
): Promise<OutputMetrics[]> {
  const candidate = c.candidate!
  let expected = set.expected
  const reference = c.referenceModel
  if (reference) {
    const refNames = reference.inputs.map((i) => i.name)
    const feed = Object.fromEntries(Object.entries(set.inputs).filter(([k]) => refNames.includes(k)))
    const common = reference.outputs.map((o) => o.name).filter((n) => candidate.outputs.some((o) => o.name === n))
    if (common.length === 0) {
      throw new UsageError('the candidate and the reference model share no output names', {
        code: 'REFERENCE_MISMATCH',
        hint: `Candidate outputs: ${candidate.outputs.map((o) => o.name).join(', ')}; reference outputs: ${reference.outputs.map((o) => o.name).join(', ')}.`,
      })
    }
    expected = await runModel(reference, feed, common)
  }
  const available = Object.keys(expected!)
  if (options.outputs) {
    const unknown = options.outputs.filter((n) => !available.includes(n))
    if (unknown.length) {
      throw new UsageError(`--output ${unknown.join(', ')}: not among the compared outputs (${available.join(', ')})`, {
        code: 'OUTPUT_UNKNOWN',
        hint: 'Name outputs the reference has.',
      })
    }
  }
  checkToleranceNames(tol, available)
  const wanted = available.filter((n) => !options.outputs || options.outputs.includes(n))
  const actual = await runModel(candidate, set.inputs, wanted)
  return compareOutputs(actual, expected!, wanted, set.label, { precision, ...tol, minCosine: options.minCosine })
}

