/**
 * validate for decoders: a causal LM checked the way it is used, in three runs against a reference.
 *
 * - prefill: the prompts (a left-padded batch) with an empty past; logits compared at the positions the
 *   attention mask keeps (a pad position's logits mean nothing);
 * - decode: one more token per row, fed the prefill's presents as the past: the KV cache itself is checked;
 * - greedy: batch-1 greedy generation; the first token where it departs from the reference's is reported.
 *
 * The reference is the fixtures' reference.json ({prefill, decode, greedy}: PyTorch's outputs, see
 * fixtures/hf-tiny-decoders/SOURCES.md) or another ONNX decoder run on the same inputs (generated here).
 */
import { dirname, join } from 'node:path'
import { IntegrityError, NotFoundError, UsageError } from '../lib/errors.js'
import { inspectModel as inspectOnnx } from '../onnx/inspect.js'
import { readJsonFile } from '../lib/json.js'
import { prng } from '../lib/random.js'
import { generate } from './generate.js'
import { modelHints } from './inputs.js'
import { bindByName, classifyPath, tensorsFromJson } from './reference.js'
import { closeModel, loadModel, runModel, type LoadedModel, type LoadOptions, type ValueInfo } from './runtime.js'
import { toFloat64, type HostTensor, type TensorMap } from './tensors.js'

export interface DecoderCase {
  prefill: { inputs: TensorMap; logits?: HostTensor }
  decode: { inputs: TensorMap; logits?: HostTensor }
  greedy: { prompt: number[]; maxNewTokens: number; sequence?: number[] }
}

export interface DecoderValidateOptions {
  candidate: string
  /** reference.json ({prefill, decode, greedy}) or another ONNX decoder. */
  reference: string
  /** Largest absolute logits error allowed (default 1e-4; fp16 1e-2). */
  atol?: number
  precision?: 'fp32' | 'fp16'
  /** Session options of the reference when it is an ONNX model (the pipeline compares an fp32 export with itself unoptimized). */
  referenceSessionOptions?: LoadOptions['sessionOptions']
}

export interface DecoderStepReport {
  name: 'prefill' | 'decode'
  /** Logits compared (positions the mask keeps, times the vocabulary). */
  compared: number
  maxAbsErr: number
  meanAbsErr: number
  /** Cosine similarity of the compared logits with the reference's. */
  cosine: number
  passed: boolean
}

export interface DecoderValidation {
  candidate: string
  reference: string
  referenceKind: 'json' | 'onnx'
  atol: number
  steps: DecoderStepReport[]
  greedy: { prompt: number[]; expected: number[]; actual: number[]; firstDivergence: number | null; passed: boolean }
  passed: boolean
}

const bad = (message: string) => new UsageError(message, {
  code: 'REFERENCE_INVALID',
  hint: 'A decoder reference.json holds "prefill" and "decode" ({inputs, outputs: {logits}}) and "greedy" ({prompt, max_new_tokens, sequence}); fixtures/hf-tiny-decoders/SOURCES.md has the format.',
})

export async function readDecoderReference(path: string): Promise<DecoderCase> {
  const doc = await readJsonFile<Record<string, unknown>>(path, {
    expect: 'object',
    onError: (f) => f.kind === 'missing' ? new NotFoundError(f.message, { code: 'REFERENCE_NOT_FOUND', hint: 'Check the path.' }) : bad(f.message),
  })
  const part = (name: 'prefill' | 'decode') => {
    const p = doc[name] as { inputs?: unknown; outputs?: unknown } | undefined
    if (!p || typeof p !== 'object') throw bad(`${path} has no "${name}"`)
    const inputs = tensorsFromJson(p.inputs, `${name}.inputs`)
    const logits = tensorsFromJson(p.outputs, `${name}.outputs`).find((t) => t.name === 'logits')
    if (!logits) throw bad(`${path}: ${name}.outputs has no logits`)
    return { inputs: Object.fromEntries(inputs.map((t) => [t.name!, t.tensor])), logits: logits.tensor }
  }
  const prefill = part('prefill')
  const decode = part('decode')
  const g = doc.greedy as { prompt?: unknown; max_new_tokens?: unknown; sequence?: unknown } | undefined
  const ints = (v: unknown) => Array.isArray(v) && v.length > 0 && v.every((x) => Number.isInteger(x) && (x as number) >= 0)
  if (!g || !ints(g.prompt) || !ints(g.sequence) || !Number.isInteger(g.max_new_tokens)) throw bad(`${path}: "greedy" needs prompt, max_new_tokens and sequence`)
  return { prefill, decode, greedy: { prompt: g.prompt as number[], maxNewTokens: g.max_new_tokens as number, sequence: g.sequence as number[] } }
}

