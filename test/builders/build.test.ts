/**
 * buildEngine against the trtexec double: engines built, benchmarked and validated for fp32, fp16 and int8
 * (a Q/DQ model), every file written, the timing cache reused; failures classified with nothing left in
 * --out; a dry run that writes nothing; abort and timeout stopping trtexec.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildEngine, parseDimFlags, typedModelOf, type BuildOptions, type BuildResult } from '../../src/builders/build.js'
import type { EngineRecord } from '../../src/builders/engine-record.js'
import { ModelforgeError } from '../../src/lib/errors.js'
import { sha256File } from '../../src/lib/hash.js'
import { inspectModel } from '../../src/onnx/inspect.js'
import { alive, doubleEnv, doubleRuns, leftovers, TINY_BERT, writeCustomOpModel } from '../helpers/build-helpers.js'
import { writeMlpModels } from '../helpers/qdq-model.js'

let dir: string
let models: { fp32: string; qdq: string }
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mf-build-'))
  models = await writeMlpModels(dir)
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

let n = 0
/** A fresh directory for one build: its --out, its modelforge cache, its record of the double's runs. */
async function place(): Promise<{ home: string; out: string; env: Record<string, string | undefined> }> {
  const home = join(dir, `case-${n++}`)
  await mkdir(home)
  return { home, out: join(home, 'out'), env: doubleEnv(home) }
}

async function failure(o: BuildOptions): Promise<ModelforgeError> {
  const err = await buildEngine(o).then(() => undefined, (e: unknown) => e)
  if (!(err instanceof ModelforgeError)) throw new Error(`expected our error, got ${String(err)}`)
  return err
}

function files(out: string): string[] {
  const walk = (d: string, rel = ''): string[] => readdirSync(d).flatMap((n) => {
    const p = join(d, n)
    return statSync(p).isDirectory() ? walk(p, `${rel}${n}/`) : [`${rel}${n}`]
  })
  return walk(out).sort()
}

function argvValue(argv: string[], flag: string): string | undefined {
  return argv.find((a) => a.startsWith(`${flag}=`))?.slice(flag.length + 1)
}

