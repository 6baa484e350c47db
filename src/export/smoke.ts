/**
 * The check every export ends with: load the written model in onnxruntime-node, run it once on generated
 * inputs (token ids inside the vocabulary, a padded attention mask), and require finite outputs of the
 * expected shapes. Session loading and input generation are the validate area's (src/validate).
 */
import { IntegrityError } from '../lib/errors.js'
import { smokeDecoder } from '../validate/decoder-check.js'
import { generateInputs } from '../validate/inputs.js'
import { runModel, withModel, type ValueInfo } from '../validate/runtime.js'
import { type HfConfig } from './model-config.js'

export interface SmokeHints {
  vocabSize?: number
  typeVocabSize?: number
  /** Longest sequence the model accepts. */
  maxSequence?: number
  /** Output dims the exporter promises, symbolic names as in the model; checked against the run. */
  expectedOutputs?: { name: string; dims: (number | string)[] }[]
  /** A causal LM: the run is a left-padded prefill and, with a KV cache, one cached decode step. */
  decoder?: boolean
}

/** Hints from config.json, for exporters that did not build the graph themselves. */
export function smokeHintsFromConfig(config: HfConfig | undefined): SmokeHints {
  if (!config) return {}
  const int = (k: string): number | undefined => (typeof config[k] === 'number' ? (config[k] as number) : undefined)
  let maxSequence = int('max_position_embeddings')
  if (maxSequence && /roberta/.test(String(config.model_type)) && typeof config.pad_token_id === 'number') maxSequence -= config.pad_token_id + 1
  return { vocabSize: int('vocab_size'), typeVocabSize: int('type_vocab_size'), maxSequence }
}

export interface SmokeResult {
  batch: number
  sequence: number
  inputs: ValueInfo[]
  outputs: ValueInfo[]
  /** Dims of every output in the run. */
  ran: Record<string, number[]>
}

const SMOKE_BATCH = 2
const SMOKE_SEQUENCE = 8

function failed(model: string, what: string): IntegrityError {
  return new IntegrityError(`The exported model ${model} failed its smoke run: ${what}`, {
    code: 'EXPORT_SMOKE_FAILED',
    hint: 'The export is wrong for this checkpoint; nothing was written to --out. Report it with the model id, or try another --exporter.',
  })
}

export async function smokeRun(modelPath: string, hints: SmokeHints = {}): Promise<SmokeResult> {
  if (hints.decoder) {
    const r = await smokeDecoder(modelPath)
    return { batch: r.prefill[0]!, sequence: r.prefill[1]!, inputs: r.inputs, outputs: r.outputs, ran: { logits: r.prefill, ...(r.decode ? { 'logits (decode)': r.decode } : {}) } }
  }
  const sequence = Math.max(1, Math.min(SMOKE_SEQUENCE, hints.maxSequence ?? SMOKE_SEQUENCE))
  return withModel(modelPath, async (m) => {
    const dimValues: Record<string, number> = {
      batch_size: SMOKE_BATCH, batch: SMOKE_BATCH, sequence_length: sequence, sequence: sequence,
    }
    const inputs = generateInputs(m.inputs, {
      samples: SMOKE_BATCH,
      sequenceLength: sequence,
      vocabSize: hints.vocabSize,
      typeVocabSize: hints.typeVocabSize,
      maxPositions: hints.maxSequence,
      dims: dimValues,
      seed: 0,
    })
    const outputs = await runModel(m, inputs)
    const ran: Record<string, number[]> = {}
    for (const info of m.outputs) {
      const t = outputs[info.name]!
      ran[info.name] = t.dims
      if (t.dtype === 'float32' || t.dtype === 'float64') {
        const data = t.data as Float32Array
        for (let i = 0; i < data.length; i++) {
          if (!Number.isFinite(data[i]!)) throw failed(modelPath, `output ${info.name} holds ${data[i]} at index ${i}`)
        }
      }
      if (t.data.length === 0) throw failed(modelPath, `output ${info.name} is empty`)
      // Declared dims: fixed ones must match; the batch and sequence names must take the input values.
      const declared = hints.expectedOutputs?.find((o) => o.name === info.name)?.dims ?? info.shape
      if (declared.length > 0) {
        const want = declared.map((d) => (typeof d === 'number' ? d : dimValues[d]))
        const ok = want.length === t.dims.length && want.every((d, i) => d === undefined || d < 0 || d === t.dims[i])
        if (!ok) {
          throw failed(modelPath, `output ${info.name} has dims [${t.dims.join(', ')}], expected [${declared.join(', ')}] with batch ${SMOKE_BATCH} and sequence ${sequence}`)
        }
      }
    }
    for (const e of hints.expectedOutputs ?? []) {
      if (!(e.name in ran)) throw failed(modelPath, `it has no output ${e.name}`)
    }
    return { batch: SMOKE_BATCH, sequence, inputs: m.inputs, outputs: m.outputs, ran }
  })
}
