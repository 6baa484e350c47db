/**
 * trtexec's argument lists, table-driven: every precision, a static and a dynamic (batch + sequence) model,
 * on TensorRT 8.6.1, 10.3.0, 10.12.0, 10.16.1 and 11.1.0, as exact arrays; the refusals; and every flag
 * emitted checked against that version's own help text (fixtures/trtexec-help).
 */
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { buildArgv, shellCommand, validateArgv } from '../../src/builders/argv.js'
import { parseVersionText } from '../../src/builders/trtexec-version.js'
import type { BuildArgvOptions, BuildPrecision, ShapeProfile, TrtVersion } from '../../src/builders/types.js'
import { repoRoot } from '../helpers/store-helpers.js'

const v = (text: string): TrtVersion => parseVersionText(text)!

const DYNAMIC: ShapeProfile = {
  input_ids: { min: [1, 1], opt: [8, 128], max: [32, 512] },
  attention_mask: { min: [1, 1], opt: [8, 128], max: [32, 512] },
}
const SHAPES = {
  static: { profile: {}, argv: [] },
  dynamic: {
    profile: DYNAMIC,
    argv: [
      '--minShapes=input_ids:1x1,attention_mask:1x1',
      '--optShapes=input_ids:8x128,attention_mask:8x128',
      '--maxShapes=input_ids:32x512,attention_mask:32x512',
    ],
  },
} as const

/** A full build: workspace, timing cache, the four exports and the benchmark. */
function options(version: string, precision: BuildPrecision, typedModel: BuildArgvOptions['typedModel'], profile: ShapeProfile): BuildArgvOptions {
  return {
    version: v(version),
    onnx: '/m/model.onnx',
    engine: '/o/engine.plan',
    precision,
    ...(typedModel ? { typedModel } : {}),
    profile,
    workspaceMiB: 4096,
    timingCacheFile: '/c/A100-10.16.1.cache',
    layerInfo: '/o/layers.json',
    times: '/o/times.json',
    profileJson: '/o/profile.json',
  }
}

const HEAD = ['--onnx=/m/model.onnx', '--saveEngine=/o/engine.plan']
const MID = ['--memPoolSize=workspace:4096M', '--timingCacheFile=/c/A100-10.16.1.cache']
const EXPORTS = ['--profilingVerbosity=detailed', '--exportLayerInfo=/o/layers.json', '--exportTimes=/o/times.json', '--exportProfile=/o/profile.json']
const tail = (version: string): string[] => (version.startsWith('11.') ? EXPORTS : [...EXPORTS, '--separateProfileRun'])

type Row = [version: string, precision: BuildPrecision, typed: BuildArgvOptions['typedModel'] | undefined, flags: string[] | { code: string; exit: number; message: RegExp }]
const NEEDS_TRANSFORM = (message: RegExp) => ({ code: 'PRECISION_NEEDS_TRANSFORM', exit: 2, message })
const UNSUPPORTED = (message: RegExp) => ({ code: 'PRECISION_UNSUPPORTED', exit: 2, message })
const NO_QDQ = NEEDS_TRANSFORM(/int8 build needs a Q\/DQ model .*placeholder ranges/)