/** An empty past (or the given presents) for every past_key_values input of the model. */
function pastFeeds(model: LoadedModel, batch: number, presents?: TensorMap): TensorMap {
  return Object.fromEntries(model.inputs.filter((i) => i.name.startsWith('past_key_values.')).map((i) => {
    const present = presents?.[i.name.replace(/^past_key_values\./, 'present.')]
    if (present) return [i.name, present]
    return [i.name, { dtype: i.dtype, dims: [batch, i.shape[1] as number, 0, i.shape[3] as number], data: i.dtype === 'float16' ? new Uint16Array(0) : new Float32Array(0) } as HostTensor]
  }))
}

async function prefillAndDecode(model: LoadedModel, c: DecoderCase): Promise<{ prefill: HostTensor; decode: HostTensor }> {
  const names = model.inputs.map((i) => i.name).filter((n) => !n.startsWith('past_key_values.'))
  const bind = (inputs: TensorMap) => bindByName(Object.entries(inputs).map(([name, tensor]) => ({ name, tensor })), names, 'input')
  const batch = c.prefill.inputs.input_ids!.dims[0]!
  const wanted = ['logits', ...model.outputs.map((o) => o.name).filter((n) => n.startsWith('present.'))]
  const first = await runModel(model, { ...bind(c.prefill.inputs), ...pastFeeds(model, batch) }, wanted)
  const second = await runModel(model, { ...bind(c.decode.inputs), ...pastFeeds(model, batch, first) }, ['logits'])
  return { prefill: first.logits!, decode: second.logits! }
}

/** Max |a - b| over the logits of positions whose mask is 1 (mask [batch, seq] for a [batch, seq, vocab] tensor). */
function maskedError(a: HostTensor, b: HostTensor, mask: HostTensor | undefined): { maxAbsErr: number; meanAbsErr: number; cosine: number; compared: number } {
  if (a.dims.join() !== b.dims.join()) throw bad(`logits of shape [${a.dims.join(', ')}] cannot be compared with the reference's [${b.dims.join(', ')}]`)
  const [batch, seq, vocab] = a.dims as [number, number, number]
  const x = toFloat64(a)
  const y = toFloat64(b)
  const m = mask ? toFloat64(mask) : undefined
  const maskSeq = mask ? mask.dims[1]! : seq
  let max = 0
  let compared = 0
  let sum = 0
  let dot = 0
  let xx = 0
  let yy = 0
  for (let r = 0; r < batch; r++) {
    for (let s = 0; s < seq; s++) {
      // The mask spans past + new tokens: the logits' positions are its last `seq`.
      if (m && m[r * maskSeq + maskSeq - seq + s] === 0) continue
      for (let v = 0; v < vocab; v++) {
        const i = (r * seq + s) * vocab + v
        const d = Math.abs(x[i]! - y[i]!)
        if (!(d <= max)) max = Number.isNaN(d) ? Number.POSITIVE_INFINITY : d
        sum += d
        dot += x[i]! * y[i]!
        xx += x[i]! * x[i]!
        yy += y[i]! * y[i]!
        compared++
      }
    }
  }
  const cosine = xx === 0 && yy === 0 ? 1 : xx === 0 || yy === 0 ? 0 : dot / Math.sqrt(xx * yy)
  return { maxAbsErr: max, meanAbsErr: compared ? sum / compared : 0, cosine: Number.isFinite(cosine) ? cosine : 0, compared }
}

