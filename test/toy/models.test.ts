import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { decodeModel } from '../../src/onnx/proto.js'
import { checkToyModel } from '../../src/toy/check.js'
import { bagOfWords, buildToyModel, kindFor, tokenize, VOCAB } from '../../src/toy/models.js'
import { seededRng } from '../../src/lib/random.js'
import { ModelStore } from '../../src/publish/store.js'
import { createToyStore } from '../../src/toy/toy-store.js'
import { makeTemp, removeTemps, snapshot, writeTree } from '../helpers/store-helpers.js'

afterAll(removeTemps)

describe('toy models', () => {
  it('are deterministic per agent and version, and differ between versions', () => {
    const a = buildToyModel('scout', 'v1', 'classifier').files['model.onnx']
    expect(Buffer.from(buildToyModel('scout', 'v1', 'classifier').files['model.onnx'] as Uint8Array)).toEqual(Buffer.from(a as Uint8Array))
    expect(Buffer.from(buildToyModel('scout', 'v2', 'classifier').files['model.onnx'] as Uint8Array)).not.toEqual(Buffer.from(a as Uint8Array))
    const r1 = seededRng('x')
    const r2 = seededRng('x')
    expect([r1(), r1()]).toEqual([r2(), r2()])
  })

  it('decode as ONNX with the documented graph', () => {
    const cls = decodeModel(buildToyModel('analyst', 'v1', 'classifier').files['model.onnx'] as Uint8Array)
    expect(cls.graph!.node!.map((n) => n.opType)).toEqual(['MatMul', 'Add', 'Relu', 'MatMul', 'Add', 'Softmax'])
    expect(cls.graph!.input!.map((i) => i.name)).toEqual(['bow'])
    const emb = decodeModel(buildToyModel('memory', 'v1', 'embedder').files['model.onnx'] as Uint8Array)
    expect(emb.graph!.node!.map((n) => n.opType)).toEqual(['Gather', 'ReduceMean', 'MatMul', 'Tanh', 'LpNormalization'])
  })

  it.each([['scout', 'classifier'], ['memory', 'embedder']] as const)('%s runs in onnxruntime-node', async (agent, kind) => {
    const dir = makeTemp()
    const model = buildToyModel(agent, 'v1', kind)
    writeTree(dir, model.files)
    const check = await checkToyModel(dir)
    expect(check.shape).toEqual(kind === 'classifier' ? [2, 3] : [2, 24])
    if (kind === 'classifier') expect(check.predictions).toEqual(['relevant', 'irrelevant'])
    else expect(Math.abs(check.similarity!)).toBeLessThanOrEqual(1)
  })

  it('the planted keywords make the analyst read sentiment, in every version', async () => {
    for (const version of ['v1', 'v2', 'v7']) {
      const dir = makeTemp()
      writeTree(dir, buildToyModel('analyst', version, 'classifier').files)
      expect((await checkToyModel(dir)).predictions).toEqual(['positive', 'negative'])
    }
  })

  it('the check fails on a model whose outputs are wrong', async () => {
    const dir = makeTemp()
    const model = buildToyModel('scout', 'v1', 'classifier')
    writeTree(dir, model.files)
    // Claim more labels than the model outputs.
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...model.config, num_labels: 5 }))
    await expect(checkToyModel(dir)).rejects.toMatchObject({ exitCode: 4, code: 'TOY_MODEL_CHECK_FAILED', message: expect.stringContaining('expected [2, 5]') })
  })

  it('kinds and tokenizer', () => {
    expect(['scout', 'synthesizer', 'analyst', 'memory'].map((a, i) => kindFor(a, i))).toEqual(['classifier', 'embedder', 'classifier', 'embedder'])
    expect(kindFor('other', 0)).toBe('classifier')
    expect(tokenize('The market, RALLY! zebra')).toEqual([1, 4, 5, 0])
    expect(bagOfWords('the the model')[VOCAB.indexOf('the')]).toBe(2)
  })
})

describe('createToyStore', () => {
  it('refuses a leftover staging dir of a version it would make before writing anything (exit 5)', async () => {
    const root = makeTemp()
    const store = new ModelStore(root)
    await store.stage('memory', 'v1')
    const before = snapshot(root)
    await expect(createToyStore(root, { agents: ['scout', 'memory'], versions: 1 })).rejects.toMatchObject({
      exitCode: 5, message: expect.stringContaining('already holds memory v1 (finalized or staged)'), hint: expect.stringContaining('store gc'),
    })
    expect(snapshot(root)).toEqual(before)
  })
})
