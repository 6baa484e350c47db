import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { readModel } from '../../src/onnx/proto.js'
import { writeModelStreaming } from '../../src/onnx/write-model.js'
import { GraphBuilder } from '../../src/onnx/graph-builder.js'
import { DataType } from '../../src/onnx/proto.js'
import { nodeOutputs, valueTypes, withExposedValues, withOutputs } from '../../src/validate/intermediates.js'
import { generateInputs } from '../../src/validate/inputs.js'

const BERT = 'fixtures/hf-tiny/tiny-bert/model.onnx'
const dirs: string[] = []
afterAll(async () => { for (const d of dirs) await rm(d, { recursive: true, force: true }) })

describe('exposing inner values', () => {
  it('fetches only the named inner tensors of a batch, next to nothing else', async () => {
    const model = await readModel(BERT)
    const types = await valueTypes(model, BERT)
    const matmulInputs = (model.graph!.node ?? []).filter((n) => n.opType === 'MatMul').map((n) => n.input![0]!)
    expect(matmulInputs.every((n) => types.get(n) === 'float32')).toBe(true)
    await withExposedValues(model, BERT, matmulInputs.slice(0, 3), async (m) => {
      const feeds = generateInputs(m.loaded.inputs, { vocabSize: 40, samples: 2, sequenceLength: 5 })
      const out = await m.run(feeds)
      expect(Object.keys(out).sort()).toEqual([...new Set(matmulInputs.slice(0, 3))].sort())
      expect(out[matmulInputs[0]!]!.dims.slice(0, 2)).toEqual([2, 5])
      // The model's own outputs stay declared, and can be asked for.
      const own = await m.run(feeds, ['last_hidden_state'])
      expect(own.last_hidden_state!.dims).toEqual([2, 5, 32])
    })
  })

  it('lists each name once, after the model\'s own outputs, without changing the model', async () => {
    const model = await readModel(BERT)
    const before = model.graph!.output!.length
    const names = nodeOutputs(model)
    const copy = withOutputs(model, [names[0]!, names[0]!, 'last_hidden_state'])
    expect(copy.graph!.output!.map((o) => o.name)).toEqual(['last_hidden_state', 'pooler_output', names[0]])
    expect(model.graph!.output!.length).toBe(before)
  })

  it('loads a model with external data from its own directory and leaves no temporary file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mf-exposed-'))
    dirs.push(dir)
    const g = new GraphBuilder('ext')
    g.input('x', DataType.FLOAT, ['batch', 300])
    const h = g.op('Relu', ['x'])
    g.node('MatMul', [h, 'W'], ['y'])
    g.output('y', DataType.FLOAT, ['batch', 300])
    const w = new Float32Array(300 * 300).fill(0.01)
    const path = join(dir, 'm.onnx')
    await writeModelStreaming(path, g.toModel(), [{ name: 'W', dims: [300, 300], dataType: DataType.FLOAT, byteLength: w.byteLength, load: async () => new Uint8Array(w.buffer) }], { externalDataThreshold: 1000 })
    expect(await readdir(dir)).toEqual(['m.onnx', 'm.onnx.data'])
    const model = await readModel(path)
    await withExposedValues(model, path, [h], async (m) => {
      const x = new Float32Array(300).map((_, i) => i - 150)
      const out = await m.run({ x: { dtype: 'float32', dims: [1, 300], data: x } }, [h, 'y'])
      expect(Math.max(...out[h]!.data as Float32Array)).toBe(149)
      expect((out.y!.data as Float32Array)[0]).toBeCloseTo(0.01 * (149 * 150 / 2), 1)
    })
    expect((await readdir(dir)).sort()).toEqual(['m.onnx', 'm.onnx.data'])
  })
})
