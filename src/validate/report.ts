/**
 * What a validation found, for people and scripts: the per-output table (formatValidation) and the exit-4
 * error (validationError). Kept apart from validate.ts, which runs onnxruntime, so that a caller that only
 * reports (a command printing a build's table) does not load onnxruntime.
 */
import { IntegrityError } from '../lib/errors.js'
import { fmt, type OutputMetrics, type Precision } from './compare.js'
import type { ReferenceKind } from './reference.js'

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

export interface ValidationErrorOptions {
  /** What failed, at the start of the message (default "validation"), e.g. "engine validation". */
  subject?: string
  /**
   * Whether the hint may suggest a reduced --precision for an fp32 comparison (validate's flag chooses only
   * the tolerances; build's would change the engine, so build turns this off).
   */
  suggestPrecision?: boolean
}

/** The exit-4 error for a failed validation; the whole result rides along in details for --json. */
export function validationError(result: ValidateResult, o: ValidationErrorOptions = {}): IntegrityError {
  const bad = result.outputs.filter((x) => !x.passed)
  const first = bad[0]
  const summary = bad.slice(0, 3).map((x) => `${x.name}${result.datasets > 1 ? ` (${x.dataset})` : ''}: ${x.reason}`).join('; ')
  return new IntegrityError(`${o.subject ?? 'validation'} failed for ${bad.length} of ${result.outputs.length} outputs: ${summary}${bad.length > 3 ? '; ...' : ''}`, {
    code: 'VALIDATION_FAILED',
    hint: validationHint(result, first, o.suggestPrecision ?? true),
    details: { result },
  })
}

function validationHint(result: ValidateResult, first: OutputMetrics | undefined, suggestPrecision: boolean): string {
  if (!first) return 'See the table for each output.'
  if (first.reason?.startsWith('shape')) return 'The candidate produces a different shape: check the export (dynamic axes, pooling) and the inputs.'
  if (first.cosine < 0.9) {
    return `The outputs disagree far beyond precision effects (cosine ${first.cosine.toFixed(3)}): check that the candidate comes from the same weights and that the reference belongs to these inputs.`
  }
  if (result.precision === 'fp32' && suggestPrecision) {
    return `If reduced precision explains it, pass --precision fp16|int8, or loosen the tolerance for this output (e.g. --atol ${first.name}:${fmt(first.maxAbsErr * 1.5)}).`
  }
  return `Loosen the tolerance for this output if the error is acceptable (e.g. --atol ${first.name}:${fmt(first.maxAbsErr * 1.5)}).`
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
    result.passed ? `PASSED: ${result.outputs.length} of ${result.outputs.length} outputs within tolerance` : `FAILED: ${result.failed.join(', ')}`,
  ]
  return lines.join('\n')
}