/** Inputs for an ONNX reference: a left-padded batch of two, one decode token each, a prompt for greedy. */
async function generatedCase(candidate: string): Promise<DecoderCase> {
  const hints = await modelHints(candidate)
  const vocab = hints.vocabSize ?? 100
  const rand = prng(0)
  const tok = () => Math.floor(rand() * vocab)
  const lengths = [7, 4]
  const width = Math.max(...lengths)
  const ids = lengths.flatMap((n) => [...Array<number>(width - n).fill(0), ...Array.from({ length: n }, tok)])
  const mask = lengths.flatMap((n) => [...Array<number>(width - n).fill(0), ...Array<number>(n).fill(1)])
  const pos = lengths.flatMap((n) => [...Array<number>(width - n).fill(0), ...Array.from({ length: n }, (_, i) => i)])
  const i64 = (dims: number[], v: number[]): HostTensor => ({ dtype: 'int64', dims, data: BigInt64Array.from(v, BigInt) })
  return {
    prefill: { inputs: { input_ids: i64([2, width], ids), attention_mask: i64([2, width], mask), position_ids: i64([2, width], pos) } },
    decode: {
      inputs: {
        input_ids: i64([2, 1], [tok(), tok()]),
        attention_mask: i64([2, width + 1], lengths.flatMap((n) => [...Array<number>(width - n).fill(0), ...Array<number>(n + 1).fill(1)])),
        position_ids: i64([2, 1], lengths),
      },
    },
    greedy: { prompt: ids.slice(width - lengths[0]!, width), maxNewTokens: 8 },
  }
}

export async function validateDecoder(o: DecoderValidateOptions): Promise<DecoderValidation> {
  const atol = o.atol ?? (o.precision === 'fp16' ? 1e-2 : 1e-4)
  if (!(atol >= 0)) throw new UsageError(`--atol must be a number of 0 or more, got ${o.atol}`, { code: 'INVALID_OPTION', hint: 'For example --atol 1e-4.' })
  const kind = await classifyPath(o.reference, 'reference')
  if (kind === 'test-data') throw bad(`${o.reference}: a decoder is validated against a reference.json or another ONNX model, not ONNX test data`)
  const c = kind === 'json' ? await readDecoderReference(o.reference) : await generatedCase(o.candidate)
  const candidate = await loadModel(o.candidate)
  let reference: LoadedModel | undefined
  try {
    const got = await prefillAndDecode(candidate, c)
    let want: { prefill: HostTensor; decode: HostTensor }
    let expected: number[]
    if (kind === 'onnx') {
      reference = await loadModel(o.reference, o.referenceSessionOptions ? { sessionOptions: o.referenceSessionOptions } : {})
      want = await prefillAndDecode(reference, c)
      expected = (await generate(reference, [c.greedy.prompt], { maxNewTokens: c.greedy.maxNewTokens })).sequences[0]!
    } else {
      want = { prefill: c.prefill.logits!, decode: c.decode.logits! }
      expected = c.greedy.sequence!
    }
    const steps: DecoderStepReport[] = (['prefill', 'decode'] as const).map((name) => {
      const e = maskedError(got[name], want[name], c[name].inputs.attention_mask)
      return { name, ...e, passed: e.maxAbsErr <= atol }
    })
    const actual = (await generate(candidate, [c.greedy.prompt], { maxNewTokens: expected.length - c.greedy.prompt.length })).sequences[0]!
    let firstDivergence: number | null = null
    for (let i = 0; i < Math.max(actual.length, expected.length); i++) if (actual[i] !== expected[i]) { firstDivergence = i; break }
    const greedy = { prompt: c.greedy.prompt, expected, actual, firstDivergence, passed: firstDivergence === null }
    return { candidate: o.candidate, reference: o.reference, referenceKind: kind, atol, steps, greedy, passed: steps.every((s) => s.passed) && greedy.passed }
  } finally {
    await closeModel(candidate)
    if (reference) await closeModel(reference)
  }
}

/** The fixtures keep a reference.json beside each decoder: the path validate looks at by default. */
export function referenceBeside(model: string): string {
  return join(dirname(model), 'reference.json')
}

