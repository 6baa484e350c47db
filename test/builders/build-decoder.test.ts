/**
 * build for decoders against the trtexec double (issue 13, acceptance 5): one profile holding the prefill
 * and the decode steps (the min/opt/max of every input, attention_mask sized past + seq), --past checked,
 * and the validation a prefill with an empty past run through trtexec against onnxruntime.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildEngine } from '../../src/builders/build.js'
import { exportModel } from '../../src/export/index.js'
import { ModelforgeError } from '../../src/lib/errors.js'
import { doubleEnv, doubleRuns } from '../helpers/build-helpers.js'
import { repoRoot } from '../helpers/store-helpers.js'

let dir: string
let llama: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mf-build-decoder-'))
  await exportModel({ model: join(repoRoot, 'fixtures', 'hf-tiny-decoders', 'tiny-llama'), out: join(dir, 'llama'), exporter: 'native' })
  llama = join(dir, 'llama', 'model.onnx')
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

let n = 0
async function place() {
  const home = join(dir, `case-${n++}`)
  await mkdir(home)
  return { home, out: join(home, 'out'), env: doubleEnv(home) }
}

const flag = (argv: string[], name: string): string | undefined => argv.find((a) => a.startsWith(`${name}=`))?.slice(name.length + 1)
const spec = (text: string | undefined): Record<string, string> => Object.fromEntries((text ?? '').split(',').map((p) => {
  const at = p.lastIndexOf(':')
  return [p.slice(0, at), p.slice(at + 1)]
}))

describe('build for decoders', () => {
  it('one profile for prefill and decode: the ranges of every input, and a validated prefill', async () => {
    const { out, env, home } = await place()
    const r = await buildEngine({ onnx: llama, out, env, batch: '1:2:4', seq: '1:16:64', past: '0:32:100' })
    expect(r.profile).toEqual({
      input_ids: { min: [1, 1], opt: [2, 16], max: [4, 64] },
      attention_mask: { min: [1, 1], opt: [2, 48], max: [4, 128] },
      position_ids: { min: [1, 1], opt: [2, 16], max: [4, 64] },
      'past_key_values.0.key': { min: [1, 2, 0, 8], opt: [2, 2, 32, 8], max: [4, 2, 100, 8] },
      'past_key_values.0.value': { min: [1, 2, 0, 8], opt: [2, 2, 32, 8], max: [4, 2, 100, 8] },
      'past_key_values.1.key': { min: [1, 2, 0, 8], opt: [2, 2, 32, 8], max: [4, 2, 100, 8] },
      'past_key_values.1.value': { min: [1, 2, 0, 8], opt: [2, 2, 32, 8], max: [4, 2, 100, 8] },
    })
    const runs = doubleRuns(home).map((run) => run.argv)
    const build = runs.find((a) => a.some((x) => x.startsWith('--onnx=')))
    const validation = runs.find((a) => a.some((x) => x.startsWith('--loadEngine=')) && a.some((x) => x.startsWith('--loadInputs=')))
    expect(spec(flag(build!, '--minShapes'))).toMatchObject({ input_ids: '1x1', attention_mask: '1x1', 'past_key_values.0.key': '1x2x0x8' })
    expect(spec(flag(build!, '--optShapes'))).toMatchObject({ input_ids: '2x16', attention_mask: '2x48', 'past_key_values.1.value': '2x2x32x8' })
    expect(spec(flag(build!, '--maxShapes'))).toMatchObject({ input_ids: '4x64', attention_mask: '4x128', 'past_key_values.0.key': '4x2x100x8' })
    // The validation run: a prefill of 16 tokens with an empty past, compared with onnxruntime.
    expect(spec(flag(validation!, '--shapes'))).toMatchObject({ input_ids: '2x16', attention_mask: '2x16', 'past_key_values.0.key': '2x2x0x8' })
    expect(r.inferenceShapes).toMatchObject({ input_ids: [2, 16], attention_mask: [2, 16], 'past_key_values.0.key': [2, 2, 0, 8] })
    expect(r.validation!.passed).toBe(true)
    expect(r.validation!.outputs.map((o) => o.name)).toContain('logits')
    expect(r.validation!.outputs.map((o) => o.name)).toContain('present.1.value')
  })

  it('defaults: the past up to the last position but one, the mask up to the model\'s 128 positions', async () => {
    const { out, env } = await place()
    const r = await buildEngine({ onnx: llama, out, env, skipValidation: true, skipBenchmark: true })
    expect(r.profile['past_key_values.0.key']).toEqual({ min: [1, 2, 0, 8], opt: [8, 2, 63, 8], max: [32, 2, 127, 8] })
    expect(r.profile.attention_mask).toEqual({ min: [1, 1], opt: [8, 128], max: [32, 128] })
    expect(r.profile.input_ids).toEqual({ min: [1, 1], opt: [8, 128], max: [32, 128] })
  })

  it('a past with no room for the next token, and --past on an encoder, are exit 2 before trtexec runs', async () => {
    const { out, env, home } = await place()
    const err = await buildEngine({ onnx: llama, out, env, past: '0:64:128' }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ModelforgeError)
    expect(err).toMatchObject({ exitCode: 2, code: 'INVALID_SHAPE_RANGE' })
    expect((err as Error).message).toMatch(/--past 0:64:128 leaves no position for the next token: the model takes 128 positions/)
    const bert = join(repoRoot, 'fixtures', 'hf-tiny', 'tiny-bert', 'model.onnx')
    await expect(buildEngine({ onnx: bert, out, env, past: '0:1:2' })).rejects.toMatchObject({ exitCode: 2, message: expect.stringMatching(/has no past_key_values inputs/) })
    await expect(buildEngine({ onnx: llama, out, env, past: '4:2:8' })).rejects.toMatchObject({ exitCode: 2, code: 'INVALID_SHAPE_RANGE' })
    // trtexec was asked its version (--help) at most, never to build.
    expect(doubleRuns(home).filter((run) => run.argv.some((a) => a.startsWith('--onnx=')))).toEqual([])
  })
})
