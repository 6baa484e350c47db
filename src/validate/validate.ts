/**
 * validate: run a candidate ONNX model and compare its outputs with a reference (another ONNX model run on
 * the same inputs, ONNX test data, or a reference JSON), output by output.
 */
import { IntegrityError, UsageError } from '../lib/errors.js'
import {
  compareOutput, DEFAULT_TOLERANCES, fmt, parseTolerance, PRECISIONS, toleranceFor,
  type OutputMetrics, type Precision, type Tolerance,
} from './compare.js'
import { generateInputs, modelHints, type GenerateOptions } from './inputs.js'
import { bindByName, classifyPath, readDataSets, type DataSet, type ReferenceKind } from './reference.js'
import { loadModel, closeModel, runModel, type LoadedModel } from './runtime.js'
import type { TensorMap } from './tensors.js'

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
}

export interface ValidateResult {
  candidate: string
  reference: string
  referenceKind: ReferenceKind
  precision: Precision
  inputsFrom: 'inputs' | 'reference' | 'generated'
  /** Generated input shapes and seed, when inputs were generated. */
  generated?: { seed: number; shapes: Record<string, number[]> }
  datasets: number
  outputs: OutputMetrics[]
  passed: boolean
  /** "dataset/output" of every failing comparison. */
  failed: string[]
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
  const explicitTolerance = atol.default !== undefined || rtol.default !== undefined
    || Object.keys(atol.perOutput).length > 0 || Object.keys(rtol.perOutput).length > 0

