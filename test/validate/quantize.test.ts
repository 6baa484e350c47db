/**
 * quantizeModel end to end on the tiny fixtures: int8 Q/DQ models calibrated on text in the fixture's
 * vocabulary (every method), checked on held-out batches; the calibration cache reused byte for byte; fp16
 * models; and every refusal, with nothing written.
 */
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ModelforgeError } from '../../src/lib/errors.js'
import { DataType, num, readModel, type TensorProto } from '../../src/onnx/proto.js'
import { GraphBuilder } from '../../src/onnx/graph-builder.js'
import { writeModel } from '../../src/onnx/proto.js'
import { cachePathFor, defaultOutput, quantizeModel, type QuantizeOptions } from '../../src/validate/quantize.js'
import { writeCalibText } from '../helpers/calib-text.js'

const FIXTURES = ['tiny-bert', 'tiny-bert-classifier', 'tiny-distilbert-classifier', 'tiny-roberta'] as const
const modelOf = (name: string) => join('fixtures', 'hf-tiny', name, 'model.onnx')

let dir: string
const calib: Record<string, string> = {}
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mf-quantize-'))
  // 64 lines calibrate (16 batches of 4), the 16 after them are the held-out batches.
  for (const f of FIXTURES) {
    calib[f] = join(dir, `${f}.txt`)
    writeCalibText(calib[f], modelOf(f), 80, 7)
  }
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

async function failure(o: QuantizeOptions): Promise<ModelforgeError> {
  const err = await quantizeModel(o).then(() => undefined, (e: unknown) => e)
  if (!(err instanceof ModelforgeError)) throw new Error(`expected our error, got ${String(err)}`)
  return err
}

function initializers(model: Awaited<ReturnType<typeof readModel>>): Map<string, TensorProto> {
  return new Map((model.graph!.initializer ?? []).map((t) => [t.name!, t]))
}