/** Whether a model is a decoder with a KV cache (past_key_values inputs): what `validate` checks by steps. */
export async function isDecoderModel(path: string): Promise<boolean> {
  const info = await inspectOnnx(path)
  return info.inputs.some((i) => i.name.startsWith('past_key_values.'))
}

export function formatDecoderValidation(r: DecoderValidation): string {
  const lines = [`Decoder ${r.candidate} against ${r.reference} (${r.referenceKind === 'json' ? 'reference outputs' : 'ONNX model'}), atol ${r.atol}:`]
  for (const s of r.steps) lines.push(`  ${s.name.padEnd(8)} max |logits error| ${s.maxAbsErr.toExponential(2)} over ${s.compared} values  ${s.passed ? 'ok' : 'FAILED'}`)
  const g = r.greedy
  lines.push(`  greedy   ${g.actual.length - g.prompt.length} tokens ${g.passed ? 'identical' : `FAILED: first differs at position ${g.firstDivergence} (${g.actual[g.firstDivergence!] ?? 'none'} instead of ${g.expected[g.firstDivergence!] ?? 'none'})`}`)
  return lines.join('\n')
}

/** The exit-4 error of a failed decoder validation; the whole result rides along for --json. */
export function decoderValidationError(r: DecoderValidation): IntegrityError {
  const bad = [...r.steps.filter((s) => !s.passed).map((s) => `${s.name} logits off by up to ${s.maxAbsErr.toExponential(2)} (atol ${r.atol})`),
    ...(r.greedy.passed ? [] : [`greedy generation departs at position ${r.greedy.firstDivergence}`])]
  return new IntegrityError(`decoder validation failed: ${bad.join('; ')}`, {
    code: 'VALIDATION_FAILED',
    hint: 'Check that the candidate comes from the same weights and config; for fp16 pass --precision fp16 (atol 1e-2) or loosen --atol.',
    details: { result: r },
  })
}

/**
 * The smoke run of a decoder export: a left-padded prefill of two rows and one cached decode step, whose
 * logits must be finite and shaped [batch, seq, vocab]. Returns the dims of both.
 */
export async function smokeDecoder(path: string): Promise<{ prefill: number[]; decode?: number[]; inputs: ValueInfo[]; outputs: ValueInfo[] }> {
  const c = await generatedCase(path)
  const model = await loadModel(path)
  try {
    // Without a cache (text-generation) there is no decode step to take: the prefill is the model's run.
    const cached = model.inputs.some((i) => i.name.startsWith('past_key_values.'))
    const got: Partial<Record<'prefill' | 'decode', HostTensor>> = cached
      ? await prefillAndDecode(model, c)
      : { prefill: (await runModel(model, bindByName(Object.entries(c.prefill.inputs).map(([name, tensor]) => ({ name, tensor })), model.inputs.map((i) => i.name), 'input'), ['logits'])).logits! }
    for (const [step, t] of Object.entries(got) as [string, HostTensor][]) {
      const data = toFloat64(t)
      const at = data.findIndex((v) => !Number.isFinite(v))
      if (at >= 0) throw new IntegrityError(`The ${step} logits of ${path} hold ${data[at]} at index ${at}`, { code: 'EXPORT_SMOKE_FAILED', hint: 'The export is wrong for this checkpoint; nothing was written to --out. Report it with the model id, or try another --exporter.' })
      const want = c[step as 'prefill' | 'decode'].inputs.input_ids!.dims
      if (t.dims.length !== 3 || t.dims[0] !== want[0] || t.dims[1] !== want[1]) {
        throw new IntegrityError(`The ${step} logits of ${path} have dims [${t.dims.join(', ')}] for input_ids [${want.join(', ')}]`, { code: 'EXPORT_SMOKE_FAILED', hint: 'The export is wrong for this checkpoint; nothing was written to --out.' })
      }
    }
    return { prefill: got.prefill!.dims, ...(got.decode ? { decode: got.decode.dims } : {}), inputs: model.inputs, outputs: model.outputs }
  } finally {
    await closeModel(model)
  }
}
