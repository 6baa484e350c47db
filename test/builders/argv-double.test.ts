/**
 * The argument lists run: buildArgv's and validateArgv's output for TensorRT 8.6.1, 10.16.1 and 11.1.0 given
 * to the trtexec double (test/helpers/trtexec-double, which takes each version's options as that release's
 * sampleOptions.cpp does). A flag a version lacks, a space-separated value or a bad shape spec fails there.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { buildArgv, validateArgv } from '../../src/builders/argv.js'
import { planShapes } from '../../src/builders/shapes.js'
import { parseVersionText } from '../../src/builders/trtexec-version.js'
import type { BuildPrecision } from '../../src/builders/types.js'
import { run } from '../../src/lib/exec.js'
import { generateInputs, modelHints } from '../../src/validate/inputs.js'
import { withModel } from '../../src/validate/runtime.js'
import { makeTemp, removeTemps, repoRoot } from '../helpers/store-helpers.js'

afterAll(removeTemps)

const DOUBLE = join(repoRoot, 'test', 'helpers', 'trtexec-double', 'trtexec')
const BERT = join(repoRoot, 'fixtures', 'hf-tiny', 'tiny-bert', 'model.onnx')

describe.skipIf(!existsSync(DOUBLE))('buildArgv and validateArgv through the trtexec double', () => {
  const runDouble = (version: string, argv: string[]) => run(DOUBLE, argv, { reject: false, env: { TRTEXEC_DOUBLE_VERSION: version, TRTEXEC_DOUBLE_BUILD_SECONDS: '0' } })

  it.each([
    ['8.6.1', 'fp16'],
    ['10.16.1', 'fp16'],
    ['11.1.0', 'fp32'],
  ] as const)('TensorRT %s: a dynamic %s build with its benchmark and exports, then a validation run on raw inputs', async (version, precision: BuildPrecision) => {
    const out = makeTemp('mf-argv-double-')
    const inputs = await withModel(BERT, async (m) => m.inputs)
    const plan = planShapes(inputs, { batch: '1:2:4', seq: '1:16:64', maxPositions: (await modelHints(BERT)).maxPositions })
    const engine = join(out, 'engine.plan')
    const build = await runDouble(version, buildArgv({
      version: parseVersionText(version)!,
      onnx: BERT,
      engine,
      precision,
      profile: plan.profile,
      workspaceMiB: 1024,
      builderOptimizationLevel: 3,
      timingCacheFile: join(out, 'timing.cache'),
      layerInfo: join(out, 'layers.json'),
      times: join(out, 'times.json'),
      profileJson: join(out, 'profile.json'),
    }))
    expect(build.exitCode, build.all).toBe(0)
    expect(build.stdout).toMatch(/^&&&& PASSED TensorRT\.trtexec/m)
    // The summary is still printed although --exportProfile attached a profiler (--separateProfileRun).
    expect(build.stdout).toMatch(/=== Performance summary ===/)
    expect(build.stdout).toMatch(/Memory Pools: workspace: 1024 MiB/)
    for (const f of ['engine.plan', 'layers.json', 'times.json', 'profile.json', 'timing.cache']) expect(existsSync(join(out, f)), f).toBe(true)

    // Raw little-endian files of each binding's type: 8.x binds int64 inputs as int32.
    const feeds = generateInputs(inputs, { samples: 2, sequenceLength: 16, vocabSize: 43 })
    const files: Record<string, string> = {}
    for (const [name, t] of Object.entries(feeds)) {
      const data = version.startsWith('8.') ? Int32Array.from(t.data as BigInt64Array, Number) : (t.data as BigInt64Array)
      files[name] = join(out, `${name}.bin`)
      writeFileSync(files[name], new Uint8Array(data.buffer, data.byteOffset, data.byteLength))
    }
    const outputs = join(out, 'outputs.json')
    const check = await runDouble(version, validateArgv({ version: parseVersionText(version)!, engine, shapes: { input_ids: [2, 16], attention_mask: [2, 16], token_type_ids: [2, 16] }, inputs: files, output: outputs }))
    expect(check.exitCode, check.all).toBe(0)
    const exported = JSON.parse(readFileSync(outputs, 'utf8')) as { name: string; dimensions: string }[]
    expect(exported.map((o) => o.dimensions)).toContain('2x16x32')
  })

  it.each(['8.6.1', '10.16.1'])('TensorRT %s: int8 from a Q/DQ model (--int8 --fp16, or --stronglyTyped from 10.12) is explicitly quantized', async (version) => {
    const out = makeTemp('mf-argv-double-')
    const argv = buildArgv({ version: parseVersionText(version)!, onnx: join(repoRoot, 'fixtures', 'polygraphy', 'qdq_conv.onnx'), engine: join(out, 'e.plan'), precision: 'int8', typedModel: 'qdq', profile: {}, skipBenchmark: true })
    expect(argv).toContain(version === '8.6.1' ? '--int8' : '--stronglyTyped')
    const r = await runDouble(version, argv)
    expect(r.exitCode, r.all).toBe(0)
    expect(r.all).not.toMatch(/dummy dynamic range/)
    expect(r.all).not.toMatch(/Disabling BuilderFlag/)
  })

  it('a static model, --skip-benchmark: the build alone, with its layer information', async () => {
    const out = makeTemp('mf-argv-double-')
    const r = await runDouble('10.16.1', buildArgv({
      version: parseVersionText('10.16.1')!,
      onnx: join(repoRoot, 'fixtures', 'polygraphy', 'identity.onnx'),
      engine: join(out, 'engine.plan'),
      precision: 'fp16',
      profile: {},
      layerInfo: join(out, 'layers.json'),
      times: join(out, 'times.json'),
      skipBenchmark: true,
    }))
    expect(r.exitCode, r.all).toBe(0)
    expect(r.stdout).toMatch(/Skipped inference phase since --skipInference is added\./)
    expect(existsSync(join(out, 'layers.json'))).toBe(true)
    expect(existsSync(join(out, 'times.json'))).toBe(false)
  })
})