describe('quantize --precision int8', () => {
  for (const f of FIXTURES) {
    it(`${f}: a Q/DQ model that onnxruntime runs, within cosine 0.99 (and 95% argmax) of fp32 on held-out text`, async () => {
      const out = join(dir, `${f}.int8.onnx`)
      const r = await quantizeModel({ model: modelOf(f), precision: 'int8', calibData: calib[f], out, seqLen: 16 })
      expect(r.accuracy.passed).toBe(true)
      expect(r.accuracy.heldOut).toMatchObject({ from: 'data', batches: 4, rows: 16 })
      for (const m of r.accuracy.outputs) {
        expect(m.cosine).toBeGreaterThanOrEqual(0.99)
        if (m.argmaxAgreement !== undefined) expect(m.argmaxAgreement).toBeGreaterThanOrEqual(0.95)
      }
      expect(r.calibration).toMatchObject({ from: 'data', method: 'entropy', data: { kind: 'text', batches: 16, batchSize: 4, seqLen: 16 } })
      expect(r.placement!.weights).toBeGreaterThan(0)
      expect(existsSync(cachePathFor(out))).toBe(true)

      // Weights: int8 initializers behind a DequantizeLinear per output channel; activations per tensor; zero points 0.
      const q = await readModel(out)
      const inits = initializers(q)
      const dq = q.graph!.node!.filter((n) => n.opType === 'DequantizeLinear')
      const weightDq = dq.filter((n) => inits.get(n.input![0]!)?.dataType === DataType.INT8)
      expect(weightDq.length).toBe(r.placement!.weights)
      for (const n of weightDq) {
        const w = inits.get(n.input![0]!)!
        const axis = num(n.attribute!.find((a) => a.name === 'axis')?.i ?? 1)
        const scale = inits.get(n.input![1]!)!
        expect(num(scale.dims![0])).toBe(num(w.dims![axis]))
      }
      for (const n of q.graph!.node!.filter((x) => x.opType === 'QuantizeLinear')) {
        expect(inits.get(n.input![1]!)!.dims ?? []).toEqual([])
      }
      for (const n of [...dq, ...q.graph!.node!.filter((x) => x.opType === 'QuantizeLinear')]) {
        const zp = inits.get(n.input![2]!)!
        expect(zp.dataType).toBe(DataType.INT8)
        expect([...(zp.rawData ?? new Uint8Array(zp.int32Data?.length ?? 0))].every((b) => b === 0)).toBe(true)
        expect((zp.int32Data ?? []).every((b) => b === 0)).toBe(true)
      }
      // Inputs and outputs keep their types.
      expect(q.graph!.input!.map((i) => i.type?.tensorType?.elemType)).toEqual((await readModel(modelOf(f))).graph!.input!.map((i) => i.type?.tensorType?.elemType))
    })
  }

  for (const method of ['minmax', 'percentile'] as const) {
    it(`--method ${method} calibrates and passes the check on tiny-bert`, async () => {
      const out = join(dir, `bert-${method}.onnx`)
      const r = await quantizeModel({ model: modelOf('tiny-bert'), precision: 'int8', calibData: calib['tiny-bert'], out, method, seqLen: 16 })
      expect(r.calibration).toMatchObject({ method, ...(method === 'percentile' ? { percentile: 99.999 } : {}) })
      expect(r.accuracy.passed).toBe(true)
      const cache = JSON.parse(await readFile(cachePathFor(out), 'utf8'))
      expect(cache).toMatchObject({ schema: 'modelforge.calibration/v1', method })
      expect(Object.values(cache.tensors as Record<string, { amax: number }>).every((t) => t.amax > 0)).toBe(true)
    })
  }

  it('--calib-cache skips calibration and writes a byte-identical model', async () => {
    const first = join(dir, 'cached-1.onnx')
    const second = join(dir, 'cached-2.onnx')
    const a = await quantizeModel({ model: modelOf('tiny-bert'), precision: 'int8', calibData: calib['tiny-bert'], out: first, seqLen: 16 })
    const b = await quantizeModel({ model: modelOf('tiny-bert'), precision: 'int8', calibData: calib['tiny-bert'], out: second, seqLen: 16, calibCache: cachePathFor(first) })
    expect(b.calibration).toMatchObject({ from: 'cache', method: 'entropy' })
    expect(b.out.sha256).toBe(a.out.sha256)
    expect(Buffer.compare(await readFile(first), await readFile(second))).toBe(0)
    expect(await readFile(cachePathFor(second), 'utf8')).toBe(await readFile(cachePathFor(first), 'utf8'))
    // The same held-out batches: those after the calibration batches the cache records.
    expect(b.accuracy.outputs.map((m) => m.cosine)).toEqual(a.accuracy.outputs.map((m) => m.cosine))
    // A cache needs no data at all: the held-out inputs are generated then.
    const c = await quantizeModel({ model: modelOf('tiny-bert'), precision: 'int8', out: join(dir, 'cached-3.onnx'), calibCache: cachePathFor(first) })
    expect(c.out.sha256).toBe(a.out.sha256)
    expect(c.accuracy.heldOut.from).toBe('generated')
  })

  it('refuses a cache of another model or placement (exit 4), and a file that is no cache', async () => {
    const out = join(dir, 'bert-for-cache.onnx')
    await quantizeModel({ model: modelOf('tiny-bert'), precision: 'int8', calibData: calib['tiny-bert'], out, seqLen: 16, method: 'minmax' })
    const other = await failure({ model: modelOf('tiny-roberta'), precision: 'int8', calibCache: cachePathFor(out), out: join(dir, 'x.onnx') })
    expect(other).toMatchObject({ code: 'CALIB_CACHE_MISMATCH', exitCode: 4 })
    const placement = await failure({ model: modelOf('tiny-bert'), precision: 'int8', calibCache: cachePathFor(out), quantizeAttention: true, out: join(dir, 'x.onnx') })
    expect(placement).toMatchObject({ code: 'CALIB_CACHE_MISMATCH', exitCode: 4 })
    expect(placement.hint).toMatch(/--quantize-attention/)
    const bogus = join(dir, 'bogus.json')
    await writeFile(bogus, '{"schema": "something-else", "tensors": {}}')
    expect(await failure({ model: modelOf('tiny-bert'), precision: 'int8', calibCache: bogus, out: join(dir, 'x.onnx') })).toMatchObject({ code: 'CALIB_CACHE_INVALID', exitCode: 4 })
    expect(existsSync(join(dir, 'x.onnx'))).toBe(false)
  })

  it('writes nothing when the accuracy check fails (exit 4, the table in details)', async () => {
    const out = join(dir, 'strict.onnx')
    const err = await failure({ model: modelOf('tiny-bert'), precision: 'int8', calibData: calib['tiny-bert'], out, seqLen: 16, minCosine: 1 })
    expect(err).toMatchObject({ code: 'VALIDATION_FAILED', exitCode: 4 })
    expect((err.details?.result as { outputs: unknown[] }).outputs.length).toBe(2)
    expect(existsSync(out)).toBe(false)
    expect(existsSync(cachePathFor(out))).toBe(false)
  })
})

