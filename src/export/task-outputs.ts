/**
 * The outputs an export for a task hands back, by the names Optimum gives them (what transformers.js,
 * Optimum's ORTModelFor* classes and validate read) and their rank. A task is a promise about these
 * outputs: exportModel checks the model every exporter wrote against it (an explicit --task that does not
 * hold is exit 2), and --exporter auto takes a shipped model only when it holds.
 */
import { UsageError } from '../lib/errors.js'
import { num, type ModelProto } from '../onnx/proto.js'

export interface TaskOutput {
  name: string
  /** The dims the output has, as names for messages; their count is the rank that is checked. */
  dims: readonly string[]
}

/** An output as the model declares it; dims absent when it declares no shape. */
export interface DeclaredOutput {
  name: string
  dims?: (number | string)[]
}

const out = (name: string, ...dims: string[]): TaskOutput => ({ name, dims })

/** Every task inferTask can give (from an architecture or a sentence-transformers layout). */
export const TASK_OUTPUTS: Readonly<Record<string, readonly TaskOutput[]>> = {
  'feature-extraction': [out('last_hidden_state', 'batch_size', 'sequence_length', 'hidden_size')],
  'sentence-embedding': [out('sentence_embedding', 'batch_size', 'embedding_dim')],
  'text-classification': [out('logits', 'batch_size', 'num_labels')],
  'token-classification': [out('logits', 'batch_size', 'sequence_length', 'num_labels')],
  'question-answering': [out('start_logits', 'batch_size', 'sequence_length'), out('end_logits', 'batch_size', 'sequence_length')],
  'multiple-choice': [out('logits', 'batch_size', 'num_choices')],
  'fill-mask': [out('logits', 'batch_size', 'sequence_length', 'vocab_size')],
  'text-generation': [out('logits', 'batch_size', 'sequence_length', 'vocab_size')],
  'text-generation-with-past': [
    out('logits', 'batch_size', 'sequence_length', 'vocab_size'),
    out('present.0.key', 'batch_size', 'num_key_value_heads', 'past_sequence_length + sequence_length', 'head_dim'),
  ],
  'text2text-generation': [out('logits', 'batch_size', 'decoder_sequence_length', 'vocab_size')],
  'image-classification': [out('logits', 'batch_size', 'num_labels')],
}

export function isKnownTask(task: string): boolean {
  return Object.prototype.hasOwnProperty.call(TASK_OUTPUTS, task)
}

/** The graph outputs of a model with their declared dims (numbers, symbolic names, '?' for unknown ones). */
export function declaredOutputs(model: ModelProto): DeclaredOutput[] {
  return (model.graph?.output ?? []).map((o) => {
    const shape = o.type?.tensorType?.shape
    if (!shape) return { name: o.name }
    return { name: o.name, dims: (shape.dim ?? []).map((d) => (d.dimParam ? d.dimParam : d.dimValue !== undefined && d.dimValue !== null ? num(d.dimValue) : '?')) }
  })
}

const list = (names: string[]): string => (names.length <= 2 ? names.join(' and ') : `${names.slice(0, -1).join(', ')} and ${names.at(-1)}`)

/**
 * What keeps `outputs` from being the task's ("has no logits output", "has logits of rank 2 (...) instead
 * of rank 3 (...)"), or undefined when they are (or the task is one whose outputs are not known).
 */
export function taskOutputProblem(task: string, outputs: readonly DeclaredOutput[]): string | undefined {
  if (!isKnownTask(task)) return undefined
  const wanted = TASK_OUTPUTS[task]!
  const missing = wanted.filter((w) => !outputs.some((o) => o.name === w.name)).map((w) => w.name)
  if (missing.length > 0) return `has no ${list(missing)} output${missing.length > 1 ? 's' : ''}`
  for (const w of wanted) {
    const dims = outputs.find((o) => o.name === w.name)!.dims
    if (dims && dims.length !== w.dims.length) {
      return `has ${w.name} of rank ${dims.length} ([${dims.join(', ')}]) instead of rank ${w.dims.length} ([${w.dims.join(', ')}])`
    }
  }
  return undefined
}

export interface ProducedModel {
  outputs: readonly DeclaredOutput[]
  /** The shipped file the repo exporter copied. */
  shipped?: string
  exporter: string
}

/**
 * Holds a produced model to its task: an explicit --task that it does not have is refused (a shipped
 * file's fault: VARIANT_TASK_MISMATCH; an exporter's: TASK_OUTPUT_MISSING); an inferred one, or a task
 * whose outputs are not known, becomes a warning. Returns the warnings.
 */
export function checkTaskOutputs(task: string, explicit: boolean, model: ProducedModel): string[] {
  const made = model.exporter === 'optimum' ? 'the model optimum-cli wrote' : `the model the ${model.exporter} exporter wrote`
  const subject = model.shipped ?? made
  const sentenceSubject = model.shipped ?? made.charAt(0).toUpperCase() + made.slice(1)
  const names = model.outputs.map((o) => o.name).join(', ') || 'none'
  if (!isKnownTask(task)) return [`modelforge does not know which outputs task ${task} has, so the outputs of ${subject} (${names}) were not checked against it`]
  const problem = taskOutputProblem(task, model.outputs)
  if (!problem) return []
  if (!explicit) {
    return [`${sentenceSubject} ${problem}, which task ${task} needs; it was exported as it is since --task was not given (pass --task to require the outputs of a task)`]
  }
  const message = `${sentenceSubject} ${problem}, which --task ${task} needs (it has ${names})`
  const details = { task, outputs: model.outputs, expected: TASK_OUTPUTS[task] }
  if (model.shipped) {
    throw new UsageError(message, {
      code: 'VARIANT_TASK_MISMATCH',
      hint: 'Drop --task to copy the model as it is, or use --exporter native / optimum to export that task.',
      details,
    })
  }
  throw new UsageError(message, {
    code: 'TASK_OUTPUT_MISSING',
    hint: model.exporter === 'optimum'
      ? 'optimum-cli exported something else than the task asked for; check the task name against `optimum-cli export onnx --help`, or pass the task the model was made for.'
      : 'Pass the task the model was made for, or use another --exporter.',
    details,
  })
}