  const referenceKind = await classifyPath(options.reference, 'reference')
  const given = options.inputs ? await readDataSets(options.inputs, 'inputs') : undefined
  const candidate = await loadModel(options.candidate)
  let referenceModel: LoadedModel | undefined
  try {
    let sets: { label: string; inputs: TensorMap; expected?: TensorMap }[]
    let inputsFrom: ValidateResult['inputsFrom']
    let generated: ValidateResult['generated']
    const inputNames = candidate.inputs.map((i) => i.name)
    if (referenceKind === 'onnx') {
      referenceModel = await loadModel(options.reference)
      if (given) {
        inputsFrom = 'inputs'
        sets = given.map((d) => ({ label: d.label, inputs: bindByName(d.inputs, inputNames, 'input') }))
      } else {
        inputsFrom = 'generated'
        const gen = { ...(await modelHints(options.candidate)), ...options.generate }
        const inputs = generateInputs(candidate.inputs, gen)
        generated = { seed: gen.seed ?? 0, shapes: Object.fromEntries(Object.entries(inputs).map(([k, t]) => [k, t.dims])) }
        sets = [{ label: 'generated', inputs }]
      }
    } else {
      const refSets = await readDataSets(options.reference, 'reference')
      inputsFrom = given ? 'inputs' : 'reference'
      sets = refSets.map((d: DataSet, i) => {
        const source = given ? given[Math.min(i, given.length - 1)] : d
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

    const reports: OutputMetrics[] = []
    for (const set of sets) {
      let expected = set.expected
      if (referenceModel) {
        const refNames = referenceModel.inputs.map((i) => i.name)
        const feed = Object.fromEntries(Object.entries(set.inputs).filter(([k]) => refNames.includes(k)))
        const common = referenceModel.outputs.map((o) => o.name).filter((n) => candidate.outputs.some((c) => c.name === n))
        if (common.length === 0) {
          throw new UsageError(`the candidate and the reference model share no output names`, {
            code: 'REFERENCE_MISMATCH',
            hint: `Candidate outputs: ${candidate.outputs.map((o) => o.name).join(', ')}; reference outputs: ${referenceModel.outputs.map((o) => o.name).join(', ')}.`,
          })
        }
        expected = await runModel(referenceModel, feed, common)
      }
      const wanted = Object.keys(expected!).filter((n) => !options.outputs || options.outputs.includes(n))
      if (options.outputs) {
        const unknown = options.outputs.filter((n) => !Object.keys(expected!).includes(n))
        if (unknown.length) {
          throw new UsageError(`--output ${unknown.join(', ')}: not among the compared outputs (${Object.keys(expected!).join(', ')})`, {
            code: 'OUTPUT_UNKNOWN',
            hint: 'Name outputs the reference has.',
          })
        }
      }
      const actual = await runModel(candidate, set.inputs, wanted)
      for (const name of wanted) {
        const fallback = DEFAULT_TOLERANCES[precision]
        reports.push(compareOutput(name, set.label, actual[name], expected![name], {
          atol: toleranceFor(atol, name, fallback.atol),
          rtol: toleranceFor(rtol, name, fallback.rtol),
          precision,
          elementwiseForInt8: explicitTolerance,
          minCosine: options.minCosine,
        }))
      }
    }
    const failed = reports.filter((r) => !r.passed).map((r) => `${r.dataset}/${r.name}`)
    return {
      candidate: options.candidate,
      reference: options.reference,
      referenceKind,
      precision,
      inputsFrom,
      ...(generated ? { generated } : {}),
      datasets: sets.length,
      outputs: reports,
      passed: failed.length === 0,
      failed,
    }
  } finally {
    await closeModel(candidate)
    if (referenceModel) await closeModel(referenceModel)
  }
}

/** The exit-4 error for a failed validation; the whole result rides along in details for --json. */
export function validationError(result: ValidateResult): IntegrityError {
  const bad = result.outputs.filter((o) => !o.passed)
  const first = bad[0]
  const summary = bad.slice(0, 3).map((o) => `${o.name}${result.datasets > 1 ? ` (${o.dataset})` : ''}: ${o.reason}`).join('; ')
  return new IntegrityError(`validation failed for ${bad.length} of ${result.outputs.length} outputs: ${summary}${bad.length > 3 ? '; ...' : ''}`, {
    code: 'VALIDATION_FAILED',
    hint: first && first.maxAbsErr > 0 && result.precision === 'fp32'
      ? `If the difference is expected (reduced precision), pass --precision fp16|int8 or loosen --atol/--rtol (e.g. --atol ${first.name}:${fmt(first.maxAbsErr * 1.5)}).`
      : 'Check that the candidate was exported from the same weights and that the reference matches its inputs.',
    details: { result },
  })
}

/** Throws validationError when the result did not pass. */
export function assertValidated(result: ValidateResult): ValidateResult {
  if (!result.passed) throw validationError(result)
  return result
}

/** The human table: one row per output (and data set). */
export function formatValidation(result: ValidateResult): string {
  const header = ['output', 'dataset', 'shape', 'max abs', 'max rel', 'mean abs', 'cosine', 'atol', 'rtol', 'nan/inf', 'result']
  const rows = result.outputs.map((o) => [
    o.name, o.dataset, `[${o.dims.join(',')}]`, fmt(o.maxAbsErr), fmt(o.maxRelErr), fmt(o.meanAbsErr),
    o.cosine.toFixed(6), fmt(o.atol), fmt(o.rtol), `${o.nan.candidate + o.inf.candidate}/${o.nan.reference + o.inf.reference}`,
    o.passed ? 'PASS' : `FAIL: ${o.reason}`,
  ])
  if (result.datasets === 1) {
    header.splice(1, 1)
    for (const r of rows) r.splice(1, 1)
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (i === r.length - 1 ? 0 : r[i].length))))
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join('  ')
  const lines = [
    `candidate: ${result.candidate}`,
    `reference: ${result.reference} (${result.referenceKind}); inputs: ${result.inputsFrom}${result.generated ? ` (seed ${result.generated.seed}, ${Object.entries(result.generated.shapes).map(([k, d]) => `${k} [${d.join(',')}]`).join(', ')})` : ''}; precision ${result.precision}`,
    '',
    line(header),
    ...rows.map(line),
    '',
    result.passed ? `PASSED: ${result.outputs.length} outputs match` : `FAILED: ${result.failed.join(', ')}`,
  ]
  return lines.join('\n')
}
