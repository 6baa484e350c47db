/**
 * An explicit --task is a promise about the exported model's outputs (src/export/task-outputs.ts): after
 * produce, whatever the exporter, the model must have the task's outputs by name and rank, else exit 2 with
 * nothing written to --out. optimum-cli is stood in for by a script that writes a given model.onnx.
 */
import { chmod, copyFile, mkdir, readdir, rm, writeFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { exportModel } from '../../src/export/index.js'
import { declaredOutputs, taskOutputProblem, TASK_OUTPUTS } from '../../src/export/task-outputs.js'
import { readModel } from '../../src/onnx/proto.js'
import { FIXTURES, tempDir, expectFailure } from './export-helpers.js'

let dir: string
beforeAll(async () => {
  dir = await tempDir('task')
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

const fail = expectFailure

/** An optimum-cli stand-in that writes a copy of `model` as <out>/model.onnx, whatever it is asked. */
async function fakeOptimum(name: string, model: string): Promise<string> {
  const script = join(dir, `${name}.cjs`)
  await writeFile(script, `#!/usr/bin/env node
const { copyFileSync } = require('node:fs')
copyFileSync(${JSON.stringify(model)}, require('node:path').join(process.argv[process.argv.length - 1], 'model.onnx'))
`)
  await chmod(script, 0o755)
  return script
}

const BERT_ONNX = join(FIXTURES, 'tiny-bert', 'model.onnx')
const CLASSIFIER_ONNX = join(FIXTURES, 'tiny-bert-classifier', 'model.onnx')

describe('the task output table', () => {
  it('names the outputs of every task the exporter infers, with their rank', () => {
    expect(TASK_OUTPUTS['feature-extraction']!.map((o) => [o.name, o.dims.length])).toEqual([['last_hidden_state', 3]])
    expect(TASK_OUTPUTS['text-classification']!.map((o) => [o.name, o.dims.length])).toEqual([['logits', 2]])
    expect(TASK_OUTPUTS['sentence-embedding']!.map((o) => [o.name, o.dims.length])).toEqual([['sentence_embedding', 2]])
    expect(TASK_OUTPUTS['fill-mask']!.map((o) => [o.name, o.dims.length])).toEqual([['logits', 3]])
    expect(TASK_OUTPUTS['token-classification']!.map((o) => [o.name, o.dims.length])).toEqual([['logits', 3]])
    expect(TASK_OUTPUTS['question-answering']!.map((o) => o.name)).toEqual(['start_logits', 'end_logits'])
    for (const task of ['multiple-choice', 'text-generation', 'text2text-generation', 'image-classification']) expect(TASK_OUTPUTS[task]).toBeDefined()
  })

  it('says what is wrong: a missing name, a wrong rank; a shape the model does not declare is not held against it', async () => {
    const bert = declaredOutputs(await readModel(BERT_ONNX))
    const classifier = declaredOutputs(await readModel(CLASSIFIER_ONNX))
    expect(bert.map((o) => o.name)).toEqual(['last_hidden_state', 'pooler_output'])
    expect(taskOutputProblem('feature-extraction', bert)).toBeUndefined()
    expect(taskOutputProblem('fill-mask', bert)).toBe('has no logits output')
    expect(taskOutputProblem('question-answering', bert)).toBe('has no start_logits and end_logits outputs')
    expect(taskOutputProblem('text-classification', classifier)).toBeUndefined()
    expect(taskOutputProblem('token-classification', classifier)).toMatch(/^has logits of rank 2 \(\[batch, 3\]\) instead of rank 3 \(\[batch_size, sequence_length, num_labels\]\)$/)
    expect(taskOutputProblem('fill-mask', [{ name: 'logits' }])).toBeUndefined()
    expect(taskOutputProblem('some-new-task', bert)).toBeUndefined()
  })
})

describe('an explicit --task must find its outputs in the exported model', () => {
  it('repo: --task fill-mask on a base BERT that ships model.onnx is refused, not copied (exit 2, nothing in --out)', async () => {
    const out = join(dir, 'repo-fill-mask')
    const err = await fail(exportModel({ model: join(FIXTURES, 'tiny-bert'), out, exporter: 'repo', task: 'fill-mask' }))
    expect(err).toMatchObject({ exitCode: 2, code: 'VARIANT_TASK_MISMATCH' })
    expect(err.message).toBe('model.onnx has no logits output, which --task fill-mask needs (it has last_hidden_state, pooler_output)')
    expect(existsSync(out)).toBe(false)
  })

  it('repo: a logits output of the wrong rank does not pass for token-classification', async () => {
    const out = join(dir, 'repo-token')
    const err = await fail(exportModel({ model: join(FIXTURES, 'tiny-bert-classifier'), out, exporter: 'repo', task: 'token-classification' }))
    expect(err).toMatchObject({ exitCode: 2, code: 'VARIANT_TASK_MISMATCH' })
    expect(err.message).toMatch(/^model\.onnx has logits of rank 2 \(\[batch, 3\]\) instead of rank 3 .*, which --task token-classification needs/)
    expect(existsSync(out)).toBe(false)
  })

  it('auto: the shipped model without the task output is passed over, never copied under another task', async () => {
    const out = join(dir, 'auto-fill-mask')
    const err = await fail(exportModel({ model: join(FIXTURES, 'tiny-bert'), out, task: 'fill-mask', optimumCli: 'modelforge-test-no-such-optimum-cli' }))
    // native does not do fill-mask, so auto ends at optimum, which this machine does not have.
    expect(err).toMatchObject({ exitCode: 3, code: 'TOOL_NOT_FOUND' })
    expect(existsSync(out)).toBe(false)
  })

  it('optimum: a model without the task output is refused (exit 2, TASK_OUTPUT_MISSING), one with it passes', async () => {
    const wrong = await fakeOptimum('writes-base', BERT_ONNX)
    const out = join(dir, 'optimum-wrong')
    const err = await fail(exportModel({ model: join(FIXTURES, 'tiny-bert'), out, exporter: 'optimum', task: 'fill-mask', optimumCli: wrong }))
    expect(err).toMatchObject({ exitCode: 2, code: 'TASK_OUTPUT_MISSING' })
    expect(err.message).toBe('The model optimum-cli wrote has no logits output, which --task fill-mask needs (it has last_hidden_state, pooler_output)')
    expect(existsSync(out)).toBe(false)

    const right = await fakeOptimum('writes-classifier', CLASSIFIER_ONNX)
    const ok = await exportModel({ model: join(FIXTURES, 'tiny-bert-classifier'), out: join(dir, 'optimum-right'), exporter: 'optimum', task: 'text-classification', optimumCli: right })
    expect(ok).toMatchObject({ exporter: 'optimum', task: 'text-classification' })
    expect(ok.warnings).toBeUndefined()
    const rank = await fail(exportModel({ model: join(FIXTURES, 'tiny-bert-classifier'), out: join(dir, 'optimum-rank'), exporter: 'optimum', task: 'token-classification', optimumCli: right }))
    expect(rank).toMatchObject({ exitCode: 2, code: 'TASK_OUTPUT_MISSING', message: expect.stringMatching(/has logits of rank 2/) })
  })

  it('native: a task it does not export stays UNSUPPORTED_TASK', async () => {
    const err = await fail(exportModel({ model: join(FIXTURES, 'tiny-bert'), out: join(dir, 'native-fill-mask'), exporter: 'native', task: 'fill-mask' }))
    expect(err).toMatchObject({ exitCode: 2, code: 'UNSUPPORTED_TASK' })
  })

  it('every native task passes its own check', async () => {
    const r = await exportModel({ model: join(FIXTURES, 'tiny-bert-classifier'), out: join(dir, 'native-cls'), exporter: 'native', task: 'text-classification' })
    expect(r.outputs.map((o) => o.name)).toEqual(['logits'])
    expect(r.warnings).toBeUndefined()
  })

  it('a task whose outputs modelforge does not know is exported with a warning that they were not checked', async () => {
    const out = join(dir, 'unknown-task')
    const r = await exportModel({ model: join(FIXTURES, 'tiny-bert'), out, exporter: 'repo', task: 'zero-shot-classification' })
    expect(r.warnings).toEqual([
      'modelforge does not know which outputs task zero-shot-classification has, so the outputs of model.onnx (last_hidden_state, pooler_output) were not checked against it',
    ])
  })

  it('without --task, a copied model that lacks the inferred task output is exported as it is, with a warning', async () => {
    const d = join(dir, 'st-plain')
    await mkdir(join(d, '1_Pooling'), { recursive: true })
    for (const f of await readdir(join(FIXTURES, 'tiny-bert'))) await copyFile(join(FIXTURES, 'tiny-bert', f), join(d, f))
    await writeFile(join(d, 'modules.json'), JSON.stringify([
      { idx: 0, name: '0', path: '', type: 'sentence_transformers.models.Transformer' },
      { idx: 1, name: '1', path: '1_Pooling', type: 'sentence_transformers.models.Pooling' },
    ]))
    await writeFile(join(d, '1_Pooling', 'config.json'), JSON.stringify({ pooling_mode_mean_tokens: true }))
    const r = await exportModel({ model: d, out: join(d, 'out'), exporter: 'repo' })
    expect(r.task).toBe('sentence-embedding')
    expect(r.warnings).toEqual([
      'model.onnx has no sentence_embedding output, which task sentence-embedding needs; it was exported as it is since --task was not given (pass --task to require the outputs of a task)',
    ])
  })
})
