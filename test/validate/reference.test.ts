import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DataType, encodeTensor, type TensorProto } from '../../src/onnx/proto.js'
import { NotFoundError, UsageError } from '../../src/lib/errors.js'
import { bindByName, classifyPath, readDataSets, readReferenceJson, readTestDataDir, tensorFromProto } from '../../src/validate/reference.js'
import { floatToHalf } from '../../src/onnx/float16.js'
import { toFloat64 } from '../../src/validate/tensors.js'

let dir: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mf-reference-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

const raw = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength)

describe('tensorFromProto', () => {
  it.each<[string, TensorProto, string, number[]]>([
    ['float raw', { dataType: DataType.FLOAT, dims: [2], rawData: raw(new Float32Array([1.5, -2])) }, 'float32', [1.5, -2]],
    ['float typed', { dataType: DataType.FLOAT, dims: [2], floatData: [1.5, -2] }, 'float32', [1.5, -2]],
    ['double typed', { dataType: DataType.DOUBLE, dims: [1], doubleData: [0.1] }, 'float64', [0.1]],
    ['double raw', { dataType: DataType.DOUBLE, dims: [1], rawData: raw(new Float64Array([0.1])) }, 'float64', [0.1]],
    ['int64 typed', { dataType: DataType.INT64, dims: [2], int64Data: [-3, 2 ** 40] }, 'int64', [-3, 2 ** 40]],
    ['int64 raw', { dataType: DataType.INT64, dims: [1], rawData: raw(new BigInt64Array([-5n])) }, 'int64', [-5]],
    ['int32 typed', { dataType: DataType.INT32, dims: [2], int32Data: [-1, 7] }, 'int32', [-1, 7]],
    ['int16 in int32_data', { dataType: DataType.INT16, dims: [2], int32Data: [-300, 300] }, 'int16', [-300, 300]],
    ['int8 raw', { dataType: DataType.INT8, dims: [2], rawData: new Uint8Array([0xff, 0x7f]) }, 'int8', [-1, 127]],
    ['uint8 in int32_data', { dataType: DataType.UINT8, dims: [2], int32Data: [0, 255] }, 'uint8', [0, 255]],
    ['uint16 raw', { dataType: DataType.UINT16, dims: [1], rawData: raw(new Uint16Array([65535])) }, 'uint16', [65535]],
    ['uint32 in uint64_data', { dataType: DataType.UINT32, dims: [1], uint64Data: [4294967295] }, 'uint32', [4294967295]],
    ['uint64 raw', { dataType: DataType.UINT64, dims: [1], rawData: raw(new BigUint64Array([2n ** 63n])) }, 'uint64', [2 ** 63]],
    ['bool in int32_data', { dataType: DataType.BOOL, dims: [3], int32Data: [1, 0, 1] }, 'bool', [1, 0, 1]],
    ['float16 bits in int32_data', { dataType: DataType.FLOAT16, dims: [2], int32Data: [floatToHalf(0.5), floatToHalf(-3)] }, 'float16', [0.5, -3]],
    ['float16 raw', { dataType: DataType.FLOAT16, dims: [1], rawData: raw(new Uint16Array([floatToHalf(2.5)])) }, 'float16', [2.5]],
    ['scalar', { dataType: DataType.FLOAT, dims: [], floatData: [4] }, 'float32', [4]],
    ['empty', { dataType: DataType.FLOAT, dims: [0, 3] }, 'float32', []],
  ])('%s', async (_label, proto, dtype, values) => {
    // Round-trip through the wire format, as the pb files are.
    const { decodeTensor } = await import('../../src/onnx/proto.js')
    const t = await tensorFromProto(decodeTensor(encodeTensor(proto)), 'x')
    expect(t.dtype).toBe(dtype)
    expect([...toFloat64(t)]).toEqual(values)
  })

  it('reads strings', async () => {
    const t = await tensorFromProto({ dataType: DataType.STRING, dims: [2], stringData: [Buffer.from('a'), Buffer.from('bé')] }, 'x')
    expect(t).toEqual({ dtype: 'string', dims: [2], data: ['a', 'bé'] })
  })

  it('refuses types onnxruntime-node cannot take, naming them', async () => {
    await expect(tensorFromProto({ dataType: DataType.BFLOAT16, dims: [1], rawData: new Uint8Array(2) }, 'in.pb')).rejects.toThrow(/in.pb: tensor type bfloat16 cannot be passed/)
  })

  it('refuses raw data of the wrong length and typed fields of the wrong count', async () => {
    await expect(tensorFromProto({ dataType: DataType.FLOAT, dims: [3], rawData: new Uint8Array(8) }, 'x')).rejects.toMatchObject({ code: 'TENSOR_SHAPE_MISMATCH' })
    await expect(tensorFromProto({ dataType: DataType.FLOAT, dims: [3], floatData: [1] }, 'x')).rejects.toMatchObject({ code: 'TENSOR_SHAPE_MISMATCH' })
  })

  it('reads external data relative to the file, and refuses missing or short files', async () => {
    await writeFile(join(dir, 'weights.bin'), Buffer.from(raw(new Float32Array([9, 1, 2]))))
    const ext = (location: string, offset: number, length: number): TensorProto => ({
      dataType: DataType.FLOAT, dims: [2], dataLocation: 1,
      externalData: [{ key: 'location', value: location }, { key: 'offset', value: String(offset) }, { key: 'length', value: String(length) }],
    })
    expect([...toFloat64(await tensorFromProto(ext('weights.bin', 4, 8), 'x', dir))]).toEqual([1, 2])
    await expect(tensorFromProto(ext('nope.bin', 0, 8), 'x', dir)).rejects.toBeInstanceOf(NotFoundError)
    await expect(tensorFromProto(ext('weights.bin', 8, 8), 'x', dir)).rejects.toMatchObject({ code: 'EXTERNAL_DATA_INVALID' })
    await expect(tensorFromProto(ext('../weights.bin', 0, 8), 'x', dir)).rejects.toThrow(/leaves the tensor's directory/)
    await expect(tensorFromProto(ext('/etc/hostname', 0, 8), 'x', dir)).rejects.toMatchObject({ code: 'EXTERNAL_DATA_INVALID' })
  })
})

describe('test data directories', () => {
  it('reads test_data_set_N in order, inputs and outputs sorted numerically', async () => {
    const t = join(dir, 'test_x')
    for (const set of [0, 1]) {
      const d = join(t, `test_data_set_${set}`)
      await mkdir(d, { recursive: true })
      for (let i = 0; i < 11; i++) {
        await writeFile(join(d, `input_${i}.pb`), encodeTensor({ name: `in${i}`, dataType: DataType.FLOAT, dims: [1], floatData: [i + set * 100] }))
      }
      await writeFile(join(d, 'output_0.pb'), encodeTensor({ dataType: DataType.FLOAT, dims: [1], floatData: [set] }))
    }
    const sets = await readTestDataDir(t)
    expect(sets.map((s) => s.label)).toEqual(['test_data_set_0', 'test_data_set_1'])
    expect(sets[1].inputs.map((x) => x.name)).toEqual(Array.from({ length: 11 }, (_, i) => `in${i}`))
    expect([...toFloat64(sets[1].inputs[10].tensor)]).toEqual([110])
    expect(sets[0].outputs[0].name).toBeUndefined()
    // A single data set directory works too.
    expect((await readTestDataDir(join(t, 'test_data_set_1')))[0].outputs).toHaveLength(1)
  })

  it('refuses an empty directory', async () => {
    await mkdir(join(dir, 'empty'), { recursive: true })
    await expect(readTestDataDir(join(dir, 'empty'))).rejects.toMatchObject({ code: 'REFERENCE_EMPTY' })
  })

  it('reports a corrupt pb file by path', async () => {
    const d = join(dir, 'corrupt')
    await mkdir(d, { recursive: true })
    await writeFile(join(d, 'output_0.pb'), Buffer.from([0x0a, 0xff, 0xff]))
    await expect(readTestDataDir(d)).rejects.toThrow(/output_0.pb is not a valid ONNX TensorProto/)
  })
})

describe('reference JSON', () => {
  async function json(name: string, body: unknown): Promise<string> {
    const p = join(dir, name)
    await writeFile(p, typeof body === 'string' ? body : JSON.stringify(body))
    return p
  }

  it('reads the hf-tiny layout', async () => {
    const set = await readReferenceJson('fixtures/hf-tiny/tiny-bert/reference.json')
    expect(set.inputs.map((t) => t.name)).toEqual(['input_ids', 'attention_mask', 'token_type_ids'])
    expect(set.inputs[0].tensor.dtype).toBe('int64')
    expect(set.outputs.map((t) => [t.name, t.tensor.dims])).toEqual([['last_hidden_state', [3, 11, 32]], ['pooler_output', [3, 32]]])
  })

  it('accepts nested data, shape for dims, and NaN/Infinity as strings', async () => {
    const p = await json('nested.json', { outputs: { y: { dtype: 'float32', shape: [2, 2], data: [[1, 'NaN'], ['Infinity', '-Infinity']] } } })
    const set = await readReferenceJson(p)
    expect([...toFloat64(set.outputs[0].tensor)]).toEqual([1, NaN, Infinity, -Infinity])
    expect(set.inputs).toEqual([])
  })

  it.each([
    ['broken.json', '{"inputs": ', /not valid JSON/],
    ['nokeys.json', { foo: 1 }, /neither "inputs" nor "outputs"/],
    ['notensor.json', { outputs: { y: [1, 2] } }, /outputs.y: expected \{"dtype", "dims", "data"\}/],
    ['count.json', { outputs: { y: { dtype: 'float32', dims: [3], data: [1, 2] } } }, /2 values for dims \[3\] \(expected 3\)/],
    ['dtype.json', { outputs: { y: { dtype: 'complex64', dims: [1], data: [1] } } }, /unsupported dtype "complex64"/],
    ['dims.json', { outputs: { y: { dtype: 'float32', dims: [-1], data: [1] } } }, /dims must be non-negative integers/],
  ])('refuses %s with a usage error', async (name, body, message) => {
    const err = await readReferenceJson(await json(name, body)).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(UsageError)
    expect((err as UsageError).message).toMatch(message)
    expect((err as UsageError).hint).toBeTruthy()
  })

  // Each value must be what its dtype holds: never a NaN from a typo, a silently truncated float, a wrapped
  // integer or a crash (exit 1) in BigInt; the message names the tensor and the index in the flattened data.
  it.each<[string, string, unknown[], RegExp]>([
    ['a word in float32', 'float32', [1, 'abc'], /outputs\.y\[1\]: "abc" is not a number/],
    ['null in float32', 'float32', [null, 1], /outputs\.y\[0\]: null is not a number/],
    ['a boolean in float32', 'float32', [0.5, true], /outputs\.y\[1\]: true is a boolean, not a number \(float32\)/],
    ['an object in float64', 'float64', [{}, 1], /outputs\.y\[0\]: \{\} is not a number/],
    ['a float in int64', 'int64', [1, 1.5], /outputs\.y\[1\]: 1\.5 is not an integer, which int64 needs/],
    ['a float in int32', 'int32', [2.5, 1], /outputs\.y\[0\]: 2\.5 is not an integer, which int32 needs/],
    ['a boolean in int64', 'int64', [true, 1], /outputs\.y\[0\]: true is a boolean, not a number \(int64\)/],
    ['a word in int64', 'int64', ['12a', 1], /outputs\.y\[0\]: "12a" is not an integer, which int64 needs/],
    ['a string float in int64', 'int64', [1, '1.5'], /outputs\.y\[1\]: "1\.5" is not an integer/],
    ['int64 beyond its range (string)', 'int64', ['9223372036854775808', 1], /outputs\.y\[0\]: 9223372036854775808 is outside the range of int64 \(-9223372036854775808 to 9223372036854775807\)/],
    ['int64 beyond its range (number)', 'int64', [1e20, 1], /outputs\.y\[0\]: 100000000000000000000 is outside the range of int64/],
    ['an int64 number past 2^53 (its digits are already lost)', 'int64', [1, 2 ** 60 + 2 ** 10], /outputs\.y\[1\]: .* is beyond 2\^53.*write it as a string/],
    ['uint64 below 0', 'uint64', ['-1', 1], /outputs\.y\[0\]: -1 is outside the range of uint64 \(0 to 18446744073709551615\)/],
    ['uint8 past 255', 'uint8', [255, 256], /outputs\.y\[1\]: 256 is outside the range of uint8 \(0 to 255\)/],
    ['int8 below -128', 'int8', [-129, 0], /outputs\.y\[0\]: -129 is outside the range of int8 \(-128 to 127\)/],
    ['int32 past its range', 'int32', [2 ** 31, 0], /outputs\.y\[0\]: 2147483648 is outside the range of int32/],
    ['2 in bool', 'bool', [true, 2], /outputs\.y\[1\]: 2 is not a boolean \(true, false, 0 or 1\)/],
    ['a word in bool', 'bool', ['yes', true], /outputs\.y\[0\]: "yes" is not a boolean/],
    ['float16 past 65504', 'float16', [1, 1e6], /outputs\.y\[1\]: 1000000 is outside the range of float16 \(±65504\)/],
    ['float32 past its range', 'float32', [1e39, 1], /outputs\.y\[0\]: 1e\+39 is outside the range of float32/],
  ])('refuses %s with REFERENCE_INVALID (exit 2) naming the output and the index', async (_label, dtype, data, message) => {
    const p = await json(`value-${dtype}-${String(data[0])}-${String(data[1])}.json`.replace(/[^\w.-]/g, '_'), { outputs: { y: { dtype, dims: [2], data } } })
    const err = await readReferenceJson(p).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(UsageError)
    expect(err).toMatchObject({ exitCode: 2, code: 'REFERENCE_INVALID', details: { tensor: 'outputs.y', index: expect.any(Number) } })
    expect((err as UsageError).message).toMatch(message)
  })

  it('names inputs too, and counts the index in the flattened row-major data', async () => {
    const p = await json('input-value.json', { inputs: { input_ids: { dtype: 'int64', dims: [2, 2], data: [[1, 2], [3, 4.5]] } } })
    await expect(readReferenceJson(p)).rejects.toMatchObject({ code: 'REFERENCE_INVALID', message: expect.stringMatching(/^inputs\.input_ids\[3\]: 4\.5 is not an integer/) })
  })

  it('accepts what each dtype can hold exactly: int64 strings past 2^53, the whole uint64 range, bools as 0/1, the non-finite float spellings', async () => {
    const p = await json('values-ok.json', { outputs: {
      i: { dtype: 'int64', dims: [4], data: ['9007199254740993', '-9223372036854775808', '9223372036854775807', -5] },
      u: { dtype: 'uint64', dims: [2], data: ['18446744073709551615', 0] },
      b: { dtype: 'bool', dims: [4], data: [true, false, 0, 1] },
      f: { dtype: 'float16', dims: [3], data: [65504, '-Infinity', 'NaN'] },
      s: { dtype: 'uint8', dims: [2], data: [0, 255] },
    } })
    const set = await readReferenceJson(p)
    const data = Object.fromEntries(set.outputs.map((o) => [o.name, Array.from(o.tensor.data as ArrayLike<unknown>)]))
    expect(data.i).toEqual([9007199254740993n, -9223372036854775808n, 9223372036854775807n, -5n])
    expect(data.u).toEqual([18446744073709551615n, 0n])
    expect(data.b).toEqual([1, 0, 0, 1])
    expect([...toFloat64(set.outputs[3]!.tensor)]).toEqual([65504, -Infinity, NaN])
    expect(data.s).toEqual([0, 255])
  })

  it('reports a missing file with exit 6', async () => {
    await expect(readReferenceJson(join(dir, 'missing.json'))).rejects.toBeInstanceOf(NotFoundError)
  })
})

describe('classifyPath and readDataSets', () => {
  it('tells models, JSON and directories apart, sniffing unknown extensions', async () => {
    expect(await classifyPath('fixtures/hf-tiny/tiny-bert/model.onnx', 'reference')).toBe('onnx')
    expect(await classifyPath('fixtures/hf-tiny/tiny-bert/reference.json', 'reference')).toBe('json')
    expect(await classifyPath('fixtures/onnx-backend-node/test_add', 'reference')).toBe('test-data')
    await writeFile(join(dir, 'ref.txt'), '  {"outputs": {}}')
    expect(await classifyPath(join(dir, 'ref.txt'), 'reference')).toBe('json')
    await expect(classifyPath(join(dir, 'nothing'), 'reference')).rejects.toMatchObject({ code: 'REFERENCE_NOT_FOUND', exitCode: 6 })
    await expect(readDataSets('fixtures/hf-tiny/tiny-bert/model.onnx', 'inputs')).rejects.toThrow(/is an ONNX model, not data/)
  })
})

describe('bindByName', () => {
  const t = { dtype: 'float32' as const, dims: [1], data: new Float32Array(1) }
  it('binds by name, and unnamed tensors by position', () => {
    expect(Object.keys(bindByName([{ name: 'b', tensor: t }, { name: 'a', tensor: t }], ['a', 'b'], 'input'))).toEqual(['b', 'a'])
    expect(Object.keys(bindByName([{ tensor: t }, { tensor: t }], ['a', 'b'], 'input'))).toEqual(['a', 'b'])
  })
  it('refuses unknown names, too many tensors and duplicates', () => {
    expect(() => bindByName([{ name: 'z', tensor: t }], ['a'], 'input')).toThrow(/input "z" is not one of the model's \(a\)/)
    expect(() => bindByName([{ tensor: t }, { tensor: t }], ['a'], 'input')).toThrow(/input #1/)
    expect(() => bindByName([{ name: 'a', tensor: t }, { tensor: t }], ['a', 'b'], 'input')).not.toThrow()
    expect(() => bindByName([{ tensor: t }, { name: 'a', tensor: t }], ['a', 'b'], 'input')).toThrow(/given twice/)
  })
})
