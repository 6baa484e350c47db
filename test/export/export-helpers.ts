/** Shared by the export tests: fixtures, reference.json, running an exported model in onnxruntime. */
import type { ModelforgeError } from '../../src/lib/errors.js'
import ort from 'onnxruntime-node'
import { cp, mkdtemp, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'fixtures', 'hf-tiny')
export const TINY_MODELS = ['tiny-bert', 'tiny-bert-classifier', 'tiny-roberta', 'tiny-distilbert-classifier'] as const

export interface RefTensor {
  dtype: string
  dims: number[]
  data: number[]
}
export interface Reference {
  inputs: Record<string, RefTensor>
  outputs: Record<string, RefTensor>
}

export async function loadReference(model: string): Promise<Reference> {
  return JSON.parse(await readFile(join(FIXTURES, model, 'reference.json'), 'utf8')) as Reference
}

export async function tempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `mf-export-${prefix}-`))
}

/** A writable copy of a fixture model directory (without its torch model.onnx, so auto picks native). */
export async function copyFixture(model: string, into: string, keepOnnx = false): Promise<string> {
  const dst = join(into, model)
  await cp(join(FIXTURES, model), dst, {
    recursive: true,
    filter: (src) => keepOnnx || !src.endsWith('model.onnx'),
  })
  return dst
}

export type Feeds = Record<string, { dims: number[]; data: number[] | BigInt64Array }>

export interface Outputs {
  [name: string]: { dims: number[]; data: Float32Array }
}

export async function runOnnx(modelPath: string, feeds: Feeds): Promise<Outputs> {
  const session = await ort.InferenceSession.create(modelPath)
  try {
    const tensors: Record<string, ort.Tensor> = {}
    for (const [name, f] of Object.entries(feeds)) {
      const data = f.data instanceof BigInt64Array ? f.data : BigInt64Array.from(f.data.map((v) => BigInt(v)))
      tensors[name] = new ort.Tensor('int64', data, f.dims)
    }
    const res = await session.run(tensors)
    const out: Outputs = {}
    for (const [k, v] of Object.entries(res)) out[k] = { dims: v.dims.map(Number), data: v.data as Float32Array }
    return out
  } finally {
    await session.release()
  }
}

export function referenceFeeds(ref: Reference): Feeds {
  return Object.fromEntries(Object.entries(ref.inputs).map(([k, v]) => [k, { dims: v.dims, data: v.data }]))
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity
  let max = 0
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!)
    if (!(d <= max)) max = Number.isNaN(d) ? Infinity : d
  }
  return max
}

/** The error a promise rejects with; fails the test when it resolves instead. */
export const expectFailure = (p: Promise<unknown>): Promise<ModelforgeError> =>
  p.then(() => { throw new Error('expected a failure') }, (e: unknown) => e as ModelforgeError)