describe('quantize --precision fp16', () => {
  for (const f of FIXTURES) {
    it(`${f}: about half the size, int64 inputs and float32 outputs kept, within 1e-2 of fp32`, async () => {
      const out = join(dir, `${f}.fp16.onnx`)
      const r = await quantizeModel({ model: modelOf(f), precision: 'fp16', out })
      // Every float weight is half as large; the file is not quite half, because the graph itself (some
      // 300 named nodes) weighs as much as the weights of these tiny models (bench/quantize: MiniLM).
      const weightBytes = (m: Awaited<ReturnType<typeof readModel>>, type: number) => (m.graph!.initializer ?? []).filter((t) => t.dataType === type).reduce((a, t) => a + (t.rawData?.byteLength ?? 0), 0)
      const m = await readModel(out)
      expect(weightBytes(m, DataType.FLOAT16) / weightBytes(await readModel(modelOf(f)), DataType.FLOAT)).toBe(0.5)
      expect(weightBytes(m, DataType.FLOAT)).toBe(0)
      expect(r.out.bytes / r.source.bytes).toBeLessThan(0.8)
      expect(r.accuracy.passed).toBe(true)
      expect(r.accuracy.precision).toBe('fp16')
      expect(new Set(m.graph!.input!.map((i) => i.type?.tensorType?.elemType))).toEqual(new Set([DataType.INT64]))
      expect(new Set(m.graph!.output!.map((i) => i.type?.tensorType?.elemType))).toEqual(new Set([DataType.FLOAT]))
    })
  }
})

