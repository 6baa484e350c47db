import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { GraphBuilder, int64s } from '../../src/onnx/graph-builder.js'
import { DataType, writeModel, type ModelProto, type TensorProto } from '../../src/onnx/proto.js'
import { IntegrityError, NotFoundError, UsageError } from '../../src/lib/errors.js'
import { assertWellFormed, formatInspection } from '../../src/onnx/inspect.js'
import { inspectModel } from '../../src/validate/load-check.js'
import { loadModel, closeModel, runModel } from '../../src/validate/runtime.js'
import { fromValues, toFloat64 } from '../../src/validate/tensors.js'

let dir: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mf-inspect-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

function external(name: string, dims: number[], location: string, offset: number, length: number): TensorProto {
  return {
    name, dims, dataType: DataType.FLOAT, dataLocation: 1,
    externalData: [{ key: 'location', value: location }, { key: 'offset', value: String(offset) }, { key: 'length', value: String(length) }],
  }
}

/**
 * y = If(cond, then: x + w, else: x - w) with w in external data (weights.bin), the branches reading x and w
 * from the outer scope; plus a com.microsoft op-free custom domain import and metadata.
 */
function subgraphModel(location = 'weights.bin'): ModelProto {
  const g = new GraphBuilder('outer')
  g.input('x', DataType.FLOAT, ['batch', 4])
  g.input('cond', DataType.BOOL, [])
  g.initializers.push(external('w', [4], location, 16, 16))
  const branch = (op: string, out: string) => {
    const b = new GraphBuilder(`${op}_branch`)
    b.node(op, ['x', 'w'], [out])
    b.output(out, DataType.FLOAT, ['batch', 4])
    return b.toModel().graph!
  }
  g.node('If', ['cond'], ['y'], {})
  const ifNode = g.nodes[g.nodes.length - 1]
  ifNode.attribute = [
    { name: 'then_branch', type: 5, g: branch('Add', 'then_y') },
    { name: 'else_branch', type: 5, g: branch('Sub', 'else_y') },
  ]
  g.output('y', DataType.FLOAT, ['batch', 4])
  return g.toModel({ producerName: 'unit-test', producerVersion: '9.9', metadata: { source: 'test' }, extraOpsets: { 'com.microsoft': 1 } })
}

async function writeWeights(name = 'weights.bin', bytes = 32): Promise<void> {
  const data = new Float32Array(bytes / 4).map((_, i) => i)
  await writeFile(join(dir, name), Buffer.from(data.buffer))
}

