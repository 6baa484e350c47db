import * as ort from 'onnxruntime-node'
import { describe, expect, it } from 'vitest'
import { attribute, float, GraphBuilder, int64s, tensor } from '../../src/onnx/graph-builder.js'
import { AttributeType, DataType, decodeModel, decodeTensor, encodeModel, encodeTensor, num } from '../../src/onnx/proto.js'

describe('GraphBuilder', () => {
  it('writes a model that onnxruntime loads and runs', async () => {
    const g = new GraphBuilder('affine')
    const x = g.input('x', DataType.FLOAT, ['batch', 3])
    const w = g.constant('w', [3, 2], new Float32Array([1, 0, 0, 1, 1, 1]))
    const b = g.constant('b', [2], new Float32Array([0.5, -0.5]))
    const y = g.op('Add', [g.op('MatMul', [x, w]), b])
    g.output(g.op('LeakyRelu', [y], { alpha: float(1) }, 'y'), DataType.FLOAT, ['batch', 2])
    const session = await ort.InferenceSession.create(encodeModel(g.toModel({ opset: 17 })))
    const out = await session.run({ x: new ort.Tensor('float32', new Float32Array([1, 2, 3, 0, 0, 0]), [2, 3]) })
    expect(Array.from(out.y!.data as Float32Array)).toEqual([4.5, 4.5, 0.5, -0.5])
  })

  it('round-trips a model through encode and decode', () => {
    const g = new GraphBuilder()
    const ids = g.input('ids', DataType.INT64, ['batch', 'sequence'])
    const shape = g.constant('shape', [2], int64s([-1, 1]))
    g.output(g.op('Reshape', [ids, shape], {}, 'flat'), DataType.INT64)
    const model = decodeModel(encodeModel(g.toModel({ opset: 17, metadata: { source: 'test' } })))
    expect(num(model.opsetImport![0]!.version)).toBe(17)
    expect(model.graph!.input![0]!.type!.tensorType!.shape!.dim!.map((d) => d.dimParam)).toEqual(['batch', 'sequence'])
    expect(model.graph!.node![0]!.opType).toBe('Reshape')
    expect(model.metadataProps).toEqual([{ key: 'source', value: 'test' }])
  })

  it('keeps INT64_MAX exact through a round trip (Slice ends as torch writes them)', () => {
    const a = attribute('ends', [Number.MAX_SAFE_INTEGER])
    expect(a.type).toBe(AttributeType.INTS)
    const t = { name: 'x', dims: [1], dataType: DataType.INT64, int64Data: ['9223372036854775807' as unknown as number] }
    const back = decodeTensor(encodeTensor(t))
    expect(String(back.int64Data![0])).toBe('9223372036854775807')
  })

  it('infers attribute types, with float() for integral floats', () => {
    expect(attribute('axis', -1)).toMatchObject({ type: AttributeType.INT, i: -1 })
    expect(attribute('epsilon', 1e-12)).toMatchObject({ type: AttributeType.FLOAT })
    expect(attribute('alpha', float(1))).toMatchObject({ type: AttributeType.FLOAT, f: 1 })
    expect(attribute('mode', 'constant').type).toBe(AttributeType.STRING)
    expect(attribute('perm', [0, 2, 1, 3]).type).toBe(AttributeType.INTS)
    expect(attribute('scales', [1, 1.5]).type).toBe(AttributeType.FLOATS)
  })

  it('refuses tensor data that does not match its dims', () => {
    expect(() => tensor('w', [2, 2], new Float32Array(3))).toThrow(/hold 4 elements but data has 3/)
  })

  it('refuses bytes that are not an ONNX model: exit 4 ONNX_INVALID, as inspect and the runtime say it', () => {
    expect(() => decodeModel(Buffer.from('not a model at all'), 'junk.onnx')).toThrow(/junk.onnx is not a valid ONNX model/)
    try {
      decodeModel(new Uint8Array(0), 'empty.onnx')
      expect.unreachable()
    } catch (err) {
      expect(err as { exitCode: number; code: string }).toMatchObject({ exitCode: 4, code: 'ONNX_INVALID' })
      expect((err as Error).message).toMatch(/no graph/)
    }
  })
})