const ROWS: Row[] = [
  ['8.6.1', 'fp32', undefined, []],
  ['8.6.1', 'fp16', undefined, ['--fp16']],
  ['8.6.1', 'fp16', 'fp16', ['--fp16']],
  ['8.6.1', 'bf16', undefined, UNSUPPORTED(/TensorRT 8\.6\.1 has no --bf16 \(bf16 builds arrived in TensorRT 9\)/)],
  ['8.6.1', 'int8', undefined, NO_QDQ],
  ['8.6.1', 'int8', 'qdq', ['--int8', '--fp16']],
  ['8.6.1', 'best', undefined, ['--best']],

  ['10.3.0', 'fp32', undefined, []],
  ['10.3.0', 'fp16', undefined, ['--fp16']],
  ['10.3.0', 'fp16', 'fp16', ['--fp16']], // --stronglyTyped only from 10.12
  ['10.3.0', 'bf16', undefined, ['--bf16']],
  ['10.3.0', 'int8', undefined, NO_QDQ],
  ['10.3.0', 'int8', 'qdq', ['--int8', '--fp16']],
  ['10.3.0', 'best', undefined, ['--best']],

  ['10.12.0', 'fp32', undefined, []],
  ['10.12.0', 'fp16', undefined, ['--fp16']],
  ['10.12.0', 'fp16', 'fp16', ['--stronglyTyped']],
  ['10.12.0', 'fp16', 'qdq', ['--fp16']], // a Q/DQ model's types say int8, not fp16
  ['10.12.0', 'bf16', undefined, ['--bf16']],
  ['10.12.0', 'int8', 'fp16', NEEDS_TRANSFORM(/int8 build needs a Q\/DQ model/)],
  ['10.12.0', 'int8', 'qdq', ['--stronglyTyped']],
  ['10.12.0', 'best', undefined, ['--best']],

  ['10.16.1', 'fp32', undefined, []],
  ['10.16.1', 'fp16', undefined, ['--fp16']],
  ['10.16.1', 'fp16', 'fp16', ['--stronglyTyped']],
  ['10.16.1', 'bf16', undefined, ['--bf16']],
  ['10.16.1', 'int8', undefined, NO_QDQ],
  ['10.16.1', 'int8', 'qdq', ['--stronglyTyped']],
  ['10.16.1', 'best', undefined, ['--best']],

  ['11.1.0', 'fp32', undefined, []],
  ['11.1.0', 'fp32', 'fp16', UNSUPPORTED(/this fp16 model would give an fp16 engine, not fp32/)],
  ['11.1.0', 'fp16', undefined, NEEDS_TRANSFORM(/TensorRT 11\.1\.0 builds every network strongly typed.*\/m\/model\.onnx is not an fp16 model/)],
  ['11.1.0', 'fp16', 'fp16', []],
  ['11.1.0', 'bf16', undefined, UNSUPPORTED(/TensorRT 11\.1\.0 has no --bf16.*no bf16 transform/)],
  ['11.1.0', 'int8', undefined, NEEDS_TRANSFORM(/int8 build needs a Q\/DQ model.*TensorRT 11\.1\.0 takes int8 only from them/)],
  ['11.1.0', 'int8', 'qdq', []],
  ['11.1.0', 'best', undefined, UNSUPPORTED(/TensorRT 11\.1\.0 has no --best/)],
]

function thrown(fn: () => unknown): { exitCode: number; code: string; message: string; hint: string } {
  try {
    fn()
  } catch (err) {
    return err as { exitCode: number; code: string; message: string; hint: string }
  }
  throw new Error('expected an error')
}

