/**
 * The trtexec double against trtexec's contract (../shared/research/trt-anchors.md section 1) and real
 * output (fixtures/trtexec-double, fixtures/trtexec-help): each test runs the double as a child process,
 * as the code under test will.
 */
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { floatToHalf, halfToFloat } from '../../src/onnx/float16.js'
import { GraphBuilder } from '../../src/onnx/graph-builder.js'
import { DataType, writeModel } from '../../src/onnx/proto.js'
import { closeModel, loadModel, runModel } from '../../src/validate/runtime.js'
import type { TensorMap } from '../../src/validate/tensors.js'
import { runDouble, startDouble, TRTEXEC_DOUBLE, type DoubleResult } from './trtexec-double/index.js'

const root = fileURLToPath(new URL('../../', import.meta.url))
const fixture = (p: string) => join(root, 'fixtures', p)
const BERT = fixture('hf-tiny/tiny-bert/model.onnx')
const CONV = fixture('polygraphy/conv.onnx')
const QDQ = fixture('polygraphy/qdq_conv.onnx')
const BERT_INPUTS = ['input_ids', 'attention_mask', 'token_type_ids']
const shapeSpec = (dims: string) => BERT_INPUTS.map((n) => `${n}:${dims}`).join(',')
const PROFILE = [`--minShapes=${shapeSpec('1x1')}`, `--optShapes=${shapeSpec('2x8')}`, `--maxShapes=${shapeSpec('4x16')}`]

const STAMP = String.raw`\[\d\d/\d\d/\d{4}-\d\d:\d\d:\d\d\] `
const lines = (text: string) => text.split('\n').filter((l) => l !== '')
/** The message of each [I]/[W]/[E] line, without the timestamp ("[I]" alone, as the cookbook logs have it, is ""). */
const messages = (text: string, sev = '[IWE]') => lines(text).flatMap((l) => {
  const m = new RegExp(`^${STAMP}\\[${sev}\\](?: (.*))?$`).exec(l)
  return m ? [m[1] ?? ''] : []
})
const lastLine = (r: DoubleResult) => lines(r.stdout).at(-1) ?? ''

let dir: string
const at = (name: string) => join(dir, name)

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mf-trtexec-double-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