describe('inspectModel', () => {
  it('describes a model with subgraphs and external data, and it runs', async () => {
    await writeWeights()
    const path = join(dir, 'if.onnx')
    await writeModel(path, subgraphModel())
    const info = await inspectModel(path, { load: true })
    expect(info).toMatchObject({
      irVersion: 8,
      opsets: [{ domain: 'ai.onnx', version: 17 }, { domain: 'com.microsoft', version: 1 }],
      producer: { name: 'unit-test', version: '9.9' },
      metadata: { source: 'test' },
      graphName: 'outer',
      inputs: [{ name: 'x', dtype: 'float32', shape: ['batch', 4] }, { name: 'cond', dtype: 'bool', shape: [] }],
      outputs: [{ name: 'y', dtype: 'float32', shape: ['batch', 4] }],
      nodes: 3,
      subgraphs: 2,
      ops: [{ op: 'Add', count: 1 }, { op: 'If', count: 1 }, { op: 'Sub', count: 1 }],
      parameters: { tensors: 1, count: 4, bytes: 16, externalTensors: 1, dtypes: { float32: 4 } },
      externalData: [{ location: 'weights.bin', tensors: 1, bytes: 16, exists: true, size: 32 }],
      problems: [],
      passed: true,
      runtime: { loaded: true },
    })
    const text = formatInspection(info)
    expect(text).toMatch(/IR version 8; opsets ai.onnx 17, com.microsoft 1/)
    expect(text).toMatch(/x: float32 \[batch, 4\]/)
    expect(text).toMatch(/nodes: 3 \(in 3 graphs\)/)
    expect(text).toMatch(/weights.bin: 1 tensors, 16 B/)
    expect(text).toMatch(/onnxruntime: loads/)
    // The external weights are the second half of the file: [4, 5, 6, 7].
    const m = await loadModel(path)
    try {
      const out = await runModel(m, { x: fromValues('float32', [1, 4], [1, 1, 1, 1]), cond: fromValues('bool', [], [false]) })
      expect([...toFloat64(out.y)]).toEqual([-3, -4, -5, -6])
    } finally {
      await closeModel(m)
    }
  })

  it('reports missing, truncated and escaping external data', async () => {
    const sub = join(dir, 'ext')
    await mkdir(sub, { recursive: true })
    await writeModel(join(sub, 'missing.onnx'), subgraphModel('nope.bin'))
    const missing = await inspectModel(join(sub, 'missing.onnx'))
    expect(missing.problems.map((p) => p.code)).toEqual(['EXTERNAL_DATA_MISSING'])
    expect(missing.externalData[0]).toMatchObject({ location: 'nope.bin', exists: false })
    expect(() => assertWellFormed(missing)).toThrow(/external data file "nope.bin"/)

    await writeFile(join(sub, 'short.bin'), Buffer.alloc(20))
    await writeModel(join(sub, 'short.onnx'), subgraphModel('short.bin'))
    const short = await inspectModel(join(sub, 'short.onnx'))
    expect(short.problems[0]).toMatchObject({ code: 'EXTERNAL_DATA_TRUNCATED', message: expect.stringMatching(/has 20 bytes, but the model reads up to byte 32/) })

    for (const location of ['/etc/passwd', '../weights.bin']) {
      await writeModel(join(sub, 'escape.onnx'), subgraphModel(location))
      const info = await inspectModel(join(sub, 'escape.onnx'))
      expect(info.problems.map((p) => p.code)).toEqual(['EXTERNAL_DATA_LOCATION'])
    }
  })

  it('finds undefined inputs and outputs, including inside subgraphs', async () => {
    const model = subgraphModel()
    model.graph!.node![0].attribute![0].g!.node![0].input = ['x', 'ghost']
    model.graph!.output!.push({ name: 'phantom', type: { tensorType: { elemType: DataType.FLOAT } } })
    const path = join(dir, 'undefined.onnx')
    await writeModel(path, model)
    const info = await inspectModel(path)
    expect(info.problems.map((p) => p.code)).toEqual(['UNDEFINED_INPUT', 'UNDEFINED_OUTPUT'])
    expect(info.problems[0].message).toMatch(/graph > node "If_0" \(If\).then_branch: node "Add_0" \(Add\) reads "ghost"/)
    expect(info.problems[1].message).toMatch(/"phantom"/)
  })

  it('checks initializer sizes, raw and typed', async () => {
    const g = new GraphBuilder()
    g.input('x', DataType.FLOAT, [2])
    g.initializers.push({ name: 'a', dims: [2], dataType: DataType.FLOAT, rawData: new Uint8Array(7) })
    g.initializers.push({ name: 'b', dims: [2], dataType: DataType.FLOAT, floatData: [1, 2, 3] })
    g.initializers.push({ name: 'c', dims: [2], dataType: DataType.INT64, int64Data: [1, 2] })
    g.node('Add', ['x', 'a'], ['t'])
    g.node('Add', ['t', 'b'], ['y'])
    g.output('y', DataType.FLOAT, [2])
    const path = join(dir, 'sizes.onnx')
    await writeModel(path, g.toModel())
    const info = await inspectModel(path)
    expect(info.problems.map((p) => p.message)).toEqual([
      'graph initializer "a": raw_data holds 7 bytes but shape [2] of float32 needs 8',
      'graph initializer "b": holds 3 values for 2 elements',
    ])
    expect(info.parameters).toMatchObject({ tensors: 3, count: 6 })
  })

  it('counts parameters per dtype, which tells an fp16 model from an fp32 one', async () => {
    const g = new GraphBuilder()
    g.input('x', DataType.FLOAT, [2])
    const w = g.initializer('w', [3], new Uint16Array([0x3c00, 0x4000, 0x4200]))
    const scale = g.initializer('scale', [], new Float32Array([0.5]))
    const half = g.op('Cast', ['x'], { to: DataType.FLOAT16 })
    const y = g.op('Mul', [half, g.op('Cast', [scale], { to: DataType.FLOAT16 })])
    g.node('Concat', [y, w], ['y'], { axis: 0 })
    g.output('y', DataType.FLOAT16, [5])
    const path = join(dir, 'fp16-weights.onnx')
    await writeModel(path, g.toModel())
    expect((await inspectModel(path)).parameters.dtypes).toEqual({ float16: 3, float32: 1 })
  })

  it('counts ops by domain and warns about unsorted nodes', async () => {
    const g = new GraphBuilder()
    g.input('x', DataType.FLOAT, [1, 4])
    g.node('Relu', ['t'], ['y'])
    g.node('Gelu', ['x'], ['t'], {}, 'com.microsoft')
    g.initializer('shape', [2], int64s([1, 4]))
    g.output('y', DataType.FLOAT, [1, 4])
    const path = join(dir, 'unsorted.onnx')
    await writeModel(path, g.toModel({ extraOpsets: { 'com.microsoft': 1 } }))
    const info = await inspectModel(path)
    expect(info.ops).toEqual([{ op: 'Gelu', domain: 'com.microsoft', count: 1 }, { op: 'Relu', count: 1 }])
    expect(info.problems).toEqual([{ severity: 'warning', code: 'UNSORTED', message: expect.stringMatching(/topological order/) }])
    expect(info.passed).toBe(true)
    expect(formatInspection(info)).toMatch(/com.microsoft.Gelu +1/)
  })

  it('refuses missing files, directories, empty files and non-ONNX bytes', async () => {
    await expect(inspectModel(join(dir, 'none.onnx'))).rejects.toBeInstanceOf(NotFoundError)
    await expect(inspectModel(dir)).rejects.toBeInstanceOf(UsageError)
    await writeFile(join(dir, 'empty.onnx'), '')
    await expect(inspectModel(join(dir, 'empty.onnx'))).rejects.toMatchObject({ exitCode: 4, message: expect.stringMatching(/is empty/) })
    await writeFile(join(dir, 'junk.onnx'), Buffer.from([0x08, 0x07, 0x12, 0xff, 0xff, 0xff]))
    const err = await inspectModel(join(dir, 'junk.onnx')).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(IntegrityError)
    expect((err as IntegrityError).hint).toMatch(/truncated/)
  })

  it('inspects the tiny BERT export', async () => {
    const info = await inspectModel('fixtures/hf-tiny/tiny-bert/model.onnx')
    expect(info.passed).toBe(true)
    expect(info.inputs.map((i) => i.name)).toEqual(['input_ids', 'attention_mask', 'token_type_ids'])
    expect(info.ops.find((o) => o.op === 'LayerNormalization')).toBeTruthy()
    expect(info.parameters.count).toBeGreaterThan(10_000)
  })
})
