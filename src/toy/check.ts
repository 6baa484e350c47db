/**
 * Runs a toy model of a version directory in onnxruntime-node and checks its outputs: probabilities that sum
 * to 1 for a classifier, unit-length vectors for an embedder. toy-store reports success only after this.
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { IntegrityError } from '../lib/errors.js'
import { readJsonFile } from '../lib/json.js'
import { runModel, withModel } from '../validate/runtime.js'
import type { TensorMap } from '../validate/tensors.js'
import { bagOfWords, tokenize, type ToyConfig } from './models.js'

export const SAMPLE_TEXTS = ['the market rally report', 'bad loss and a slow drop']

export interface ToyCheck {
  path: string
  model_type: ToyConfig['model_type']
  output: string
  shape: number[]
  /** classifier: the top label per sample text; embedder: cosine similarity of the two samples. */
  predictions?: string[]
  similarity?: number
}

function fail(path: string, problem: string): IntegrityError {
  return new IntegrityError(`Toy model in ${path} failed its onnxruntime check: ${problem}`, {
    code: 'TOY_MODEL_CHECK_FAILED',
    details: { path, problem },
  })
}

export async function checkToyModel(dir: string): Promise<ToyCheck> {
  const config = await readJsonFile<ToyConfig>(join(dir, 'config.json'), { expect: 'object', onError: (f) => fail(dir, f.message) })
  const vocab = (await readFile(join(dir, config.vocab_file), 'utf8')).split('\n').filter(Boolean)
  // Through the validate area's sessions: one place loads models, with its errors and its input checks.
  return withModel(join(dir, config.model_file), async (model) => {
    const n = SAMPLE_TEXTS.length
    let feeds: TensorMap
    if (config.model_type === 'bow-mlp-classifier') {
      const data = new Float32Array(n * vocab.length)
      SAMPLE_TEXTS.forEach((t, i) => data.set(bagOfWords(t, vocab), i * vocab.length))
      feeds = { bow: { dtype: 'float32', data, dims: [n, vocab.length] } }
    } else {
      const ids = SAMPLE_TEXTS.map((t) => tokenize(t, vocab))
      const len = Math.max(...ids.map((x) => x.length))
      // Pad by repeating the last token: a mean over repeated tokens stays a valid embedding input.
      const data = BigInt64Array.from(ids.flatMap((x) => Array.from({ length: len }, (_, j) => BigInt(x[Math.min(j, x.length - 1)]!))))
      feeds = { input_ids: { dtype: 'int64', data, dims: [n, len] } }
    }
    const outName = config.outputs[0]!.name
    const out = (await runModel(model, feeds, [outName]))[outName]
    if (!out) throw fail(dir, `no output ${outName}`)
    const values = out.data as Float32Array
    const shape = [...out.dims]
    const width = config.model_type === 'bow-mlp-classifier' ? config.num_labels! : config.embedding_dim!
    if (shape.length !== 2 || shape[0] !== n || shape[1] !== width) throw fail(dir, `output shape [${shape.join(', ')}], expected [${n}, ${width}]`)
    if (!values.every(Number.isFinite)) throw fail(dir, 'output holds NaN or infinity')
    const rows = Array.from({ length: n }, (_, i) => Array.from(values.subarray(i * width, (i + 1) * width)))
    const check: ToyCheck = { path: dir, model_type: config.model_type, output: outName, shape }
    if (config.model_type === 'bow-mlp-classifier') {
      const labels = await readJsonFile<string[]>(join(dir, config.labels_file!), { what: 'labels file', expect: 'array', onError: (f) => fail(dir, f.message) })
      for (const r of rows) {
        const sum = r.reduce((a, b) => a + b, 0)
        if (Math.abs(sum - 1) > 1e-4) throw fail(dir, `probabilities sum to ${sum}`)
      }
      check.predictions = rows.map((r) => labels[r.indexOf(Math.max(...r))]!)
    } else {
      for (const r of rows) {
        const norm = Math.hypot(...r)
        if (Math.abs(norm - 1) > 1e-4) throw fail(dir, `embedding norm ${norm}`)
      }
      check.similarity = rows[0]!.reduce((a, x, j) => a + x * rows[1]![j]!, 0)
    }
    return check
  })
}