describe('buildArgv: precision x shapes x TensorRT version', () => {
  const cases = ROWS.flatMap(([version, precision, typed, expected]) => (['static', 'dynamic'] as const).map((shape) => [version, precision, typed ?? '-', shape, expected] as const))

  it.each(cases)('TensorRT %s, %s (model typed %s), %s model', (version, precision, typed, shape, expected) => {
    const o = options(version, precision, typed === '-' ? undefined : typed, SHAPES[shape].profile)
    if (Array.isArray(expected)) {
      expect(buildArgv(o)).toEqual([...HEAD, ...expected, ...MID, ...SHAPES[shape].argv, ...tail(version)])
    } else {
      const err = thrown(() => buildArgv(o))
      expect(err).toMatchObject({ code: expected.code, exitCode: expected.exit })
      expect(err.message).toMatch(expected.message)
    }
  })

  it('the refusals say what to do: `modelforge quantize` for a model whose types must carry the precision', () => {
    expect(thrown(() => buildArgv(options('11.1.0', 'fp16', undefined, {}))).hint).toBe('Make an fp16 model with `modelforge quantize --precision fp16` (or let `build --precision fp16` make it), then build that model.')
    expect(thrown(() => buildArgv(options('10.16.1', 'int8', undefined, {}))).hint).toBe('Make a Q/DQ model calibrated on real inputs with `modelforge quantize --precision int8 --calib-data <file>` (or `build --precision int8 --calib-data <file>`), then build that model.')
    expect(thrown(() => buildArgv(options('11.1.0', 'best', undefined, {}))).hint).toMatch(/^Build --precision fp16 from a model made by `modelforge quantize --precision fp16`.*, or int8 from one made by `modelforge quantize --precision int8.*, or fp32 from the model as it is\.$/)
  })
})

describe('buildArgv: options and their versions', () => {
  const base = (version: string, extra: Partial<BuildArgvOptions> = {}): BuildArgvOptions => ({ version: v(version), onnx: 'm.onnx', engine: 'e.plan', precision: 'fp32', profile: {}, ...extra })

  it('the bare minimum: the model, the engine, and the benchmark in the same run', () => {
    expect(buildArgv(base('10.16.1'))).toEqual(['--onnx=m.onnx', '--saveEngine=e.plan'])
  })

  it('the workspace is <N>M, never MiB: 10.x reads a trailing B as bytes (1024MiB is 1 KiB)', () => {
    const argv = buildArgv(base('10.16.1', { workspaceMiB: 1024 }))
    expect(argv).toContain('--memPoolSize=workspace:1024M')
    expect(argv.join(' ')).not.toMatch(/MiB/)
    expect(buildArgv(base('8.6.1', { workspaceMiB: 1024 }))).toContain('--memPoolSize=workspace:1024M')
    for (const bad of [0, -1, 1.5, Number.NaN]) expect(thrown(() => buildArgv(base('10.16.1', { workspaceMiB: bad })))).toMatchObject({ code: 'INVALID_OPTION', exitCode: 2 })
  })

  it('--skip-benchmark: --skipInference (8.6+), --buildOnly before, and no times or profile export, which only inference writes', () => {
    const o = { skipBenchmark: true, layerInfo: 'l.json', times: 't.json', profileJson: 'p.json' }
    expect(buildArgv(base('10.16.1', o))).toEqual(['--onnx=m.onnx', '--saveEngine=e.plan', '--profilingVerbosity=detailed', '--exportLayerInfo=l.json', '--skipInference'])
    expect(buildArgv(base('8.6.1', o)).at(-1)).toBe('--skipInference')
    expect(buildArgv(base('11.1.0', o)).at(-1)).toBe('--skipInference')
    expect(buildArgv(base('8.4.1', o)).at(-1)).toBe('--buildOnly')
  })

  it('--exportProfile brings --separateProfileRun before 11.x, so the performance summary is still printed', () => {
    expect(buildArgv(base('8.6.1', { profileJson: 'p.json' })).slice(2)).toEqual(['--exportProfile=p.json', '--separateProfileRun'])
    expect(buildArgv(base('11.1.0', { profileJson: 'p.json' })).slice(2)).toEqual(['--exportProfile=p.json'])
    expect(buildArgv(base('10.16.1', { times: 't.json' })).slice(2)).toEqual(['--exportTimes=t.json'])
  })

  it('--builderOptimizationLevel 0 to 5 from 8.6', () => {
    expect(buildArgv(base('8.6.1', { builderOptimizationLevel: 0 }))).toContain('--builderOptimizationLevel=0')
    expect(buildArgv(base('11.1.0', { builderOptimizationLevel: 5 }))).toContain('--builderOptimizationLevel=5')
    expect(thrown(() => buildArgv(base('10.16.1', { builderOptimizationLevel: 6 })))).toMatchObject({ code: 'INVALID_OPTION', exitCode: 2 })
    const old = thrown(() => buildArgv(base('8.5.3', { builderOptimizationLevel: 3 })))
    expect(old).toMatchObject({ code: 'TRTEXEC_OPTION_UNSUPPORTED', exitCode: 2 })
    expect(old.message).toBe('trtexec of TensorRT 8.5.3 has no --builderOptimizationLevel (it arrived in TensorRT 8.6)')
  })

  it('--hardwareCompatibilityLevel: none and ampere+ from 8.6, sameComputeCapability from 10.9, spelled as trtexec documents', () => {
    expect(buildArgv(base('8.6.1', { hardwareCompatibilityLevel: 'Ampere+' }))).toContain('--hardwareCompatibilityLevel=ampere+')
    expect(buildArgv(base('10.9.0', { hardwareCompatibilityLevel: 'samecomputecapability' }))).toContain('--hardwareCompatibilityLevel=sameComputeCapability')
    expect(thrown(() => buildArgv(base('10.8.0', { hardwareCompatibilityLevel: 'sameComputeCapability' })))).toMatchObject({ code: 'TRTEXEC_OPTION_UNSUPPORTED' })
    expect(thrown(() => buildArgv(base('8.5.3', { hardwareCompatibilityLevel: 'none' })))).toMatchObject({ code: 'TRTEXEC_OPTION_UNSUPPORTED' })
    const bad = thrown(() => buildArgv(base('10.16.1', { hardwareCompatibilityLevel: 'hopper+' })))
    expect(bad).toMatchObject({ code: 'INVALID_OPTION', exitCode: 2 })
    expect(bad.hint).toBe('Use one of none, ampere+, sameComputeCapability.')
  })

  it('an input name with ":" is quoted; one with "," cannot be written (trtexec cuts lists at every comma)', () => {
    const profile = { 'Input:0': { min: [1, 16], opt: [8, 16], max: [32, 16] } }
    expect(buildArgv(base('10.16.1', { profile })).slice(2)).toEqual([
      "--minShapes='Input:0':1x16", "--optShapes='Input:0':8x16", "--maxShapes='Input:0':32x16",
    ])
    const err = thrown(() => buildArgv(base('10.16.1', { profile: { 'a,b': profile['Input:0'] } })))
    expect(err).toMatchObject({ code: 'TRTEXEC_NAME_UNSUPPORTED', exitCode: 2 })
    expect(err.message).toBe('trtexec cannot take input "a,b" in --minShapes: commas, single quotes and \'*\' in a name break its list syntax')
    expect(thrown(() => buildArgv(base('10.16.1', { profile: { "it's": profile['Input:0'] } })))).toMatchObject({ code: 'TRTEXEC_NAME_UNSUPPORTED' })
  })

  it('a trtexec older than 8.4 is not driven: exit 3 TRTEXEC_UNSUPPORTED', () => {
    const err = thrown(() => buildArgv(base('8.2.3')))
    expect(err).toMatchObject({ code: 'TRTEXEC_UNSUPPORTED', exitCode: 3 })
    expect(err.message).toMatch(/TensorRT 8\.2\.3 is older than modelforge drives \(8\.4 and later\)/)
    expect(thrown(() => validateArgv({ version: v('8.0.3'), engine: 'e', shapes: {}, inputs: {}, output: 'o' }))).toMatchObject({ code: 'TRTEXEC_UNSUPPORTED' })
  })
})

describe('validateArgv', () => {
  it('loads the engine, sets the dynamic inputs\' shapes, feeds the raw input files, exports the outputs, runs once', () => {
    expect(validateArgv({
      version: v('10.16.1'),
      engine: '/o/engine.plan',
      shapes: { input_ids: [2, 16], attention_mask: [2, 16] },
      inputs: { input_ids: '/o/in/input_ids.bin', attention_mask: '/o/in/attention_mask.bin' },
      output: '/o/outputs.json',
    })).toEqual([
      '--loadEngine=/o/engine.plan',
      '--shapes=input_ids:2x16,attention_mask:2x16',
      '--loadInputs=input_ids:/o/in/input_ids.bin,attention_mask:/o/in/attention_mask.bin',
      '--exportOutput=/o/outputs.json',
      '--iterations=1', '--warmUp=0', '--duration=0', '--avgRuns=1',
    ])
  })

  it('a static model gets no --shapes (trtexec refuses explicit shapes for one)', () => {
    expect(validateArgv({ version: v('8.6.1'), engine: 'e.plan', shapes: {}, inputs: { x: 'x.bin' }, output: 'out.json' }))
      .toEqual(['--loadEngine=e.plan', '--loadInputs=x:x.bin', '--exportOutput=out.json', '--iterations=1', '--warmUp=0', '--duration=0', '--avgRuns=1'])
  })

  it("quotes a name with ':' and the name of a file whose path has ':' (trtexec splits at the last ':' otherwise)", () => {
    const argv = validateArgv({ version: v('11.1.0'), engine: 'e', shapes: { 'Input:0': [1, 16, 128] }, inputs: { 'Input:0': '/in/a.bin', x: '/in/t:1.bin' }, output: 'o' })
    expect(argv[1]).toBe("--shapes='Input:0':1x16x128")
    expect(argv[2]).toBe("--loadInputs='Input:0':/in/a.bin,'x':/in/t:1.bin")
  })

  it('refuses an input file path that --loadInputs cannot carry', () => {
    const err = thrown(() => validateArgv({ version: v('10.16.1'), engine: 'e', shapes: {}, inputs: { x: '/out,1/x.bin' }, output: 'o' }))
    expect(err).toMatchObject({ code: 'TRTEXEC_NAME_UNSUPPORTED', exitCode: 2 })
    expect(err.message).toBe('trtexec cannot read input file /out,1/x.bin through --loadInputs: commas and single quotes in a path break its list syntax')
  })
})

describe("every flag emitted is one that version's trtexec documents", () => {
  const help = (file: string): string => readFileSync(join(repoRoot, 'fixtures', 'trtexec-help', file), 'utf8')
  const HELP: Record<string, string> = {
    '8.6.1': help('trtexec-8.6.0-help.txt'),
    '10.16.1': help('trtexec-10.16.1-help.txt'),
    '11.1.0': help('trtexec-11.1-help-source.cpp.txt'),
  }

  /** Everything a build and a validation can emit for this version. */
  function emitted(version: string): Set<string> {
    const out: string[] = []
    for (const [rowVersion, precision, typed, expected] of ROWS) {
      if (rowVersion === version && Array.isArray(expected)) {
        for (const shape of ['static', 'dynamic'] as const) out.push(...buildArgv(options(version, precision, typed, SHAPES[shape].profile)))
      }
    }
    out.push(...buildArgv({ ...options(version, 'fp32', undefined, DYNAMIC), skipBenchmark: true, builderOptimizationLevel: 3, hardwareCompatibilityLevel: version.startsWith('8.') ? 'ampere+' : 'sameComputeCapability' }))
    out.push(...validateArgv({ version: v(version), engine: 'e', shapes: { x: [1] }, inputs: { x: 'x.bin' }, output: 'o' }))
    return new Set(out.map((a) => a.split('=')[0]!))
  }

  it.each(Object.keys(HELP))('TensorRT %s', (version) => {
    const flags = emitted(version)
    expect(flags.size).toBeGreaterThan(15)
    for (const flag of flags) {
      // The option opens a line of the help: after the cookbook's ■ marks in the 8.6 copy, after `os << "` in
      // the 11.1 source.
      const line = HELP[version]!.split('\n').find((l) => new RegExp(`^(\\s|■|"|os\\s*<<|R"\\()*${flag}(?=[=\\s,])`).test(l))
      expect(line, `${flag} is not in TensorRT ${version}'s help`).toBeDefined()
      expect(line, `${flag} is deprecated in TensorRT ${version}`).not.toMatch(/\[Deprecated\]/)
    }
  })

  it('and what is gone from a version is never emitted for it: 11.x has no --fp16, --int8, --bf16, --best', () => {
    expect(HELP['11.1.0']).not.toMatch(/--fp16|--int8|--bf16|--best/)
    expect(HELP['8.6.1']).not.toMatch(/--bf16|--stronglyTyped/)
    expect([...emitted('11.1.0')].filter((f) => /--(fp16|int8|bf16|best|stronglyTyped|separateProfileRun)$/.test(f))).toEqual([])
    expect([...emitted('8.6.1')].filter((f) => /--(bf16|stronglyTyped)$/.test(f))).toEqual([])
  })
})

describe('shellCommand', () => {
  it('quotes for a POSIX shell: sh gets back exactly the words', () => {
    const words = ["--shapes='Input:0':1x16", '--onnx=/tmp/my model.onnx', '--saveEngine=$HOME/e.plan', 'a"b', '', '*', '--x=~/y', "it's", '--memPoolSize=workspace:1024M']
    const line = shellCommand('printf', ['%s\\n', ...words])
    expect(line).toMatch(/^printf '%s\\n' '--shapes='\\''Input:0'\\'':1x16' /)
    const r = spawnSync('sh', ['-c', line], { encoding: 'utf8' })
    expect(r.status).toBe(0)
    expect(r.stdout.split('\n').slice(0, -1)).toEqual(words)
  })

  it('leaves plain words alone, and quotes a program path with "=" (sh would read it as an assignment)', () => {
    expect(shellCommand('/usr/src/tensorrt/bin/trtexec', ['--onnx=/m/model.onnx', '--minShapes=x:1x3,y:2'])).toBe('/usr/src/tensorrt/bin/trtexec --onnx=/m/model.onnx --minShapes=x:1x3,y:2')
    expect(shellCommand('/opt/a=b/trtexec', [])).toBe("'/opt/a=b/trtexec'")
  })
})
