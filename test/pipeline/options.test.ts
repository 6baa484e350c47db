/** build-engine refuses bad requests before it reads or writes anything: each refusal, its code and exit code. */
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ModelforgeError } from '../../src/lib/errors.js'
import { runBuildEngine, type BuildEngineOptions } from '../../src/pipeline/index.js'
import { checkOptions } from '../../src/pipeline/options.js'
import { DOUBLE } from '../helpers/build-helpers.js'
import { repoRoot } from '../helpers/store-helpers.js'

const TINY = join(repoRoot, 'fixtures', 'hf-tiny', 'tiny-bert')
let dir: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mf-pipeline-options-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

async function refusal(o: Partial<BuildEngineOptions>): Promise<ModelforgeError> {
  const store = join(dir, 'store')
  const err = await runBuildEngine({ agent: 'a', modelId: TINY, store, env: { TRTEXEC: DOUBLE, MODELFORGE_CACHE: join(dir, 'cache'), PATH: '/usr/bin:/bin' }, ...o }).then(() => undefined, (e: unknown) => e)
  expect(err).toBeInstanceOf(ModelforgeError)
  expect(existsSync(store), 'nothing is written').toBe(false)
  return err as ModelforgeError
}

describe('build-engine options', () => {
  it('defaults: the trt target in fp16, the onnx target in fp32, published to current', () => {
    expect(checkOptions({ agent: 'a', modelId: 'm' })).toEqual({ target: 'trt', precision: 'fp16', channel: 'current', publish: true })
    expect(checkOptions({ agent: 'a', modelId: 'm', target: 'onnx' })).toMatchObject({ target: 'onnx', precision: 'fp32' })
    expect(checkOptions({ agent: 'a', modelId: 'm', channel: 'staging', publish: false })).toMatchObject({ channel: 'staging', publish: false })
  })

  it.each([
    [{ agent: 'bad/name' }, 'INVALID_NAME', 2],
    [{ outputVersion: 'v1.tmp' }, 'INVALID_NAME', 2],
    [{ channel: '..' }, 'INVALID_NAME', 2],
    [{ target: 'tflite' as never }, 'INVALID_OPTION', 2],
    [{ target: 'onnx' as const, precision: 'bf16' as const }, 'INVALID_PRECISION', 2],
    [{ precision: 'fp8' as never }, 'INVALID_PRECISION', 2],
    [{ exporter: 'tf2onnx' as never }, 'INVALID_EXPORTER', 2],
    [{ precision: 'int8' as const }, 'CALIB_DATA_REQUIRED', 2],
    [{ target: 'onnx' as const, batch: '1:8:32', workspaceMiB: 4096 }, 'INVALID_OPTION', 2],
  ])('refuses %o with %s (exit %d)', async (o, code, exit) => {
    const err = await refusal(o)
    expect(err.code).toBe(code)
    expect(err.exitCode).toBe(exit)
    expect(err.hint).not.toBe('')
  })

  it('names the TensorRT flags the onnx target does not use', async () => {
    const err = await refusal({ target: 'onnx', batch: '1:8:32', workspaceMiB: 4096 })
    expect(err.message).toBe('--workspace, --batch: TensorRT build options, not used by --target onnx')
  })

  it('refuses calibration flags a build would ignore, after learning the TensorRT version', async () => {
    const fp16 = await refusal({ precision: 'fp16', transform: { calibData: join(TINY, 'vocab.txt') } })
    expect(fp16).toMatchObject({ code: 'INVALID_OPTION', exitCode: 2 })
    expect(fp16.message).toMatch(/^build-engine failed at key .*--calib-data: not used, because TensorRT 10\.16\.1 builds fp16 from the fp32 model itself/)
    const fp32 = await refusal({ target: 'onnx', transform: { keepFp32: ['Softmax'] } })
    expect(fp32.message).toMatch(/--keep-fp32: not used, because a fp32 onnx build does not transform the model/)
  })

  it('a calibration file that does not exist is exit 6, named', async () => {
    const err = await refusal({ precision: 'int8', transform: { calibData: join(dir, 'missing.txt') } })
    expect(err.exitCode).toBe(6)
    expect(err.message).toContain(join(dir, 'missing.txt'))
    expect(err.details?.step).toBe('key')
  })

  it('a model that is neither a directory nor a valid repo id is refused at the source step', async () => {
    const err = await refusal({ modelId: 'not a repo' })
    expect(err.exitCode).toBe(2)
    expect(err.message).toMatch(/^build-engine failed at source/)
  })

  it('a dry run never downloads: a model missing from the cache is exit 6 with a hint to fetch it', async () => {
    const err = await refusal({ modelId: 'org/absent', dryRun: true, cacheDir: join(dir, 'hf') })
    expect(err.exitCode).toBe(6)
    expect(err.message).toMatch(/a dry run never downloads$/)
    expect(err.hint).toBe('Fetch it first (`modelforge fetch org/absent`), then plan the build again.')
  })
})