describe('banner and help', () => {
  it('10.16.1 prints RUNNING, the real 10.16.1 help, exit 0 and no PASSED line', async () => {
    const r = await runDouble(['--help'])
    const real = await readFile(fixture('trtexec-help/trtexec-10.16.1-help.txt'), 'utf8')
    const [realBanner, ...realBody] = real.split('\n')
    const [banner, ...body] = r.stdout.split('\n')
    expect(r.code, r.stderr).toBe(0)
    // The real banner: `&&&& RUNNING TensorRT.trtexec [TensorRT v101601] [b11] # trtexec --help`.
    expect(banner).toBe(`${realBanner!.split(' # ')[0]} # ${TRTEXEC_DOUBLE} --help`)
    expect(body.join('\n')).toBe(realBody.join('\n'))
    expect(r.stdout).not.toMatch(/&&&& PASSED/)
    expect(r.stderr).toBe('')
  })

  it('8.x prints the 8.6 help (without the cookbook marks) under an 8.x banner with no build tag', async () => {
    const r = await runDouble(['-h'], { env: { TRTEXEC_DOUBLE_VERSION: '8.6.0' } })
    const real = await readFile(fixture('trtexec-help/trtexec-8.6.0-help.txt'), 'utf8')
    const realBanner = real.split('\n').find((l) => l.startsWith('&&&& RUNNING'))!
    expect(r.code, r.stderr).toBe(0)
    expect(lines(r.stdout)[0]).toBe(`${realBanner.split(' # ')[0]} # ${TRTEXEC_DOUBLE} -h`)
    expect(r.stdout).toContain('\n  --onnx=<file>               ONNX model\n')
    expect(r.stdout).toContain('  --workspace=N                      Set workspace size in MiB.')
    expect(r.stdout).not.toMatch(/■|important options|&&&& PASSED/)
    expect((await runDouble(['--help'], { env: { TRTEXEC_DOUBLE_VERSION: '8.6.1' } })).stdout.split('\n')[0]).toMatch(/^&&&& RUNNING TensorRT\.trtexec \[TensorRT v8601\] # /)
  })

  it('11.x prints the 10.16 help without the weak-typing and calibration options, with the 11.x ones', async () => {
    const r = await runDouble(['--help'], { env: { TRTEXEC_DOUBLE_VERSION: '11.1.0' } })
    expect(r.code, r.stderr).toBe(0)
    expect(lines(r.stdout)[0]).toMatch(/^&&&& RUNNING TensorRT\.trtexec \[TensorRT v110100\] \[b1\] # /)
    for (const gone of ['--fp16', '--bf16', '--int8', '--fp8', '--int4', '--best', '--precisionConstraints', '--layerPrecisions', '--layerOutputTypes', '--calib=']) {
      expect(r.stdout, gone).not.toMatch(new RegExp(`^  ${gone}`, 'm'))
    }
    for (const added of ['--loadRefOutputs', '--refPair', '--atol', '--rtol', '--accuracyThreshold', '--accuracyAlgorithm', '--tuneBuildRoutes', '--setBuildRoute', '--tuningCacheFile', '--continue', '--includeDataTransfers', '--noCudaGraph', '--noSpinWait']) {
      expect(r.stdout, added).toMatch(new RegExp(`^  ${added}`, 'm'))
    }
    expect(r.stdout).toMatch(/^ {2}--stronglyTyped +\[Deprecated\]/m)
    expect(r.stdout).toContain('=== Reporting Options ===')
  })

  it('with no arguments prints the help and PASSED', async () => {
    const r = await runDouble([])
    expect(r.code, r.stderr).toBe(0)
    expect(lastLine(r)).toBe(`&&&& PASSED TensorRT.trtexec [TensorRT v101601] [b11] # ${TRTEXEC_DOUBLE}`)
    expect(r.stdout).toContain('=== Model Options ===')
  })
})

describe('the command line', () => {
  it('a space-separated value leaves an unknown option: help on stdout, [E] on stderr, FAILED, exit 1', async () => {
    const r = await runDouble(['--onnx', 'model.onnx'])
    expect(r.code).toBe(1)
    expect(r.stdout).toContain('=== Build Options ===')
    expect(lastLine(r)).toBe(`&&&& FAILED TensorRT.trtexec [TensorRT v101601] [b11] # ${TRTEXEC_DOUBLE} --onnx model.onnx`)
    // trtexec prints the key, a space and the (empty) value.
    expect(lines(r.stderr)).toEqual([expect.stringMatching(new RegExp(`^${STAMP}\\[E\\] Unknown option: model\\.onnx $`))])
  })

  it('a numeric option without its value fails as std::stoi does', async () => {
    const r = await runDouble([`--onnx=${CONV}`, '--iterations', '5'])
    expect(r.code).toBe(1)
    expect(messages(r.stderr)).toEqual(['stoi'])
    expect(lastLine(r)).toMatch(/^&&&& FAILED /)
  })

  it('options are keyed on the version', async () => {
    const fails = async (version: string, flag: string) => {
      const r = await runDouble([flag, `--onnx=${CONV}`, '--skipInference'], { env: { TRTEXEC_DOUBLE_VERSION: version } })
      expect(r.code, `${flag} on ${version}`).toBe(1)
      expect(messages(r.stderr, 'E'), `${flag} on ${version}`).toEqual([`Unknown option: ${flag.split('=')[0]} ${flag.split('=')[1] ?? ''}`])
    }
    await fails('10.16.1', '--workspace=64')
    await fails('8.6.1', '--stronglyTyped')
    await fails('11.1.0', '--fp16')
    await fails('11.1.0', '--int8')
    const old = await runDouble(['--workspace=64', `--onnx=${CONV}`, '--skipInference'], { env: { TRTEXEC_DOUBLE_VERSION: '8.6.1' } })
    expect(old.code).toBe(0)
    expect(messages(old.stderr, 'W')).toContain('--workspace flag has been deprecated by --memPoolSize flag.')
    expect(messages(old.stdout)).toContain('Memory Pools: workspace: 64 MiB, dlaSRAM: default, dlaLocalDRAM: default, dlaGlobalDRAM: default')
  })

  it('bad values take the invalid_argument path with trtexec\'s messages', async () => {
    const cases: [string, string][] = [
      ['--memPoolSize=workspace:1X', `Error parsing "1X": invalid unit specifier 'X'. Valid base-2 unit suffixes include: B (Bytes), G (Gibibytes), K (Kibibytes), M (Mebibytes). conversion failure: failed to parse --memPoolSize. Please double check your input string.`],
      ['--memPoolSize=scratch:1', 'Unknown memory pool: scratch'],
      ['--profilingVerbosity=loud', 'Unknown profilingVerbosity: loud'],
      ['--hardwareCompatibilityLevel=turing', 'Unknown hardwareCompatibilityLevel: turing. Valid options: none, ampere+, sameComputeCapability.'],
      ['--optShapes=x:1xNx3', 'stoi conversion failure: failed to parse minShapes/optShapes/maxShapes. Please double check your input string.'],
    ]
    for (const [flag, message] of cases) {
      const r = await runDouble([`--onnx=${CONV}`, flag])
      expect(r.code, flag).toBe(1)
      expect(r.stdout, flag).toContain('=== Inference Options ===')
      expect(messages(r.stderr, 'E'), flag).toEqual([message])
    }
    const both = await runDouble([`--loadEngine=${at('x.plan')}`, `--saveEngine=${at('y.plan')}`])
    expect(messages(both.stderr, 'E')).toEqual(['Incompatible load and save engine options selected'])
    expect(messages((await runDouble(['--verbose'])).stderr, 'E')).toEqual(['Model missing or format not recognized'])
  })

  it('reads sizes as each version does: 10.x takes 1024MiB as bytes, 8.x as MiB', async () => {
    const ten = await runDouble([`--onnx=${CONV}`, '--memPoolSize=workspace:1024MiB', '--skipInference'])
    expect(messages(ten.stdout)).toContain('Memory Pools: workspace: 0.000976562 MiB, dlaSRAM: default, dlaLocalDRAM: default, dlaGlobalDRAM: default, tacticSharedMem: default')
    const eight = await runDouble([`--onnx=${CONV}`, '--memPoolSize=workspace:1024MiB', '--skipInference'], { env: { TRTEXEC_DOUBLE_VERSION: '8.6.1' } })
    expect(messages(eight.stdout)).toContain('Memory Pools: workspace: 1024 MiB, dlaSRAM: default, dlaLocalDRAM: default, dlaGlobalDRAM: default')
  })
})

/** The option names of the dump and device block, in order (the text before the first ':'). */
function dumpKeys(log: string): string[] {
  const msgs = messages(log, 'I')
  const from = msgs.indexOf('=== Model Options ===')
  const to = msgs.findIndex((m) => m.startsWith('TensorRT version:'))
  return msgs.slice(from, to).map((m) => m.split(':')[0]!.trim()).filter((k) => !/^Device 0$/.test(k))
}

describe('the log against real logs', () => {
  it('10.16.1: the options dump and device block have the real lines in the real order', async () => {
    const real = await readFile(fixture('trtexec-double/trt10.16.1-result-01.log'), 'utf8')
    const r = await runDouble([`--onnx=${CONV}`, '--skipInference'])
    expect(r.code, r.stderr).toBe(0)
    // The real run had no --skipInference; its dump says so, the rest is line for line the same.
    expect(dumpKeys(r.stdout)).toEqual(dumpKeys(real))
    const mine = messages(r.stdout, 'I')
    expect(mine).toContain('Skip inference: Enabled')
    expect(mine).toContain('Precision: FP32')
    expect(mine[0]).toBe(messages(real, 'I')[0])
    expect(mine).toContain('Selected Device: NVIDIA A100-SXM4-80GB')
    expect(mine).toContain('TensorRT version: 10.16.1')
    // Blank lines keep trtexec's "[I] " (the cookbook stripped trailing spaces).
    expect(r.stdout).toMatch(new RegExp(`^${STAMP}\\[I\\] $`, 'm'))
  })

  it('10.16.1: a build logs the real sequence of lines, Created engine before Engine built', async () => {
    const real = await readFile(fixture('trtexec-double/trt10.16.1-result-01.log'), 'utf8')
    const r = await runDouble([`--onnx=${BERT}`], { env: { TRTEXEC_DOUBLE_GPU: 'NVIDIA H100 PCIe;9.0;81081' } })
    expect(r.code, r.stderr).toBe(0)
    const key = (m: string) => m.replace(/[\d.]+/g, 'N').replace(/input: \S+|input tensor \S+|for \S+ with|output \S+ has/g, 'X')
    const sequence = (log: string) => messages(log).map(key).filter((m) => /^(\[TRT\] (ONNX IR|Engine generation|Loaded engine size)|Start parsing|Finished parsing|Created engine|Engine built|Engine deserialized|Starting inference|Warmup completed|Timing trace|=== |Throughput|Latency|Enqueue Time|H2D|GPU Compute|D2H|Total Host|Total GPU)/.test(m))
    const seen = [...new Set(sequence(r.all))]
    expect(seen).toEqual([...new Set(sequence(real))])
    // The device block of the real H100 log, line for line (trailing spaces aside, which the cookbook stripped).
    const block = (log: string) => {
      const m = messages(log, 'I')
      return m.slice(m.indexOf('=== Device Information ==='), m.findIndex((x) => x.startsWith('TensorRT version'))).filter((x) => !/UUID/.test(x)).map((x) => x.trimEnd())
    }
    expect(block(r.stdout)).toEqual(block(real))
  })

  it('8.6: the options dump of a build with a profile, and of --loadEngine, as in the real 8.6.0 logs', async () => {
    const build = await readFile(fixture('trtexec-double/trt8.6.0-result-02.no-verbose.log'), 'utf8')
    const load = await readFile(fixture('trtexec-double/trt8.6.0-result-03.no-verbose.log'), 'utf8')
    const env = { TRTEXEC_DOUBLE_VERSION: '8.6.0', TRTEXEC_DOUBLE_GPU: 'NVIDIA GeForce RTX 3090;8.6;24256' }
    const plan = at('bert-86.plan')
    const b = await runDouble([`--onnx=${BERT}`, ...PROFILE, '--memPoolSize=workspace:1024MiB', `--saveEngine=${plan}`, '--skipInference', '--fp16'], { env })
    expect(b.code).toBe(0)
    const withoutShapes = (keys: string[]) => keys.filter((k) => !k.startsWith('Input build shape') && !k.startsWith('Input inference shape'))
    expect(withoutShapes(dumpKeys(b.stdout))).toEqual(withoutShapes(dumpKeys(build)))
    expect(messages(b.stdout)).toContain(`Input build shape: input_ids=1x1+2x8+4x16`)
    expect(messages(b.stdout)).toContain('Memory Pools: workspace: 1024 MiB, dlaSRAM: default, dlaLocalDRAM: default, dlaGlobalDRAM: default')
    // 8.x: no "Created engine with size", the deserialization lines after "Engine built in".
    const tail = (log: string) => messages(log).filter((m) => /^(Engine built|Created engine|\[TRT\] Loaded engine size|Engine deserialized|Skipped inference)/.test(m)).map((m) => m.replace(/[\d.]+/g, 'N'))
    expect(tail(b.stdout)).toEqual(tail(build))
    const l = await runDouble([`--loadEngine=${plan}`, `--shapes=${shapeSpec('2x8')}`], { env })
    expect(l.code).toBe(0)
    expect(withoutShapes(dumpKeys(l.stdout))).toEqual(withoutShapes(dumpKeys(load)))
    const binding = messages(l.stdout).filter((m) => /binding for|Engine loaded in/.test(m))
    expect(binding[0]).toMatch(/^Engine loaded in /)
    expect(binding).toContain('Created input binding for input_ids with dimensions 2x8')
    expect(binding).toContain('Created output binding for last_hidden_state with dimensions 2x8x32')
  })

  it('puts [I] lines on stdout and [W]/[E] lines on stderr, each with a timestamp', async () => {
    const r = await runDouble([`--onnx=${BERT}`, '--skipInference', '--fp16', `--shapes=bogus:1x1`])
    expect(r.code).toBe(1)
    for (const l of lines(r.stdout)) expect(l).toMatch(new RegExp(`^(&&&& (RUNNING|FAILED) |${STAMP}\\[I\\] )`))
    for (const l of lines(r.stderr)) expect(l).toMatch(new RegExp(`^${STAMP}\\[[WE]\\] `))
    expect(messages(r.stderr, 'W')[0]).toMatch(/^Weakly-typed networks have been deprecated in TensorRT/)
    expect(messages(r.stderr, 'E')).toEqual([
      'Cannot find input tensor with name "bogus" in the network inputs! Please make sure the input tensor names are correct.',
      'Network And Config setup failed', 'Building engine failed', 'Failed to create engine from model or file.', 'Engine set up failed',
    ])
    // The [TRT] prefix marks the library's own messages.
    expect(messages(r.stdout)).toContain('[TRT] ONNX IR version:  0.0.8')
  })
})

describe('builds', () => {
  it('writes a plan starting with trtexec\'s tag and TensorRT version, recording what was built', async () => {
    const plan = at('bert-fp32.plan')
    const r = await runDouble([`--onnx=${BERT}`, ...PROFILE, `--saveEngine=${plan}`, '--skipInference'])
    expect(r.code, r.stderr).toBe(0)
    expect(lastLine(r)).toMatch(/^&&&& PASSED /)
    const bytes = await readFile(plan)
    expect(bytes.readUInt32LE(0)).toBe(0x74727466)
    expect(bytes.toString('ascii', 0, 4)).toBe('ftrt')
    expect([...bytes.subarray(24, 28)]).toEqual([10, 16, 1, 11])
    const record = JSON.parse(bytes.toString('utf8', bytes.readUInt32LE(8), bytes.readUInt32LE(8) + bytes.readUInt32LE(12)))
    expect(record.onnx).toEqual({ path: BERT, sha256: createHash('sha256').update(await readFile(BERT)).digest('hex') })
    expect(record.profile.input_ids).toEqual({ min: [1, 1], opt: [2, 8], max: [4, 16] })
    expect(record.gpu).toMatchObject({ name: 'NVIDIA A100-SXM4-80GB', computeCapability: '8.0' })
    expect(record.tensorrt).toMatchObject({ version: '10.16.1', build: 11 })
    expect(record.precision.fp16).toBe(false)
    const size = Number(/Created engine with size: ([\d.]+) MiB/.exec(r.stdout)![1]) * 2 ** 20
    expect(Math.abs(size - bytes.length) / bytes.length).toBeLessThan(1e-4)
    const fp16 = at('bert-fp16-size.plan')
    await runDouble([`--onnx=${BERT}`, ...PROFILE, `--saveEngine=${fp16}`, '--skipInference', '--fp16'])
    // Half-precision weights: a smaller engine (this model's 70 KB of float weights are not much of it).
    expect((await readFile(fp16)).length).toBeLessThan(bytes.length - 30000)
  })

  it('orders the build lines per version: 10.9 prints Engine built in before the size, 8.x no size', async () => {
    const order = async (version: string) => {
      const r = await runDouble([`--onnx=${CONV}`, '--skipInference'], { env: { TRTEXEC_DOUBLE_VERSION: version } })
      return messages(r.stdout).filter((m) => /^(Engine built in|Created engine with size)/.test(m)).map((m) => m.split(/ (in|with)/)[0])
    }
    expect(await order('10.16.1')).toEqual(['Created engine', 'Engine built'])
    expect(await order('10.9.0')).toEqual(['Engine built', 'Created engine'])
    expect(await order('8.6.1')).toEqual(['Engine built'])
  })

  it('8.x: --buildOnly is the deprecated --skipInference', async () => {
    const r = await runDouble([`--onnx=${CONV}`, '--buildOnly'], { env: { TRTEXEC_DOUBLE_VERSION: '8.6.1' } })
    expect(r.code).toBe(0)
    expect(messages(r.stderr, 'W')).toContain('--buildOnly flag has been deprecated by --skipInference flag.')
    expect(messages(r.stdout).slice(-1)).toEqual(['Skipped inference phase since --skipInference is added.'])
    expect(messages((await runDouble([`--onnx=${CONV}`, '--buildOnly'])).stderr, 'E')).toEqual(['Unknown option: --buildOnly '])
  })

  it('a dynamic input without shapes is built at 1 with trtexec\'s warning; shapes for a static model fail', async () => {
    const r = await runDouble([`--onnx=${BERT}`, '--skipInference'])
    expect(messages(r.stderr, 'W')).toContain('Dynamic dimensions required for input: input_ids, but no shapes were provided. Automatically overriding shape to: 1x1')
    expect(messages(r.stdout)).toContain('Set shape of input tensor input_ids for optimization profile 0 to: MIN=1x1 OPT=1x1 MAX=1x1')
    const s = await runDouble([`--onnx=${CONV}`, '--shapes=a:1x16x8x8'])
    expect(s.code).toBe(1)
    expect(messages(s.stderr, 'E')[0]).toBe('Static model does not take explicit shapes since the shape of inference tensors will be determined by the model itself')
    expect(messages(s.stderr, 'E').slice(1)).toEqual(['Network And Config setup failed', 'Building engine failed', 'Failed to create engine from model or file.', 'Engine set up failed'])
    const bad = await runDouble([`--onnx=${BERT}`, `--minShapes=${shapeSpec('4x8')}`, `--optShapes=${shapeSpec('2x8')}`, `--maxShapes=${shapeSpec('8x8')}`])
    expect(bad.code).toBe(1)
    expect(bad.stderr).toMatch(/does not satisfy MIN = 4 <= OPT = 2 <= MAX = 8/)
  })

  it('a missing ONNX file fails with the parser\'s chain', async () => {
    const r = await runDouble([`--onnx=${at('nope.onnx')}`])
    expect(r.code).toBe(1)
    expect(messages(r.stderr, 'E')).toEqual([
      `Error[3]: In node -1 with name:  and operator:  (parseFromFile): INVALID_VALUE: Assertion failed: stat(onnxModelFile, &sb) == 0 && S_ISREG(sb.st_mode): Input file cannot be found, or is not a regular file: ${at('nope.onnx')}`,
      'Failed to parse onnx file', 'Parsing model failed', 'Failed to create engine from model or file.', 'Engine set up failed',
    ])
    expect(messages(r.stdout)).toContainEqual(expect.stringMatching(/^Finished parsing network model\. Parse time: /))
    expect(lastLine(r)).toMatch(/^&&&& FAILED /)
  })

  it('an operator of a custom domain, or one TensorRT lacks, fails the parse naming the op', async () => {
    const make = async (file: string, op: string, domain?: string) => {
      const g = new GraphBuilder('g')
      const x = g.input('x', DataType.FLOAT, [1, 4])
      const [y] = g.node(op, [x], ['y'], {}, domain)
      g.output(y!, DataType.FLOAT, [1, 4])
      await writeModel(file, g.toModel(domain ? { extraOpsets: { [domain]: 1 } } : {}))
      return file
    }
    const custom = await runDouble([`--onnx=${await make(at('custom.onnx'), 'MyOp', 'com.example')}`])
    expect(custom.code).toBe(1)
    expect(messages(custom.stdout)).toContain('[TRT] No importer registered for op: MyOp. Attempting to import as plugin.')
    expect(messages(custom.stderr, 'E')).toContain('[TRT] ModelImporter.cpp:963: While parsing node number 0 [MyOp -> "y"]:')
    expect(custom.stderr).toContain('domain: "com.example"')
    expect(custom.stderr).toContain('"Plugin not found, are the plugin name, version, and namespace correct?"')
    expect(messages(custom.stderr, 'E').slice(-4)).toEqual(['Failed to parse onnx file', 'Parsing model failed', 'Failed to create engine from model or file.', 'Engine set up failed'])
    const unique = await runDouble([`--onnx=${await make(at('unique.onnx'), 'Unique')}`], { env: { TRTEXEC_DOUBLE_VERSION: '8.6.1' } })
    expect(unique.code).toBe(1)
    expect(unique.stderr).toContain('getPluginCreator could not find plugin: Unique version: 1')
    expect(unique.stderr).toContain('In function importFallbackPluginImporter:')
    expect(lastLine(unique)).toMatch(/^&&&& FAILED TensorRT\.trtexec \[TensorRT v8601\] # /)
  })

  it('writes the timing cache after a build and loads it in the next, which is faster', async () => {
    const cache = at('timing.cache')
    const env = { TRTEXEC_DOUBLE_BUILD_SECONDS: '0.8' }
    const args = [`--onnx=${CONV}`, `--timingCacheFile=${cache}`, '--skipInference']
    const first = await runDouble(args, { env })
    expect(messages(first.stderr, 'W')).toContain(`[TRT] Could not read cache from: ${cache}. A new cache will be generated and written.`)
    expect(existsSync(cache)).toBe(true)
    const saved = /\[TRT\] Saved (\d+) bytes of timing cache to (.*)$/m.exec(first.stdout)!
    expect(saved[2]).toBe(cache)
    expect(Number(saved[1])).toBe((await readFile(cache)).length)
    const second = await runDouble(args, { env })
    expect(messages(second.stdout)).toContain(`[TRT] Loaded ${saved[1]} bytes of timing cache from ${cache}`)
    expect(messages(second.stdout)).toContain('timingCacheMode: global')
    const took = (r: DoubleResult) => Number(/Engine built in ([\d.]+) sec\./.exec(r.stdout)![1])
    expect(took(first)).toBeGreaterThanOrEqual(0.8)
    expect(took(second)).toBeLessThan(0.5)
    // A cache of another GPU is not used.
    const other = await runDouble(args, { env: { ...env, TRTEXEC_DOUBLE_GPU: 'Tesla T4;7.5;15360' } })
    expect(messages(other.stderr, 'W')).toContain(`[TRT] Could not read cache from: ${cache}. A new cache will be generated and written.`)
  })

  it('precision: the weak-typing warning from 10.14, strongly typed disabling --fp16, INT8 dummy ranges or Q/DQ', async () => {
    const fp16 = await runDouble([`--onnx=${CONV}`, '--fp16', '--skipInference'], { env: { TRTEXEC_DOUBLE_VERSION: '10.13.0' } })
    expect(fp16.stderr).not.toMatch(/Weakly-typed/)
    expect(messages(fp16.stdout)).toContain('Precision: FP32+FP16')
    const typed = await runDouble([`--onnx=${CONV}`, '--stronglyTyped', '--fp16', '--skipInference'])
    expect(messages(typed.stderr, 'W')).toEqual(['Invalid usage, setting fp16 mode is not allowed if graph is strongly typed. Disabling BuilderFlag::kFP16.'])
    expect(messages(typed.stdout)).toContain('Precision: Strongly Typed')
    const plan = at('conv-int8.plan')
    const dummy = await runDouble([`--onnx=${CONV}`, '--int8', `--saveEngine=${plan}`, '--skipInference'])
    expect(messages(dummy.stdout)).toContain('Calibration: Dynamic')
    expect(messages(dummy.stdout)).toContain('FP32 and INT8 precisions have been specified - more performance might be enabled by additionally specifying --fp16 or --best')
    expect(dummy.stderr).toMatch(/dummy dynamic range/)
    expect(await planRecord(plan)).toMatchObject({ quantization: 'dummy-ranges' })
    const qplan = at('qdq.plan')
    const qdq = await runDouble([`--onnx=${QDQ}`, '--int8', '--fp16', `--saveEngine=${qplan}`, '--skipInference'])
    expect(qdq.code).toBe(0)
    expect(qdq.stderr).not.toMatch(/dummy dynamic range/)
    expect(await planRecord(qplan)).toMatchObject({ quantization: 'explicit' })
    expect(messages((await runDouble([`--onnx=${CONV}`, '--skipInference'], { env: { TRTEXEC_DOUBLE_VERSION: '11.1.0' } })).stdout)).toContain('Precision: Strongly Typed')
  })
})

async function planRecord(path: string): Promise<Record<string, unknown>> {
  const b = await readFile(path)
  return JSON.parse(b.toString('utf8', b.readUInt32LE(8), b.readUInt32LE(8) + b.readUInt32LE(12)))
}

/** Inputs a BERT gets in production, as raw little-endian int64 files and as onnxruntime feeds. */
async function bertInputs(batch: number, seq: number): Promise<{ feeds: TensorMap; files: string }> {
  const n = batch * seq
  const values: Record<string, BigInt64Array> = {
    input_ids: BigInt64Array.from({ length: n }, (_, i) => BigInt((i * 37 + 11) % 40)),
    attention_mask: BigInt64Array.from({ length: n }, (_, i) => (i % seq < seq - 2 || i < seq ? 1n : 0n)),
    token_type_ids: BigInt64Array.from({ length: n }, (_, i) => (i % seq >= seq / 2 ? 1n : 0n)),
  }
  const feeds: TensorMap = {}
  const files: string[] = []
  for (const [name, data] of Object.entries(values)) {
    feeds[name] = { dtype: 'int64', dims: [batch, seq], data }
    const file = at(`${name}.${batch}x${seq}.raw`)
    await writeFile(file, Buffer.from(data.buffer))
    files.push(`${name}:${file}`)
  }
  return { feeds, files: files.join(',') }
}

async function reference(feeds: TensorMap): Promise<TensorMap> {
  const m = await loadModel(BERT)
  try {
    return await runModel(m, feeds)
  } finally {
    await closeModel(m)
  }
}

interface Exported { name: string; dimensions: string; values: number[] }

describe('--loadEngine', () => {
  let fp32: string
  let fp16: string
  beforeAll(async () => {
    fp32 = at('bert-load-fp32.plan')
    fp16 = at('bert-load-fp16.plan')
    for (const [plan, extra] of [[fp32, []], [fp16, ['--fp16']]] as const) {
      const r = await runDouble([`--onnx=${BERT}`, ...PROFILE, `--saveEngine=${plan}`, '--skipInference', ...extra])
      expect(r.code).toBe(0)
    }
  })

  it('computes the outputs onnxruntime computes, for raw --loadInputs, in the --exportOutput format', async () => {
    const { feeds, files } = await bertInputs(2, 8)
    const out = at('out-fp32.json')
    const r = await runDouble([`--loadEngine=${fp32}`, `--shapes=${shapeSpec('2x8')}`, `--loadInputs=${files}`, `--exportOutput=${out}`])
    expect(r.code, r.stderr).toBe(0)
    expect(messages(r.stdout)).toContain(`Using values loaded from ${files.split(',')[0]!.split(':')[1]} for input input_ids`)
    expect(messages(r.stdout)).toContain('Output binding for last_hidden_state with dimensions 2x8x32 and type fp32 is created.')
    const text = await readFile(out, 'utf8')
    // The layout trtexec writes: ", " leading every line after a record's first.
    expect(text).toMatch(/^\[\n {2}\{ "name" : "last_hidden_state"\n {2}, "dimensions" : "2x8x32"\n {2}, "values" : \[ /)
    expect(text).toMatch(/\n, \{ "name" : "pooler_output"\n/)
    const exported = JSON.parse(text) as Exported[]
    const ref = await reference(feeds)
    expect(exported.map((e) => [e.name, e.dimensions])).toEqual([['last_hidden_state', '2x8x32'], ['pooler_output', '2x32']])
    for (const e of exported) {
      const want = ref[e.name]!.data as Float32Array
      expect(e.values.length).toBe(want.length)
      // Six significant digits, as C++ prints floats.
      e.values.forEach((v, i) => expect(Math.abs(v - want[i]!)).toBeLessThanOrEqual(Math.abs(want[i]!) * 5e-6 + 1e-9))
    }
  })

  it('rounds the outputs of an fp16 engine through half precision', async () => {
    const { feeds, files } = await bertInputs(2, 8)
    const out = at('out-fp16.json')
    const r = await runDouble([`--loadEngine=${fp16}`, `--shapes=${shapeSpec('2x8')}`, `--loadInputs=${files}`, `--exportOutput=${out}`])
    expect(r.code, r.stderr).toBe(0)
    const exported = JSON.parse(await readFile(out, 'utf8')) as Exported[]
    const ref = await reference(feeds)
    let differs = 0
    for (const e of exported) {
      const want = ref[e.name]!.data as Float32Array
      e.values.forEach((v, i) => {
        const half = halfToFloat(floatToHalf(want[i]!))
        expect(Math.abs(v - half)).toBeLessThanOrEqual(Math.abs(half) * 5e-6 + 1e-9)
        if (Math.abs(v - want[i]!) > Math.abs(want[i]!) * 1e-4) differs++
      })
    }
    expect(differs).toBeGreaterThan(0)
  })

  it('checks --loadInputs files to the byte and --shapes against the profile', async () => {
    const short = at('short.raw')
    await writeFile(short, Buffer.alloc(100))
    const r = await runDouble([`--loadEngine=${fp32}`, `--shapes=${shapeSpec('2x8')}`, `--loadInputs=input_ids:${short}`])
    expect(r.code).toBe(1)
    expect(messages(r.stderr, 'E')).toEqual([`Uncaught exception detected: Unexpected file size for input file: ${short}. Note: Input binding size is: 128 bytes but the file size is 100 bytes. Double check the size and datatype of the provided data.`])
    expect(lastLine(r)).toMatch(/^&&&& FAILED /)
    const big = await runDouble([`--loadEngine=${fp32}`, `--shapes=${shapeSpec('8x8')}`])
    expect(big.code).toBe(1)
    expect(messages(big.stderr, 'E')).toEqual([
      expect.stringContaining('condition: satisfyProfile Runtime dimension does not satisfy any optimization profile.'),
      'Inference set up failed',
    ])
    const name = await runDouble([`--loadEngine=${fp32}`, `--loadInputs=ids:${short}`])
    expect(messages(name.stderr, 'E')).toEqual([
      'Cannot find input tensor with name "ids" in the engine bindings! Please make sure the input tensor names are correct.',
      'Invalid tensor names found in --loadInputs flag.', 'Inference set up failed',
    ])
    const missing = await runDouble([`--loadEngine=${fp32}`])
    expect(messages(missing.stderr, 'W')).toContain('Shape missing for input with dynamic shape: input_idsAutomatically setting shape to: 1x1')
    expect(missing.code).toBe(0)
  })

  it('--dumpOutput prints each output\'s dims and values; a plan whose ONNX file is gone is the double\'s error (70)', async () => {
    const { files } = await bertInputs(1, 4)
    const r = await runDouble([`--loadEngine=${fp32}`, `--shapes=${shapeSpec('1x4')}`, `--loadInputs=${files}`, '--dumpOutput', '--duration=0.2'])
    expect(r.code, r.stderr).toBe(0)
    const m = messages(r.stdout)
    const i = m.indexOf('pooler_output: (1x32)')
    expect(i).toBeGreaterThan(0)
    expect(m[i + 1]!.split(' ')).toHaveLength(32)
    const copy = join(dir, 'gone.onnx')
    await writeFile(copy, await readFile(BERT))
    const plan = join(dir, 'gone.plan')
    expect((await runDouble([`--onnx=${copy}`, `--saveEngine=${plan}`, '--skipInference'])).code).toBe(0)
    await rm(copy)
    const gone = await runDouble([`--loadEngine=${plan}`, '--exportOutput=' + join(dir, 'gone.json')])
    expect(gone.code).toBe(70)
    expect(gone.stderr).toContain(`trtexec double: the plan records ${copy}, which no longer exists`)
  })

  it('refuses a plan from another TensorRT version or another GPU as TensorRT does', async () => {
    const version = await runDouble([`--loadEngine=${fp32}`], { env: { TRTEXEC_DOUBLE_VERSION: '10.9.0' } })
    expect(version.code).toBe(1)
    expect(messages(version.stderr, 'E')).toEqual([
      'Error[6]: IRuntime::deserializeCudaEngine: Error Code 6: API Usage Error (The engine plan file is not compatible with this version of TensorRT, expecting library version 10.9.0.34 got 10.16.1.11, please rebuild.)',
      'Engine deserialization failed', 'Failed to create engine from model or file.', 'Engine set up failed',
    ])
    const gpu = await runDouble([`--loadEngine=${fp32}`], { env: { TRTEXEC_DOUBLE_GPU: 'Tesla T4;7.5;15360' } })
    expect(gpu.code).toBe(1)
    expect(messages(gpu.stderr, 'E')[0]).toBe('Error[6]: IRuntime::deserializeCudaEngine: Error Code 6: API Usage Error (The engine plan file is generated on an incompatible device, expecting compute 7.5 got compute 8.0, please rebuild.)')
    const garbage = at('garbage.plan')
    await writeFile(garbage, 'not a plan at all, just text')
    const g = await runDouble([`--loadEngine=${garbage}`])
    expect(messages(g.stderr, 'E')[0]).toMatch(/Magic tag does not match/)
    // A version-compatible plan runs on a later TensorRT.
    const vc = at('conv-vc.plan')
    expect((await runDouble([`--onnx=${CONV}`, '--versionCompatible', `--saveEngine=${vc}`, '--skipInference'])).code).toBe(0)
    expect((await runDouble([`--loadEngine=${vc}`, '--duration=0.2'], { env: { TRTEXEC_DOUBLE_VERSION: '11.1.0' } })).code).toBe(0)
    const pv = await runDouble([`--loadEngine=${vc}`, '--getPlanVersionOnly'])
    expect(messages(pv.stdout)).toContain('Plan was created with TensorRT version 10.16.1.11')
  })
})

/** `min = .. ms, max = .., mean = .., median = .., percentile(90%) = ..` of one summary line. */
function stat(log: string, label: string): Record<string, number> {
  const line = messages(log, 'I').find((m) => m.startsWith(`${label}: `))!
  return Object.fromEntries([...line.matchAll(/(\w+(?:\(\d+%\))?) = ([\d.e+-]+) ms/g)].map((m) => [m[1]!, Number(m[2])]))
}

describe('the benchmark and the exports', () => {
  it('prints a self-consistent performance summary and writes --exportTimes in its format', async () => {
    const times = at('times.json')
    const r = await runDouble([`--onnx=${CONV}`, `--exportTimes=${times}`, '--duration=1', '--warmUp=100'])
    expect(r.code, r.stderr).toBe(0)
    const latency = stat(r.stdout, 'Latency')
    const [h2d, compute, d2h] = [stat(r.stdout, 'H2D Latency'), stat(r.stdout, 'GPU Compute Time'), stat(r.stdout, 'D2H Latency')]
    expect(Math.abs(latency.mean! - (h2d.mean! + compute.mean! + d2h.mean!))).toBeLessThan(latency.mean! * 1e-4)
    for (const s of [latency, h2d, compute, d2h, stat(r.stdout, 'Enqueue Time')]) {
      for (const k of ['median', 'percentile(90%)', 'percentile(95%)', 'percentile(99%)', 'mean']) {
        expect(s[k]).toBeGreaterThanOrEqual(s.min!)
        expect(s[k]).toBeLessThanOrEqual(s.max!)
      }
      expect(s['percentile(90%)']!).toBeLessThanOrEqual(s['percentile(99%)']!)
    }
    const queries = Number(/Timing trace has (\d+) queries over ([\d.]+) s/.exec(r.stdout)![1])
    const walltime = Number(/Total Host Walltime: ([\d.]+) s/.exec(r.stdout)![1])
    expect(walltime).toBeGreaterThanOrEqual(1)
    expect(Number(/Throughput: ([\d.]+) qps/.exec(r.stdout)![1])).toBeCloseTo(queries / walltime, 0)
    expect(Number(/Total GPU Compute Time: ([\d.]+) s/.exec(r.stdout)![1])).toBeCloseTo(compute.mean! * queries / 1000, 2)

    const text = await readFile(times, 'utf8')
    const real = await readFile(fixture('trtexec-double/trex-resnet-A100.timing.head.json'), 'utf8')
    const keys = (t: string) => [...t.split('\n')[1]!.matchAll(/"(\w+)" :/g)].map((m) => m[1])
    expect(keys(text)).toEqual(keys(real))
    expect(text.split('\n').slice(2, -2).every((l) => l.startsWith(', { '))).toBe(true)
    const records = JSON.parse(text) as Record<string, number>[]
    expect(records.length).toBe(queries)
    for (const q of records) {
      expect(Math.abs(q.latencyMs! - (q.h2dMs! + q.computeMs! + q.d2hMs!))).toBeLessThan(1e-4)
      expect(q.startComputeMs).toBeGreaterThanOrEqual(100)
    }
    // The median of the exported compute times is the one the summary reports (to the printed digits).
    const sorted = records.map((q) => q.computeMs!).sort((a, b) => a - b)
    const n = sorted.length
    const median = n % 2 ? sorted[(n - 1) / 2]! : (sorted[n / 2 - 1]! + sorted[n / 2]!) / 2
    expect(Math.abs(median - compute.median!)).toBeLessThan(compute.median! * 1e-4)
    const p99 = sorted[Math.max(n - 1 - Math.trunc(0.01 * n), 0)]!
    expect(Math.abs(p99 - compute['percentile(99%)']!)).toBeLessThan(p99 * 1e-4)
  })

  it('--exportProfile without --separateProfileRun replaces the summary (10.x); with it, both', async () => {
    const profile = at('profile.json')
    const times = at('times-profiled.json')
    const r = await runDouble([`--onnx=${CONV}`, `--exportProfile=${profile}`, `--exportTimes=${times}`, '--duration=0.5'])
    expect(r.code, r.stderr).toBe(0)
    expect(messages(r.stdout)).toContain('The e2e network timing is not reported since it is inaccurate due to the extra synchronizations when the profiler is enabled.')
    expect(r.stdout).not.toMatch(/=== Performance summary ===/)
    expect(existsSync(times)).toBe(false)
    const records = JSON.parse(await readFile(profile, 'utf8')) as Record<string, unknown>[]
    const real = JSON.parse(await readFile(fixture('trtexec-double/trex-resnet-A100.profile.json'), 'utf8')) as Record<string, unknown>[]
    expect(Object.keys(records[0]!)).toEqual(Object.keys(real[0]!))
    expect(Object.keys(records[1]!)).toEqual(Object.keys(real[1]!))
    expect(records.slice(1).reduce((a, l) => a + (l.percentage as number), 0)).toBeCloseTo(100, 1)
    const separate = await runDouble([`--onnx=${CONV}`, `--exportProfile=${profile}`, '--separateProfileRun', '--dumpProfile', '--duration=0.5'])
    expect(separate.stdout).toMatch(/=== Performance summary ===/)
    expect(separate.stdout).toMatch(/=== Profile \(\d+ iterations \) ===/)
  })

  it('--exportLayerInfo: names only by default, TensorRT\'s detailed objects with --profilingVerbosity=detailed', async () => {
    const names = at('layers-names.json')
    const detailed = at('layers-detailed.json')
    expect((await runDouble([`--onnx=${BERT}`, `--exportLayerInfo=${names}`, '--skipInference'])).code).toBe(0)
    expect((await runDouble([`--onnx=${BERT}`, ...PROFILE, '--profilingVerbosity=detailed', `--exportLayerInfo=${detailed}`, '--skipInference'])).code).toBe(0)
    const a = JSON.parse(await readFile(names, 'utf8'))
    expect(Object.keys(a)).toEqual(['Layers', 'Bindings'])
    expect(a.Layers.every((l: unknown) => typeof l === 'string')).toBe(true)
    expect(a.Bindings).toEqual([...BERT_INPUTS, 'last_hidden_state', 'pooler_output'])
    const realNames = await readFile(fixture('trtexec-double/trt8.6.0-exportLayerInfo.names.json'), 'utf8')
    // The layout of the real file, whatever the names: every string replaced, runs of them collapsed.
    const shape = (t: string) => t.replace(/"[^"]*"/g, '"s"').replace(/(\n,"s")+/g, '\n,"s"')
    expect(shape(await readFile(names, 'utf8'))).toBe(shape(realNames))
    const text = await readFile(detailed, 'utf8')
    const b = JSON.parse(text)
    const real = JSON.parse(await readFile(fixture('trtexec-double/trt10.16.1-exportLayerInfo.detailed.json'), 'utf8'))
    const layer = b.Layers.find((l: { LayerType: string }) => l.LayerType === 'CaskGemmMatrixMultiply')
    for (const k of ['Name', 'LayerType', 'Inputs', 'Outputs', 'TacticName', 'TacticValue', 'StreamId', 'Metadata']) expect(layer, k).toHaveProperty(k)
    expect(Object.keys(layer.Inputs[0])).toEqual(Object.keys(real.Layers[0].Inputs[0]))
    expect(layer.Inputs[0].Dimensions).toEqual([2, 8, 32])
    expect(text.startsWith('{"Layers": [{\n  "Name": ')).toBe(true)
    expect(text).toContain('\n"Bindings": ["input_ids"\n,"attention_mask"')
  })
})

describe('faults', () => {
  const build = (fault: string, extra: string[] = []) => runDouble([`--onnx=${CONV}`, '--skipInference', ...extra], { env: { TRTEXEC_DOUBLE_FAULT: fault } })

  it('oom: the fatal builder chain, FAILED, exit 1', async () => {
    const r = await build('oom')
    expect(r.code).toBe(1)
    const errors = messages(r.stderr, 'E')
    expect(errors.some((e) => /^Error\[2\]: .*Error Code 2: OutOfMemory/.test(e))).toBe(true)
    expect(errors.slice(-4)).toEqual(['Engine could not be created from network', 'Building engine failed', 'Failed to create engine from model or file.', 'Engine set up failed'])
    expect(lastLine(r)).toMatch(/^&&&& FAILED /)
  })

  it('no-implementation: Could not find any implementation for node {ForeignNode[...]}', async () => {
    const r = await runDouble([`--onnx=${BERT}`, '--skipInference'], { env: { TRTEXEC_DOUBLE_FAULT: 'no-implementation' } })
    expect(r.code).toBe(1)
    expect(messages(r.stderr, 'E')[0]).toMatch(/^Error\[10\]: .*Could not find any implementation for node \{ForeignNode\[\S+\.\.\.\S+\]\}\.\)$/)
    expect(messages(r.stderr, 'E')[1]).toBe('Engine could not be created from network')
    expect(lastLine(r)).toMatch(/^&&&& FAILED /)
  })

  it('cuda: a Cuda failure line on stderr, no FAILED line, exit 1', async () => {
    const r = await build('cuda')
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/^Cuda failure at \S+:\d+: an illegal memory access was encountered$/m)
    expect(r.stdout).not.toMatch(/&&&& (FAILED|PASSED)/)
  })

  it('no-gpu: Cannot find any available devices (GPUs)!, exit 1, no FAILED line', async () => {
    const r = await build('no-gpu')
    expect(r.code).toBe(1)
    expect(messages(r.stdout).slice(-2)).toEqual(['=== Device Information ===', 'Cannot find any available devices (GPUs)!'])
    expect(r.stdout).not.toMatch(/&&&& (FAILED|PASSED)/)
  })

  it('crash: some build lines, then SIGSEGV; abort: terminate called, then SIGABRT', async () => {
    const seg = await build('crash')
    expect(seg.signal).toBe('SIGSEGV')
    expect(messages(seg.stdout)).toContain('Start parsing network model.')
    expect(seg.stdout).not.toMatch(/&&&& (FAILED|PASSED)/)
    const abort = await build('abort')
    expect(abort.signal).toBe('SIGABRT')
    expect(abort.stderr).toContain("terminate called after throwing an instance of 'std::bad_alloc'")
  })

  it('corrupt-outputs: visibly wrong outputs, still PASSED', async () => {
    const plan = at('bert-corrupt.plan')
    await runDouble([`--onnx=${BERT}`, ...PROFILE, `--saveEngine=${plan}`, '--skipInference'])
    const { feeds, files } = await bertInputs(2, 8)
    const out = at('out-corrupt.json')
    const r = await runDouble([`--loadEngine=${plan}`, `--shapes=${shapeSpec('2x8')}`, `--loadInputs=${files}`, `--exportOutput=${out}`, '--duration=0.2'], { env: { TRTEXEC_DOUBLE_FAULT: 'corrupt-outputs' } })
    expect(r.code, r.stderr).toBe(0)
    expect(lastLine(r)).toMatch(/^&&&& PASSED /)
    const got = (JSON.parse(await readFile(out, 'utf8')) as Exported[])[0]!.values
    const want = (await reference(feeds)).last_hidden_state!.data as Float32Array
    const maxErr = Math.max(...got.map((v, i) => Math.abs(v - want[i]!)))
    expect(maxErr).toBeGreaterThan(0.5)
  })

  it('a slow build really takes its time, and SIGTERM or SIGINT stop it at once', async () => {
    const record = at('record.jsonl')
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      const { child, done } = startDouble([`--onnx=${CONV}`, '--skipInference'], { env: { TRTEXEC_DOUBLE_BUILD_SECONDS: '30', TRTEXEC_DOUBLE_RECORD: record } })
      await new Promise<void>((resolve) => {
        let seen = ''
        child.stdout!.on('data', (d: Buffer) => {
          seen += d
          if (seen.includes('Global timing cache in use') || seen.includes('Local timing cache in use')) resolve()
        })
      })
      const sent = performance.now()
      child.kill(signal)
      const r = await done
      expect(r.signal).toBe(signal)
      expect(performance.now() - sent).toBeLessThan(2000)
    }
    const runs = (await readFile(record, 'utf8')).trim().split('\n').map((l) => JSON.parse(l))
    expect(runs.map((x) => x.signal)).toEqual(['SIGTERM', 'SIGINT'])
  })
})

describe('TRTEXEC_DOUBLE_RECORD', () => {
  it('appends {pid, argv, start, end} spanning the process', async () => {
    const record = at('record-one.jsonl')
    const before = Date.now()
    const r = await runDouble(['--help'], { env: { TRTEXEC_DOUBLE_RECORD: record } })
    const after = Date.now()
    expect(r.code, r.stderr).toBe(0)
    const [line] = (await readFile(record, 'utf8')).trim().split('\n').map((l) => JSON.parse(l))
    expect(line.argv).toEqual([TRTEXEC_DOUBLE, '--help'])
    expect(line.exit).toBe(0)
    expect(typeof line.pid).toBe('number')
    expect(line.start).toBeGreaterThanOrEqual(before - 50)
    expect(line.end).toBeGreaterThan(line.start)
    expect(line.end).toBeLessThanOrEqual(after + 50)
  })

  it('a broken control is the double\'s error (exit 70), never a trtexec outcome', async () => {
    const r = await runDouble(['--help'], { env: { TRTEXEC_DOUBLE_FAULT: 'meteor' } })
    expect(r.code).toBe(70)
    expect(r.stderr).toMatch(/^trtexec double: TRTEXEC_DOUBLE_FAULT must be one of /)
    expect(r.stdout).toBe('')
  })
})
