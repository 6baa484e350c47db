/**
 * `modelforge export` end to end through bin/run.js (dist/ must be built): the --json envelope, human
 * output with progress on stderr, and documented exit codes for the error cases.
 */
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile, cp } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { openCheckpoint, writeSafetensors, type TensorToWrite } from '../../src/export/safetensors.js'
import { cliEnv, startCli } from '../helpers/hub-cli.js'
import { cli, envelope } from '../helpers/store-helpers.js'

const FIXTURES = fileURLToPath(new URL('../../fixtures/hf-tiny', import.meta.url))
let dir: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mf-e2e-export-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

describe('modelforge export', () => {
  it('exports tiny-bert natively with --json: one JSON object on stdout, exit 0', () => {
    const out = join(dir, 'bert')
    const r = cli(['export', 'fixtures/hf-tiny/tiny-bert', '--out', out, '--exporter', 'native', '--json'])
    expect(r.code).toBe(0)
    const env = envelope(r)
    expect(env.status).toBe(0)
    expect(env.result).toMatchObject({ exporter: 'native', task: 'feature-extraction', modelType: 'bert', opset: 17, externalData: [] })
    expect(env.result.inputs.map((i: { name: string }) => i.name)).toEqual(['input_ids', 'attention_mask', 'token_type_ids'])
    expect(env.result.outputs.map((o: { name: string }) => o.name)).toEqual(['last_hidden_state', 'pooler_output'])
    expect(env.result.smoke.outputs).toEqual({ last_hidden_state: [2, 8, 32], pooler_output: [2, 32] })
    expect(existsSync(join(out, 'model.onnx'))).toBe(true)
  })

  it('default auto export of a fixture (ships model.onnx) with human output and progress on stderr', () => {
    const out = join(dir, 'auto')
    const r = cli(['export', join(FIXTURES, 'tiny-distilbert-classifier'), '--out', out])
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/with the repo exporter \(task text-classification, opset 17\)/)
    expect(r.stdout).toMatch(/outputs: logits float32 \[batch, 2\]/)
    expect(r.stderr).toMatch(/Smoke run in onnxruntime: logits \[2, 2\]/)
  })

  it('--dtype fp16: the native exporter says so; the repo exporter refuses it with exit 2 and a hint', () => {
    const r = cli(['export', join(FIXTURES, 'tiny-distilbert-classifier'), '--out', join(dir, 'fp16'), '--exporter', 'native', '--dtype', 'fp16'])
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/with the native exporter \(task text-classification, opset 17, fp16\)/)
    expect(r.stderr).toMatch(/Writing model\.onnx in fp16/)
    const refused = cli(['export', join(FIXTURES, 'tiny-distilbert-classifier'), '--out', join(dir, 'fp16-repo'), '--dtype', 'fp16', '--json'])
    expect(refused.code).toBe(2)
    expect(envelope(refused).error).toMatchObject({ code: 'EXPORT_DTYPE_UNSUPPORTED' })
    expect(existsSync(join(dir, 'fp16-repo', 'model.onnx'))).toBe(false)
  })

  it('missing config.json: exit 2 with a hint', async () => {
    const d = join(dir, 'noconfig')
    await cp(join(FIXTURES, 'tiny-bert', 'model.safetensors'), join(d, 'model.safetensors'), { recursive: true })
    const r = cli(['export', d, '--out', join(dir, 'noconfig-out'), '--exporter', 'native', '--json'])
    expect(r.code).toBe(2)
    const env = envelope(r)
    expect(env.error).toMatchObject({ code: 'CONFIG_NOT_FOUND' })
    expect(env.error!.hint).toMatch(/config.json/)
  })

  it('unsupported model_type: exit 2 listing the supported types; optimum missing: exit 3', async () => {
    const d = join(dir, 'gpt2')
    await cp(join(FIXTURES, 'tiny-bert'), d, { recursive: true, filter: (s) => !s.endsWith('model.onnx') })
    await writeFile(join(d, 'config.json'), JSON.stringify({ model_type: 'falcon', architectures: ['FalconModel'] }))
    const r = cli(['export', d, '--out', join(dir, 'gpt2-out'), '--exporter', 'native'])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/Error: The native exporter does not support model_type "falcon" \(supported: bert, roberta, xlm-roberta, distilbert\)/)
    expect(r.stderr).toMatch(/Hint: Use --exporter optimum/)
    // auto falls through to optimum-cli, which this machine does not have (PATH without it).
    const r2 = cli(['export', d, '--out', join(dir, 'gpt2-out'), '--json'], { env: { PATH: '/nonexistent' } })
    expect(r2.code).toBe(3)
    expect(envelope(r2).error).toMatchObject({ code: 'TOOL_NOT_FOUND' })
  })

  it('an explicit --task must find its output: --task fill-mask on a base BERT is exit 2, not a copy of its encoder', () => {
    const out = join(dir, 'fill-mask')
    const r = cli(['export', 'fixtures/hf-tiny/tiny-bert', '--out', out, '--exporter', 'repo', '--task', 'fill-mask', '--json'])
    expect(r.code).toBe(2)
    expect(envelope(r).error).toMatchObject({ code: 'VARIANT_TASK_MISMATCH', message: expect.stringContaining('has no logits output, which --task fill-mask needs') })
    expect(existsSync(out)).toBe(false)
    // auto passes over the shipped encoder too, and ends at optimum-cli (missing here).
    const auto = cli(['export', 'fixtures/hf-tiny/tiny-bert', '--out', out, '--task', 'fill-mask', '--json'], { env: { PATH: '/nonexistent' } })
    expect(auto.code).toBe(3)
    expect(envelope(auto).error).toMatchObject({ code: 'TOOL_NOT_FOUND' })
    expect(existsSync(out)).toBe(false)
  })

  it('--out that is an existing file: exit 2 OUT_NOT_DIRECTORY before any work, not EEXIST from mkdir', async () => {
    const file = join(dir, 'a-file')
    await writeFile(file, 'x')
    const r = cli(['export', 'fixtures/hf-tiny/tiny-bert', '--out', file, '--exporter', 'native', '--json'])
    expect(r.code).toBe(2)
    expect(envelope(r).error).toMatchObject({ code: 'OUT_NOT_DIRECTORY', message: `--out ${file} is not a directory: it is a file` })
  })

  it('two exports racing into one --out: one wins, the other exits 5, and nothing of the winner is replaced', async () => {
    // An optimum-cli stand-in that takes 1.5 s to copy the model's own model.onnx: both exports pass the
    // first look at --out long before either commits, so only an exclusive commit keeps them apart.
    const bin = join(dir, 'slow-bin')
    await mkdir(bin)
    await writeFile(join(bin, 'optimum-cli'), `#!/usr/bin/env node
const { copyFileSync } = require('node:fs')
const { join } = require('node:path')
const args = process.argv.slice(2)
setTimeout(() => copyFileSync(join(args[args.indexOf('--model') + 1], 'model.onnx'), join(args.at(-1), 'model.onnx')), 1500)
`)
    await chmod(join(bin, 'optimum-cli'), 0o755)
    const env = cliEnv({ PATH: `${bin}:${process.env.PATH}` })
    const out = join(dir, 'race')
    // Two different models, so the files in --out show whose export they are.
    const [a, b] = await Promise.all(['tiny-bert', 'tiny-roberta'].map((m) =>
      startCli(['export', join(FIXTURES, m), '--out', out, '--exporter', 'optimum', '--json'], env).done))
    expect([a!.code, b!.code].sort(), a!.stdout + b!.stdout).toEqual([0, 5])
    const [winner, loser] = a!.code === 0 ? ['tiny-bert', b!] : ['tiny-roberta', a!]
    expect(['OUT_LOCKED', 'OUTPUT_EXISTS']).toContain(loser.json!.error!.code)
    expect(await readFile(join(out, 'config.json'), 'utf8')).toBe(await readFile(join(FIXTURES, winner, 'config.json'), 'utf8'))
    expect(await readFile(join(out, 'model.onnx'))).toEqual(await readFile(join(FIXTURES, winner, 'model.onnx')))
    expect((await readdir(out)).sort()).toEqual(['config.json', 'model.onnx', 'tokenizer.json', 'tokenizer_config.json', 'vocab.txt'])
  })

  it('a checkpoint with weights config.json does not use: exit 0, a Warning: on stderr, and warnings in the --json result', async () => {
    const d = join(dir, 'extra-weights')
    await cp(join(FIXTURES, 'tiny-bert'), d, { recursive: true, filter: (s) => !s.endsWith('model.onnx') })
    const ck = await openCheckpoint(d)
    const tensors: Record<string, TensorToWrite> = {}
    for (const [n, info] of ck.tensors) tensors[n] = { dtype: 'F32', shape: info.shape, data: await ck.readFloat32(n) }
    await ck.close()
    tensors['mystery.scale'] = { dtype: 'F32', shape: [2], data: new Float32Array(2) }
    await writeSafetensors(join(d, 'model.safetensors'), tensors)
    const human = cli(['export', d, '--out', join(dir, 'extra-out-1')])
    expect(human.code, human.stderr).toBe(0)
    expect(human.stderr).toMatch(/^Warning: Some weights of the checkpoint were not used by the feature-extraction export \(1\): mystery\.scale\. /m)
    const json = cli(['export', d, '--out', join(dir, 'extra-out-2'), '--json'])
    expect(json.code).toBe(0)
    expect(json.stderr).toBe('')
    expect(envelope(json).result.warnings).toEqual([expect.stringContaining('(1): mystery.scale.')])
  })

  it('an existing export is a conflict (exit 5)', () => {
    const r = cli(['export', 'fixtures/hf-tiny/tiny-bert', '--out', join(dir, 'bert'), '--exporter', 'native', '--json'])
    expect(r.code).toBe(5)
    expect(envelope(r).error).toMatchObject({ code: 'OUTPUT_EXISTS' })
  })
})
