/** runBuildEngine as a library call: its progress events, the fp32 self-check, what it leaves after failing. */
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ProgressEvent } from '../../src/lib/progress.js'
import { BUILD_ENGINE_STEPS, runBuildEngine } from '../../src/pipeline/index.js'
import { repoRoot } from '../helpers/store-helpers.js'

const TINY = join(repoRoot, 'fixtures', 'hf-tiny', 'tiny-bert')
let dir: string
let bare: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mf-pipeline-'))
  // The checkpoint alone: no shipped ONNX, no reference outputs.
  bare = join(dir, 'bare')
  mkdirSync(bare)
  for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'vocab.txt']) copyFileSync(join(TINY, f), join(bare, f))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

describe('runBuildEngine', () => {
  it('plans its steps once, reports each to its end, and checks an fp32 export against onnxruntime with optimizations off', async () => {
    const events: ProgressEvent[] = []
    const store = join(dir, 'store-a')
    const r = await runBuildEngine({ agent: 'a', modelId: bare, target: 'onnx', store, stepSummary: dir, progress: (e) => events.push(e) })
    const top = events.filter((e) => e.type === 'plan' && e.parent === undefined)
    expect(top).toEqual([{ type: 'plan', steps: BUILD_ENGINE_STEPS }])
    const ends = events.filter((e): e is Extract<ProgressEvent, { type: 'end' }> => e.type === 'end' && !e.step.includes('/'))
    expect(ends.map((e) => e.step)).toEqual(BUILD_ENGINE_STEPS.map((s) => s.id))
    expect(ends.filter((e) => e.skipped).map((e) => e.step)).toEqual(['quantize', 'build'])
    // The export's own steps are sub-steps of the pipeline's.
    expect(events.some((e) => e.type === 'plan' && e.parent === 'export')).toBe(true)

    expect(r.metrics.validation).toMatchObject({ reference: 'model.onnx in onnxruntime with graph optimizations off', precision: 'fp32', passed: true })
    expect(r.artifacts).toEqual([{ path: 'model.onnx', kind: 'onnx', precision: 'fp32', role: 'serve' }])
    const version = join(store, 'a', 'versions', r.version)
    expect(existsSync(join(version, 'fp32'))).toBe(false)
    expect(JSON.parse(readFileSync(join(version, 'validation.json'), 'utf8'))).toMatchObject({ passed: true, inputsFrom: 'generated' })
    expect(JSON.parse(readFileSync(join(version, 'manifest.json'), 'utf8')).build.exporter).toBe('native')
    // The summary file was a directory: the version stands, and the result says what was not written.
    expect(r.warnings.some((w) => w.startsWith('GITHUB_STEP_SUMMARY not written: Cannot open'))).toBe(true)
    expect(r.timings.steps.map((s) => s.id)).toEqual(BUILD_ENGINE_STEPS.map((s) => s.id))
  })

  it('a failed export names its step and leaves no staging directory and no current', async () => {
    const broken = join(dir, 'broken')
    mkdirSync(broken)
    writeFileSync(join(broken, 'config.json'), '{"model_type": "bert", ')
    const store = join(dir, 'store-b')
    const err = await runBuildEngine({ agent: 'a', modelId: broken, target: 'onnx', store }).catch((e: unknown) => e) as { exitCode: number; message: string; details: { step: string } }
    expect(err.exitCode).toBe(4)
    expect(err.details.step).toBe('export')
    expect(err.message).toMatch(/^build-engine failed at export \(exporting to onnx\): /)
    expect(readdirSync(join(store, 'a', 'versions'))).toEqual([])
    expect(existsSync(join(store, 'a', 'current'))).toBe(false)
  })

  it('an aborted signal stops before the next step, exit 130, nothing staged', async () => {
    const controller = new AbortController()
    const store = join(dir, 'store-c')
    const err = await runBuildEngine({
      agent: 'a', modelId: bare, target: 'onnx', store, signal: controller.signal,
      progress: (e) => { if (e.type === 'end' && e.step === 'export') controller.abort() },
    }).catch((e: unknown) => e) as { exitCode: number; code: string }
    expect(err).toMatchObject({ exitCode: 130, code: 'INTERRUPTED' })
    expect(readdirSync(join(store, 'a', 'versions'))).toEqual([])
  })
})