describe('quantize refuses', () => {
  it('int8 without calibration data (exit 2), before reading anything', async () => {
    expect(await failure({ model: join(dir, 'absent.onnx'), precision: 'int8' })).toMatchObject({ code: 'CALIB_DATA_REQUIRED', exitCode: 2 })
  })

  it('calibration data that does not exist (exit 6) or holds no sample (exit 2)', async () => {
    const missing = await failure({ model: modelOf('tiny-bert'), precision: 'int8', calibData: join(dir, 'nope.txt'), out: join(dir, 'y.onnx') })
    expect(missing.exitCode).toBe(6)
    const empty = join(dir, 'empty.txt')
    await writeFile(empty, '\n\n   \n')
    const none = await failure({ model: modelOf('tiny-bert'), precision: 'int8', calibData: empty, out: join(dir, 'y.onnx') })
    expect(none).toMatchObject({ code: 'CALIB_DATA_EMPTY', exitCode: 2 })
    expect(existsSync(join(dir, 'y.onnx'))).toBe(false)
  })

  it('text data for a model with no tokenizer.json beside it, with --tokenizer in the hint; --tokenizer then works', async () => {
    const lonely = join(dir, 'lonely')
    await mkdir(lonely)
    await copyFile(modelOf('tiny-bert'), join(lonely, 'model.onnx'))
    const err = await failure({ model: join(lonely, 'model.onnx'), precision: 'int8', calibData: calib['tiny-bert'] })
    expect(err.hint).toMatch(/--tokenizer/)
    expect(await readdir(lonely)).toEqual(['model.onnx'])
    const r = await quantizeModel({ model: join(lonely, 'model.onnx'), precision: 'int8', calibData: calib['tiny-bert'], tokenizer: join('fixtures', 'hf-tiny', 'tiny-bert'), seqLen: 16 })
    expect(r.out.path).toBe(join(lonely, 'model.int8.onnx'))
  })

  it('a model with no MatMul, Gemm or Conv carrying a weight', async () => {
    const g = new GraphBuilder('plain')
    g.input('x', DataType.FLOAT, ['batch', 4])
    g.node('Relu', ['x'], ['y'])
    g.output('y', DataType.FLOAT, ['batch', 4])
    const path = join(dir, 'relu.onnx')
    await writeModel(path, g.toModel())
    const err = await failure({ model: path, precision: 'int8', calibData: calib['tiny-bert'] })
    expect(err).toMatchObject({ code: 'NOTHING_TO_QUANTIZE', exitCode: 2 })
  })

  it('an already quantized model, and an fp16 model given to fp16', async () => {
    const q = join(dir, 'tiny-bert.int8.onnx')
    if (!existsSync(q)) await quantizeModel({ model: modelOf('tiny-bert'), precision: 'int8', calibData: calib['tiny-bert'], out: q, seqLen: 16 })
    expect(await failure({ model: q, precision: 'int8', calibData: calib['tiny-bert'], out: join(dir, 'twice.onnx') })).toMatchObject({ code: 'ALREADY_QUANTIZED', exitCode: 2 })
    const h = join(dir, 'half.onnx')
    await quantizeModel({ model: modelOf('tiny-bert'), precision: 'fp16', out: h })
    expect(await failure({ model: h, precision: 'fp16', out: join(dir, 'twice.onnx') })).toMatchObject({ code: 'ALREADY_FP16', exitCode: 2 })
    expect(existsSync(join(dir, 'twice.onnx'))).toBe(false)
  })

  it('an existing --out without --force (exit 5), leaving it as it was; --force replaces it', async () => {
    const out = join(dir, 'taken.onnx')
    await writeFile(out, 'mine')
    expect(await failure({ model: modelOf('tiny-bert'), precision: 'fp16', out })).toMatchObject({ code: 'OUTPUT_EXISTS', exitCode: 5 })
    expect(await readFile(out, 'utf8')).toBe('mine')
    await quantizeModel({ model: modelOf('tiny-bert'), precision: 'fp16', out, force: true })
    expect((await readModel(out)).graph).toBeDefined()
  })

  it('flags of the other precision, and out-of-range values (exit 2)', async () => {
    expect(await failure({ model: modelOf('tiny-bert'), precision: 'fp16', method: 'minmax' })).toMatchObject({ code: 'INVALID_OPTION', exitCode: 2 })
    expect(await failure({ model: modelOf('tiny-bert'), precision: 'int8', calibData: calib['tiny-bert'], keepFp32: ['Resize'] })).toMatchObject({ code: 'INVALID_OPTION', exitCode: 2 })
    expect(await failure({ model: modelOf('tiny-bert'), precision: 'int8', calibData: calib['tiny-bert'], percentile: 101 })).toMatchObject({ code: 'INVALID_OPTION' })
    expect(await failure({ model: modelOf('tiny-bert'), precision: 'fp16', fp16MaxAbs: 70000 })).toMatchObject({ code: 'INVALID_OPTION' })
    expect(await failure({ model: modelOf('tiny-bert'), precision: 'int8', calibData: calib['tiny-bert'], batchSize: 0 })).toMatchObject({ code: 'INVALID_OPTION' })
    expect(await failure({ model: modelOf('tiny-bert'), precision: 'fp16', out: modelOf('tiny-bert') })).toMatchObject({ code: 'INVALID_OPTION' })
  })

  it('names the default output next to the model', () => {
    expect(defaultOutput('/m/model.onnx', 'int8')).toBe('/m/model.int8.onnx')
    expect(cachePathFor('/m/model.int8.onnx')).toBe('/m/model.int8.calib.json')
  })
})
