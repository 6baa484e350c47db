/**
 * buildEngine making the model of the precision first: int8 from an fp32 model calibrates a Q/DQ model
 * (every TensorRT), fp16 on TensorRT 11 converts to an fp16 model, and trtexec builds from that file in
 * --out; the engine is still validated against the fp32 model.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildEngine, type BuildOptions } from '../../src/builders/build.js'
import type { EngineRecord } from '../../src/builders/engine-record.js'
import { ModelforgeError } from '../../src/lib/errors.js'
import { sha256File } from '../../src/lib/hash.js'
import { DataType, encodeTensor } from '../../src/onnx/proto.js'
import { prng } from '../../src/lib/random.js'
import { doubleEnv, doubleRuns, TINY_BERT } from '../helpers/build-helpers.js'
import { writeCalibText } from '../helpers/calib-text.js'
import { writeMlpModels } from '../helpers/qdq-model.js'

let dir: string
let text: string
let mlp: string
let mlpData: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mf-build-transform-'))
  text = join(dir, 'calib.txt')
  writeCalibText(text, TINY_BERT, 40, 3)
  mlp = (await writeMlpModels(dir)).fp32
  // The MLP takes floats: its calibration data is a directory of ONNX test-data inputs, one batch per set.
  mlpData = join(dir, 'mlp-data')
  const rand = prng(5)
  for (let s = 0; s < 6; s++) {
    await mkdir(join(mlpData, `test_data_set_${s}`), { recursive: true })
    const x = Float32Array.from({ length: 4 * 16 }, () => rand() * 2 - 1)
    await writeFile(join(mlpData, `test_data_set_${s}`, 'input_0.pb'), encodeTensor({ name: 'x', dims: [4, 16], dataType: DataType.FLOAT, rawData: new Uint8Array(x.buffer) }))
  }
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

let n = 0
async function place(version?: string): Promise<{ home: string; out: string; env: Record<string, string | undefined> }> {
  const home = join(dir, `case-${n++}`)
  await mkdir(home)
  return { home, out: join(home, 'out'), env: doubleEnv(home, version ? { TRTEXEC_DOUBLE_VERSION: version } : {}) }
}

async function failure(o: BuildOptions): Promise<ModelforgeError> {
  const err = await buildEngine(o).then(() => undefined, (e: unknown) => e)
  if (!(err instanceof ModelforgeError)) throw new Error(`expected our error, got ${String(err)}`)
  return err
}

describe('build makes the model of its precision', () => {
  it('fp16 on TensorRT 11: converts to model.fp16.onnx in --out and builds it strongly typed, validated against fp32', async () => {
    const { out, env, home } = await place('11.1.0')
    const r = await buildEngine({ onnx: TINY_BERT, out, env, precision: 'fp16', skipBenchmark: true })
    expect(r.transform).toMatchObject({ file: 'model.fp16.onnx', precision: 'fp16' })
    expect(r.typedModel).toBe('fp16')
    expect(r.argv.build).toContain('--onnx=model.fp16.onnx')
    expect(r.argv.build).not.toContain('--fp16')
    expect(r.validation).toMatchObject({ passed: true, precision: 'fp16' })
    expect(readdirSync(out)).toContain('model.fp16.onnx')
    const record = JSON.parse(readFileSync(join(out, 'engine.json'), 'utf8')) as EngineRecord
    expect(record.onnx.sha256).toBe((await sha256File(TINY_BERT)).sha256)
    expect(record.builtFrom).toEqual({ file: 'model.fp16.onnx', precision: 'fp16', bytes: r.transform!.bytes, sha256: (await sha256File(join(out, 'model.fp16.onnx'))).sha256 })
    // trtexec ran in the staging directory, on the relative path, so the argv holds in --out.
    expect(doubleRuns(home).some((x) => x.argv.includes('--onnx=model.fp16.onnx'))).toBe(true)
  })

  it('int8 on TensorRT 11: calibrates model.int8.onnx on --calib-data and builds it, its cache beside it', async () => {
    const { out, env } = await place('11.1.0')
    const r = await buildEngine({ onnx: TINY_BERT, out, env, precision: 'int8', skipBenchmark: true, transform: { calibData: text, seqLen: 16, method: 'minmax' } })
    expect(r.transform).toMatchObject({ file: 'model.int8.onnx', precision: 'int8', quantize: { calibration: { method: 'minmax', from: 'data' } } })
    expect(r.typedModel).toBe('qdq')
    expect(r.argv.build).toContain('--onnx=model.int8.onnx')
    expect(r.validation).toMatchObject({ passed: true, precision: 'int8' })
    expect(readdirSync(out)).toEqual(expect.arrayContaining(['model.int8.onnx', 'model.int8.calib.json', 'engine.plan']))
  })

  it('int8 on TensorRT 10.16 builds the calibrated Q/DQ model --stronglyTyped, and on 8.6 with --int8 --fp16', async () => {
    for (const [version, flags] of [['10.16.1', ['--stronglyTyped']], ['8.6.1', ['--int8', '--fp16']]] as const) {
      const { out, env } = await place(version)
      const r = await buildEngine({ onnx: mlp, out, env, precision: 'int8', skipBenchmark: true, transform: { calibData: mlpData, calibBatches: 4 } })
      expect(r.argv.build).toEqual(expect.arrayContaining(['--onnx=model.int8.onnx', ...flags]))
      expect(r.transform?.quantize?.accuracy.heldOut).toMatchObject({ from: 'data', batches: 2 })
      expect(r.validation?.passed).toBe(true)
    }
  })

  it('fp16 before TensorRT 11 still builds the fp32 model with --fp16 (no transform)', async () => {
    const { out, env } = await place()
    const r = await buildEngine({ onnx: TINY_BERT, out, env, precision: 'fp16', skipBenchmark: true })
    expect(r.transform).toBeUndefined()
    expect(r.argv.build).toContain('--fp16')
  })

  it('int8 from an fp32 model without calibration data is exit 2 before any build run', async () => {
    const { out, env, home } = await place('11.1.0')
    expect(await failure({ onnx: TINY_BERT, out, env, precision: 'int8' })).toMatchObject({ code: 'CALIB_DATA_REQUIRED', exitCode: 2 })
    expect(doubleRuns(home).filter((x) => x.argv.some((a) => a.startsWith('--onnx=')))).toHaveLength(0)
    expect(existsSync(out)).toBe(false)
  })

  it('refuses transform flags a build would not use (exit 2)', async () => {
    const { out, env } = await place()
    expect(await failure({ onnx: TINY_BERT, out, env, precision: 'fp32', transform: { calibData: text } })).toMatchObject({ code: 'INVALID_OPTION', exitCode: 2 })
    expect(await failure({ onnx: TINY_BERT, out, env, precision: 'fp16', transform: { keepFp32: ['Resize'] } })).toMatchObject({ code: 'INVALID_OPTION', exitCode: 2 })
  })

  it('a failed calibration leaves --out as it was', async () => {
    const { out, env } = await place('11.1.0')
    const empty = join(dir, 'empty.txt')
    await writeFile(empty, '\n')
    const err = await failure({ onnx: TINY_BERT, out, env, precision: 'int8', transform: { calibData: empty } })
    expect(err.code).toBe('CALIB_DATA_EMPTY')
    expect(existsSync(out)).toBe(false)
    expect(readdirSync(join(out, '..')).filter((x) => x.includes('.modelforge-'))).toEqual([])
  })

  it('a dry run names the model it would make and writes nothing', async () => {
    const { out, env } = await place('11.1.0')
    const r = await buildEngine({ onnx: TINY_BERT, out, env, precision: 'int8', dryRun: true, transform: { calibData: text } })
    expect(r.commands.build).toContain('--onnx=model.int8.onnx')
    expect(r.warnings.join('\n')).toMatch(/model\.int8\.onnx/)
    expect(existsSync(out)).toBe(false)
  })
})
