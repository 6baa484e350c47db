/**
 * The steps exportModel reports through its Progress callback (src/lib/progress.ts): one plan, then each
 * step with the title a renderer shows when it ends.
 */
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { exportModel } from '../../src/export/index.js'
import { type ProgressEvent } from '../../src/lib/progress.js'
import { FIXTURES, tempDir } from './export-helpers.js'

let dir: string
beforeAll(async () => {
  dir = await tempDir('steps')
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

/** The title each step ended with (its last title event, or the one its end carried). */
function finalTitles(events: ProgressEvent[]): Record<string, string> {
  const titles: Record<string, string> = {}
  for (const e of events) {
    if (e.type === 'plan') for (const s of e.steps) titles[s.id] = s.title
    if (e.type === 'title' || (e.type === 'end' && e.title)) titles[e.step] = (e as { title: string }).title
  }
  return titles
}

describe('export progress', () => {
  it('plans five steps and names the model, the exporter with its reason, the smoke run and --out', async () => {
    const events: ProgressEvent[] = []
    const out = join(dir, 'repo')
    await exportModel({ model: join(FIXTURES, 'tiny-bert-classifier'), out, progress: (e) => events.push(e) })
    const plan = events.find((e) => e.type === 'plan')
    expect(plan).toEqual({
      type: 'plan',
      steps: [
        { id: 'resolve', title: `Resolving ${join(FIXTURES, 'tiny-bert-classifier')}` },
        { id: 'choose', title: 'Reading config and choosing the exporter' },
        { id: 'export', title: 'Exporting' },
        { id: 'smoke', title: 'Smoke run in onnxruntime' },
        { id: 'write', title: `Writing ${out}` },
      ],
    })
    expect(finalTitles(events)).toEqual({
      resolve: `Model: ${join(FIXTURES, 'tiny-bert-classifier')}`,
      choose: 'Exporter repo (the repository ships model.onnx), task text-classification',
      export: 'Copying model.onnx',
      smoke: 'Smoke run in onnxruntime: logits [2, 3]',
      write: `Writing ${out}`,
    })
    expect(events.filter((e) => e.type === 'end').map((e) => [e.step, 'error' in e])).toEqual([
      ['resolve', false], ['choose', false], ['export', false], ['smoke', false], ['write', false],
    ])
  })

  it('the native exporter says what it writes; an exporter asked for by name has no reason', async () => {
    const events: ProgressEvent[] = []
    await exportModel({ model: join(FIXTURES, 'tiny-bert'), out: join(dir, 'bert'), exporter: 'native', progress: (e) => events.push(e) })
    expect(finalTitles(events)).toMatchObject({
      choose: 'Exporter native, task feature-extraction',
      export: expect.stringMatching(/^Writing model\.onnx in fp32 \([\d.]+ KiB of safetensors\)$/),
      smoke: 'Smoke run in onnxruntime: last_hidden_state [2, 8, 32], pooler_output [2, 32]',
    })
  })

  it('a failing step ends with its error and the steps after it never start', async () => {
    const events: ProgressEvent[] = []
    const err = await exportModel({ model: join(FIXTURES, 'tiny-bert'), out: join(dir, 'fails'), exporter: 'repo', variant: 'quantized', progress: (e) => events.push(e) }).catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'REPO_ONNX_NOT_FOUND' })
    expect(events.filter((e) => e.type === 'start').map((e) => e.step)).toEqual(['resolve', 'choose', 'export'])
    expect(events.find((e) => e.type === 'end' && e.step === 'export')).toMatchObject({ error: err })
  })
})