describe('buildEngine with the trtexec double', () => {
  it('builds, benchmarks and validates an fp32 engine, and writes every file', async () => {
    const { out, env, home } = await place()
    const r = await buildEngine({ onnx: TINY_BERT, out, env })
    expect(files(out)).toEqual([
      'build.log', 'engine.json', 'engine.plan', 'layers.json', 'perf.json', 'profile.json', 'times.json',
      'validation/input-0-input_ids.bin', 'validation/input-1-attention_mask.bin', 'validation/input-2-token_type_ids.bin',
    ])
    expect(leftovers(out)).toEqual([])
    expect(r.validation).toMatchObject({ passed: true, precision: 'fp32', referenceKind: 'onnx' })
    expect(r.validation!.outputs.map((o) => o.name)).toEqual(['last_hidden_state', 'pooler_output'])
    expect(r.perf?.throughputQps).toBeGreaterThan(0)
    expect(r.timings).toMatchObject({ probeMs: expect.any(Number), buildMs: expect.any(Number), benchmarkMs: expect.any(Number), validationMs: expect.any(Number), trtexecBuildS: expect.any(Number) })
    expect(r.timings.totalMs).toBeGreaterThanOrEqual(r.timings.buildMs! + r.timings.validationMs!)
    expect(r.tool).toMatchObject({ source: 'TRTEXEC', version: { text: '10.16.1', build: 11 } })
    expect(r.gpu.device).toMatchObject({ name: 'NVIDIA A100-SXM4-80GB', computeCapability: '8.0', memoryMiB: 81037, source: 'trtexec' })
    // The sequence is capped at config.json's max_position_embeddings (64).
    expect(r.profile.input_ids).toEqual({ min: [1, 1], opt: [8, 64], max: [32, 64] })

    const record = JSON.parse(readFileSync(join(out, 'engine.json'), 'utf8')) as EngineRecord
    expect(record).toMatchObject({
      schema: 'modelforge/engine@1',
      precision: 'fp32',
      tensorrt: { version: '10.16.1', build: 11, encoded: 101601 },
      gpu: { name: 'NVIDIA A100-SXM4-80GB', computeCapability: '8.0' },
      onnx: { path: TINY_BERT, sha256: (await sha256File(TINY_BERT)).sha256 },
      engine: { file: 'engine.plan', sha256: (await sha256File(join(out, 'engine.plan'))).sha256 },
      profile: r.profile,
      trtexec: { argv: r.argv.build, validationArgv: r.argv.validation },
      validation: { passed: true, precision: 'fp32' },
      tools: { modelforge: '0.1.0', onnxruntime: expect.any(String), trtexec: '10.16.1' },
    })
    expect(JSON.parse(readFileSync(join(out, 'perf.json'), 'utf8'))).toMatchObject({ throughputQps: r.perf!.throughputQps, latency: { median: expect.any(Number) } })
    expect(readFileSync(join(out, 'build.log'), 'utf8')).toMatch(/^&&&& RUNNING TensorRT\.trtexec/)
    // The build run and the validation run, each once (the probe's --help is a third).
    expect(doubleRuns(home).map((x) => x.argv.slice(1).find((a) => a.startsWith('--onnx') || a.startsWith('--loadEngine') || a === '--help'))).toEqual([
      '--help', `--onnx=${TINY_BERT}`, '--loadEngine=engine.plan',
    ])
  })

  it('builds an fp16 engine, judged by fp16\'s tolerances', async () => {
    const { out, env } = await place()
    const r = await buildEngine({ onnx: TINY_BERT, out, env, precision: 'fp16' })
    expect(r.argv.build).toContain('--fp16')
    expect(r.validation).toMatchObject({ passed: true, precision: 'fp16' })
    expect(JSON.parse(readFileSync(join(out, 'engine.json'), 'utf8'))).toMatchObject({ precision: 'fp16', validation: { precision: 'fp16' } })
  })

  it('builds an int8 engine from a Q/DQ model, strongly typed on TensorRT 10.16, judged by int8\'s rule', async () => {
    expect(typedModelOf(await inspectModel(models.qdq))).toBe('qdq')
    const { out, env } = await place()
    const r = await buildEngine({ onnx: models.qdq, out, env, precision: 'int8' })
    expect(r.typedModel).toBe('qdq')
    expect(r.argv.build).toContain('--stronglyTyped')
    expect(r.validation).toMatchObject({ passed: true, precision: 'int8' })
    expect(files(out)).toContain('engine.plan')
  })

  it('builds an int8 engine with --int8 --fp16 on TensorRT 8.6, int64-free inputs written as they are', async () => {
    const { home, out } = await place()
    const r = await buildEngine({ onnx: models.qdq, out, env: doubleEnv(home, { TRTEXEC_DOUBLE_VERSION: '8.6.1' }), precision: 'int8' })
    expect(r.tool.version.text).toBe('8.6.1')
    expect(r.argv.build).toEqual(expect.arrayContaining(['--int8', '--fp16']))
    expect(r.validation?.passed).toBe(true)
  })

  it('validates a TensorRT 8.6 engine of a model with int64 inputs, fed as int32 as its bindings are', async () => {
    const { home, out } = await place()
    const r = await buildEngine({ onnx: TINY_BERT, out, env: doubleEnv(home, { TRTEXEC_DOUBLE_VERSION: '8.6.1' }), precision: 'fp16', skipBenchmark: true })
    expect(r.validation?.passed).toBe(true)
    expect(statSync(join(out, 'validation', 'input-0-input_ids.bin')).size).toBe(8 * 64 * 4)
  })

  it('builds fp32 on TensorRT 11 and refuses what 11 cannot build before any build run (exit 2)', async () => {
    const { home, out } = await place()
    const env = doubleEnv(home, { TRTEXEC_DOUBLE_VERSION: '11.1.0' })
    const r = await buildEngine({ onnx: TINY_BERT, out, env })
    expect(r).toMatchObject({ tool: { version: { text: '11.1.0' } }, validation: { passed: true } })
    expect(r.argv.build).not.toContain('--separateProfileRun')
    expect(existsSync(join(out, 'perf.json'))).toBe(true)
    // 11 has no --best or --bf16; fp16 and int8 from this model make their model first (build-transform.test.ts).
    expect(await failure({ onnx: TINY_BERT, out: join(home, 'best'), env, precision: 'best' })).toMatchObject({ code: 'PRECISION_UNSUPPORTED', exitCode: 2 })
    expect(await failure({ onnx: models.fp32, out: join(home, 'int8'), env: doubleEnv(home), precision: 'int8' })).toMatchObject({ code: 'CALIB_DATA_REQUIRED', exitCode: 2 })
    expect(doubleRuns(home).filter((x) => x.argv.some((a) => a.startsWith('--onnx=')))).toHaveLength(1)
  })

  it('reuses the timing cache: the second build names the keyed file, and trtexec loads it', async () => {
    const { home } = await place()
    const env = doubleEnv(home)
    // No nvidia-smi here: the first build learns the GPU from its log and files its cache under it.
    const first = await buildEngine({ onnx: TINY_BERT, out: join(home, 'a'), env, skipValidation: true })
    expect(first.gpu.knownBefore).toBe('unknown')
    expect(argvValue(first.argv.build, '--timingCacheFile')).toBe('timing.cache')
    const keyed = join(home, 'cache', 'timing-cache', '10.16.1', 'nvidia-a100-sxm4-80gb-sm80', 'timing.cache')
    expect(first.timingCache).toEqual({ file: keyed, mode: 'staged', action: 'created', loaded: false })
    expect(existsSync(keyed)).toBe(true)
    expect(existsSync(join(home, 'a', 'timing.cache'))).toBe(false)

    const second = await buildEngine({ onnx: TINY_BERT, out: join(home, 'b'), env, skipValidation: true })
    expect(second.gpu.knownBefore).toBe('remembered')
    expect(argvValue(second.argv.build, '--timingCacheFile')).toBe(keyed)
    expect(second.timingCache).toMatchObject({ file: keyed, mode: 'shared', action: 'shared', loaded: true })
    expect(readFileSync(join(home, 'b', 'build.log'), 'utf8')).toMatch(new RegExp(`Loaded \\d+ bytes of timing cache from ${keyed.replaceAll('.', '\\.')}`))
    const third = await buildEngine({ onnx: TINY_BERT, out: join(home, 'c'), env, skipValidation: true, precision: 'fp16' })
    expect(argvValue(third.argv.build, '--timingCacheFile')).toBe(keyed)
  })

  it('--skip-benchmark writes no times, profile or perf, and says so', async () => {
    const { out, env } = await place()
    const r = await buildEngine({ onnx: TINY_BERT, out, env, skipBenchmark: true, skipValidation: true })
    expect(files(out)).toEqual(['build.log', 'engine.json', 'engine.plan', 'layers.json'])
    expect(r.skipped).toEqual([
      { files: ['times.json', 'profile.json', 'perf.json'], reason: expect.stringMatching(/--skip-benchmark/) },
      { files: ['validation/'], reason: expect.stringMatching(/--skip-validation/) },
    ])
    expect(r.perf).toBeUndefined()
    expect(r.timings.benchmarkMs).toBeUndefined()
  })

  it('a dry run returns the exact command lines and writes nothing: no --out, no cache', async () => {
    const { home, out, env } = await place()
    const r = await buildEngine({ onnx: TINY_BERT, out, env, precision: 'fp16', dryRun: true })
    expect(existsSync(out)).toBe(false)
    expect(existsSync(join(home, 'cache'))).toBe(false)
    expect(r.files).toEqual([])
    expect(r.commands.build).toBe(`mkdir -p ${out} && cd ${out} && ${env.TRTEXEC} ${r.argv.build.join(' ')}`)
    expect(r.commands.validation).toBe(`cd ${out} && ${env.TRTEXEC} ${r.argv.validation!.join(' ')}`)
    // Only the version probe ran.
    expect(doubleRuns(home).map((x) => x.argv.slice(1))).toEqual([['--help']])
  })

  it('refuses a --out holding files (exit 5) before running anything, and --force replaces it at the end', async () => {
    const { home, out, env } = await place()
    await mkdir(out)
    await writeFile(join(out, 'old.txt'), 'old')
    expect(await failure({ onnx: TINY_BERT, out, env })).toMatchObject({ code: 'OUTPUT_EXISTS', exitCode: 5 })
    expect(doubleRuns(home)).toEqual([])
    await buildEngine({ onnx: TINY_BERT, out, env, force: true, skipValidation: true, skipBenchmark: true })
    expect(files(out)).not.toContain('old.txt')
    expect(leftovers(out)).toEqual([])
  })

  it('an engine whose outputs are off fails validation (exit 4) with the per-output table, and nothing is written', async () => {
    const { home, out } = await place()
    const err = await failure({ onnx: TINY_BERT, out, env: doubleEnv(home, { TRTEXEC_DOUBLE_FAULT: 'corrupt-outputs' }), precision: 'fp16' })
    expect(err).toMatchObject({ code: 'VALIDATION_FAILED', exitCode: 4 })
    expect(err.message).toMatch(/^engine validation failed for 2 of 2 outputs: last_hidden_state: /)
    const result = err.details!.result as BuildResult['validation']
    expect(result!.outputs.map((o) => [o.name, o.passed])).toEqual([['last_hidden_state', false], ['pooler_output', false]])
    expect(err.hint).not.toMatch(/--precision/)
    expect(existsSync(out)).toBe(false)
    expect(leftovers(out)).toEqual([])
  })

  it.each([
    ['oom', 'out-of-memory'],
    ['cuda', 'cuda'],
    ['no-gpu', 'no-gpu'],
    ['no-implementation', 'no-implementation'],
    ['crash', 'crash'],
  ])('TRTEXEC_DOUBLE_FAULT=%s: exit 3 with the cause (%s), the [E] lines and a hint; nothing in --out', async (fault, klass) => {
    const { home, out } = await place()
    const err = await failure({ onnx: TINY_BERT, out, env: doubleEnv(home, { TRTEXEC_DOUBLE_FAULT: fault }) })
    expect(err).toMatchObject({ code: 'TRTEXEC_FAILED', exitCode: 3 })
    expect(err.details).toMatchObject({ kind: 'build', failure: { class: klass } })
    expect(err.message).toMatch(/^trtexec could not build the engine: /)
    expect(err.hint.length).toBeGreaterThan(20)
    // The whole log survives the build directory, in the file the hint names.
    const log = err.details!.log as string
    expect(err.hint).toContain(log)
    expect(readFileSync(log, 'utf8')).toMatch(/&&&& RUNNING/)
    await rm(log)
    expect(existsSync(out)).toBe(false)
    expect(leftovers(out)).toEqual([])
  })

  it('an operator TensorRT lacks (a custom domain) is exit 3 naming the op', async () => {
    const { home, out, env } = await place()
    const model = await writeCustomOpModel(join(home, 'custom.onnx'))
    const err = await failure({ onnx: model, out, env })
    expect(err).toMatchObject({ code: 'TRTEXEC_FAILED', exitCode: 3, details: { failure: { class: 'unsupported-op', op: 'FancyActivation' } } })
    expect(err.message).toContain('FancyActivation')
    await rm(err.details!.log as string, { force: true })
    expect(existsSync(out)).toBe(false)
    expect(leftovers(out)).toEqual([])
  })

  it('no trtexec anywhere is exit 3 with how to get it', async () => {
    const { home, out, env } = await place()
    const err = await failure({ onnx: TINY_BERT, out, env: { ...env, TRTEXEC: undefined, PATH: home } })
    expect(err).toMatchObject({ code: 'TRTEXEC_NOT_FOUND', exitCode: 3, hint: expect.stringMatching(/TensorRT/) })
    expect(existsSync(out)).toBe(false)
  })

  it('an abort stops trtexec (no orphan) and removes the staging directory: exit 130', async () => {
    const { home, out } = await place()
    const controller = new AbortController()
    const env = doubleEnv(home, { TRTEXEC_DOUBLE_BUILD_SECONDS: '30' })
    const started = Date.now()
    const building = buildEngine({
      onnx: TINY_BERT, out, env, signal: controller.signal,
      progress: (e) => { if (e.type === 'message' && e.step === 'build' && e.text === 'building the engine') controller.abort() },
    })
    const err = await building.then(() => undefined, (e: unknown) => e as ModelforgeError)
    expect(err).toMatchObject({ code: 'INTERRUPTED', exitCode: 130 })
    expect(Date.now() - started).toBeLessThan(15_000)
    const build = doubleRuns(home).find((x) => x.argv.some((a) => a.startsWith('--onnx=')))
    expect(build?.signal).toBe('SIGTERM')
    expect(alive(build!.pid)).toBe(false)
    expect(existsSync(out)).toBe(false)
    expect(leftovers(out)).toEqual([])
  })

  it('--timeout stops trtexec and fails with exit 3 naming what it was doing', async () => {
    const { home, out } = await place()
    const env = doubleEnv(home, { TRTEXEC_DOUBLE_BUILD_SECONDS: '30' })
    const err = await failure({ onnx: TINY_BERT, out, env, timeoutMs: 2000 })
    expect(err).toMatchObject({ code: 'TRTEXEC_TIMEOUT', exitCode: 3, details: { kind: 'build', timeoutMs: 2000, phase: 'building the engine' } })
    expect(err.message).toMatch(/--timeout 2 s while building the engine/)
    const build = doubleRuns(home).find((x) => x.argv.some((a) => a.startsWith('--onnx=')))
    expect(alive(build!.pid)).toBe(false)
    expect(existsSync(out)).toBe(false)
    expect(leftovers(out)).toEqual([])
  })

  it('refuses bad options before trtexec builds: a range (exit 2), a tolerance for an output the model lacks', async () => {
    const { home, out, env } = await place()
    expect(await failure({ onnx: TINY_BERT, out, env, batch: '8:1:4' })).toMatchObject({ code: 'INVALID_SHAPE_RANGE', exitCode: 2 })
    expect(await failure({ onnx: TINY_BERT, out, env, atol: ['logits:1e-3'] })).toMatchObject({ code: 'OUTPUT_UNKNOWN', exitCode: 2 })
    expect(await failure({ onnx: TINY_BERT, out, env, timeoutMs: 0 })).toMatchObject({ code: 'INVALID_DURATION', exitCode: 2 })
    expect(await failure({ onnx: join(home, 'missing.onnx'), out, env })).toMatchObject({ code: 'ONNX_NOT_FOUND', exitCode: 6 })
    expect(doubleRuns(home).filter((x) => !x.argv.includes('--help'))).toEqual([])
    expect(existsSync(out)).toBe(false)
  })

  it('reads --dim values as name=range', () => {
    expect(parseDimFlags(['height=224:224:512', 'w:0=1:2:3'])).toEqual({ height: '224:224:512', 'w:0': '1:2:3' })
    expect(() => parseDimFlags(['height'])).toThrow(expect.objectContaining({ code: 'INVALID_SHAPE_RANGE' }))
  })
})
