import { readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import ort from 'onnxruntime-node'
import { GraphBuilder } from '../../src/onnx/graph-builder.js'
import { DataType, decodeModel } from '../../src/onnx/proto.js'
import { writeModelStreaming, type LazyInitializer } from '../../src/onnx/write-model.js'
import { tempDir } from '../export/export-helpers.js'

let dir: string
beforeAll(async () => {
  dir = await tempDir('writer')
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

/** y = x @ w + b with w streamed by the writer in `pieces` chunks (and b as an eager initializer). */
function affine(pieces: number, size = 300): { g: GraphBuilder; lazy: LazyInitializer; w: Float32Array } {
  const g = new GraphBuilder('affine')
  const x = g.input('x', DataType.FLOAT, ['batch', size])
  const w = Float32Array.from({ length: size * 2 }, (_, i) => ((i * 7) % 13) / 13 - 0.5)
  const b = g.constant('b', [2], Float32Array.from([1, -1]))
  g.op('Add', [g.op('MatMul', [x, 'w']), b], {}, 'y')
  g.output('y', DataType.FLOAT, ['batch', 2])
  const bytes = new Uint8Array(w.buffer)
  const step = Math.ceil(bytes.byteLength / pieces)
  const lazy: LazyInitializer = {
    name: 'w',
    dims: [size, 2],
    dataType: DataType.FLOAT,
    byteLength: bytes.byteLength,
    load: () => (async function* () {
      // One reused buffer, as the checkpoint reader does: the writer must copy what it keeps.
      const scratch = new Uint8Array(step)
      for (let o = 0; o < bytes.byteLength; o += step) {
        const n = Math.min(step, bytes.byteLength - o)
        scratch.set(bytes.subarray(o, o + n))
        yield scratch.subarray(0, n)
      }
    })(),
  }
  return { g, lazy, w }
}

async function run(path: string, size = 300): Promise<number[]> {
  const s = await ort.InferenceSession.create(path)
  const x = new Float32Array(size).fill(1)
  const out = await s.run({ x: new ort.Tensor('float32', x, [1, size]) })
  await s.release()
  return Array.from(out.y!.data as Float32Array)
}

describe('writeModelStreaming', () => {
  it('writes models onnxruntime loads, from one buffer or many reused chunks, inline or external', async () => {
    const expected = await (async () => {
      const { w } = affine(1)
      const y = [1, -1]
      for (let i = 0; i < 300; i++) for (let k = 0; k < 2; k++) y[k]! += w[i * 2 + k]!
      return y
    })()
    for (const [pieces, external] of [[1, false], [7, false], [7, true]] as const) {
      const { g, lazy } = affine(pieces)
      const path = join(dir, `m-${pieces}-${external}.onnx`)
      const written = await writeModelStreaming(path, g.toModel(), [lazy], { externalDataThreshold: external ? 0 : undefined })
      expect(written.files).toHaveLength(external ? 2 : 1)
      const got = await run(path)
      got.forEach((v, k) => expect(v).toBeCloseTo(expected[k]!, 4))
      const model = decodeModel(await readFile(path))
      expect(model.graph!.initializer!.map((t) => t.name)).toEqual([model.graph!.initializer![0]!.name, 'w'])
    }
  })

  it('refuses a producer that yields the wrong number of bytes', async () => {
    const { g, lazy } = affine(3)
    const short: LazyInitializer = { ...lazy, byteLength: lazy.byteLength + 4 }
    await expect(writeModelStreaming(join(dir, 'short.onnx'), g.toModel(), [short])).rejects.toThrow(/initializer w: produced 2400 bytes, expected 2404/)
  })
})
