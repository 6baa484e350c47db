/**
 * Calibration data: text and JSONL tokenized with the fixture's tokenizer.json (the ids the tokenizer
 * library gives, padded and masked), ONNX test-data directories as batches, and every refusal.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Tokenizer } from '@huggingface/tokenizers'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ModelforgeError } from '../../src/lib/errors.js'
import { DataType, encodeTensor } from '../../src/onnx/proto.js'
import { loadCalibData, type CalibDataOptions } from '../../src/validate/calib-data.js'
import { loadModel, type ValueInfo } from '../../src/validate/runtime.js'
import type { TensorMap } from '../../src/validate/tensors.js'

const BERT = 'fixtures/hf-tiny/tiny-bert/model.onnx'
let dir: string
let inputs: ValueInfo[]
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mf-calib-data-'))
  const m = await loadModel(BERT)
  inputs = m.inputs
  await m.session.release()
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

async function all(o: Omit<CalibDataOptions, 'inputs' | 'modelPath'> & Partial<CalibDataOptions>): Promise<TensorMap[]> {
  const data = await loadCalibData({ inputs, modelPath: BERT, ...o })
  const out: TensorMap[] = []
  for await (const b of data.batches()) out.push(b)
  return out
}

async function failure(o: Partial<CalibDataOptions>): Promise<ModelforgeError> {
  const err = await all({ data: '', batchSize: 2, seqLen: 8, ...o }).then(() => undefined, (e: unknown) => e)
  if (!(err instanceof ModelforgeError)) throw new Error(`expected our error, got ${String(err)}`)
  return err
}

describe('text calibration data', () => {
  it('tokenizes each line as the tokenizer does, pads to --seq-len with mask 0, batches of --batch-size', async () => {
    const file = join(dir, 'calib.txt')
    await writeFile(file, 'the model store is fast\n\n   \na b c\nslow engine news\n')
    const batches = await all({ data: file, batchSize: 2, seqLen: 8 })
    expect(batches.map((b) => b.input_ids!.dims)).toEqual([[2, 8], [1, 8]])
    const tok = new Tokenizer(JSON.parse(await readFile('fixtures/hf-tiny/tiny-bert/tokenizer.json', 'utf8')), JSON.parse(await readFile('fixtures/hf-tiny/tiny-bert/tokenizer_config.json', 'utf8')))
    const want = tok.encode('a b c').ids
    const row = [...(batches[0]!.input_ids!.data as BigInt64Array).slice(8, 16)].map(Number)
    expect(row).toEqual([...want, ...new Array(8 - want.length).fill(0)])
    expect([...(batches[0]!.attention_mask!.data as BigInt64Array).slice(8, 16)].map(Number)).toEqual([...want.map(() => 1), ...new Array(8 - want.length).fill(0)])
    expect([...(batches[0]!.token_type_ids!.data as BigInt64Array)].every((v) => v === 0n)).toBe(true)
  })

  it('truncates a long line to --seq-len, keeping the closing [SEP]', async () => {
    const file = join(dir, 'long.txt')
    await writeFile(file, 'a b c d e f g h i j k l m n o p\n')
    const [b] = await all({ data: file, batchSize: 4, seqLen: 6 })
    const ids = [...(b!.input_ids!.data as BigInt64Array)].map(Number)
    expect(ids).toHaveLength(6)
    expect(ids[0]).toBe(2)
    expect(ids[5]).toBe(3)
  })

  it('reads JSONL "text" fields and names the line that is not JSON or has no text', async () => {
    const file = join(dir, 'calib.jsonl')
    await writeFile(file, '{"text": "the model"}\n{"text": "fast", "label": 1}\n')
    const data = await loadCalibData({ data: file, inputs, modelPath: BERT, batchSize: 8, seqLen: 8 })
    expect(data).toMatchObject({ kind: 'jsonl', samples: 2 })
    const bad = join(dir, 'bad.jsonl')
    await writeFile(bad, '{"text": "ok"}\nnot json\n')
    expect(await failure({ data: bad })).toMatchObject({ code: 'CALIB_DATA_INVALID', exitCode: 2, message: expect.stringMatching(/line 2/) })
    await writeFile(bad, '{"text": "ok"}\n{"label": 3}\n')
    expect(await failure({ data: bad })).toMatchObject({ code: 'CALIB_DATA_INVALID', message: expect.stringMatching(/line 2 has no string "text"/) })
  })

  it('refuses missing data (exit 6), empty data, and text without a tokenizer (hint: --tokenizer)', async () => {
    expect(await failure({ data: join(dir, 'absent.txt') })).toMatchObject({ code: 'CALIB_DATA_NOT_FOUND', exitCode: 6 })
    const empty = join(dir, 'empty.txt')
    await writeFile(empty, '\n \n')
    expect(await failure({ data: empty })).toMatchObject({ code: 'CALIB_DATA_EMPTY', exitCode: 2 })
    const file = join(dir, 'one.txt')
    await writeFile(file, 'the model\n')
    const lonely = await failure({ data: file, modelPath: join(dir, 'model.onnx') })
    expect(lonely).toMatchObject({ code: 'TOKENIZER_REQUIRED', exitCode: 2, hint: expect.stringMatching(/--tokenizer/) })
    expect(await failure({ data: file, tokenizer: join(dir, 'nope') })).toMatchObject({ code: 'TOKENIZER_NOT_FOUND', exitCode: 6 })
    const broken = join(dir, 'tokenizer.json')
    await writeFile(broken, '{"model": {"type": "NoSuchModel"}}')
    expect(await failure({ data: file, tokenizer: broken })).toMatchObject({ code: 'TOKENIZER_INVALID', exitCode: 4 })
    expect((await all({ data: file, tokenizer: 'fixtures/hf-tiny/tiny-bert', modelPath: join(dir, 'model.onnx'), batchSize: 1, seqLen: 4 }))).toHaveLength(1)
  })

  it('refuses text for a model whose inputs a tokenizer cannot fill', async () => {
    const file = join(dir, 'one.txt')
    await writeFile(file, 'the model\n')
    expect(await failure({ data: file, inputs: [{ name: 'x', dtype: 'float32', shape: ['batch', 16], isTensor: true }] })).toMatchObject({ code: 'CALIB_DATA_INVALID', hint: expect.stringMatching(/test-data/) })
  })
})

describe('ONNX test-data calibration data', () => {
  async function writeSet(root: string, i: number, tensors: { name: string; data: BigInt64Array | Float32Array; dtype: number }[]) {
    const set = join(root, `test_data_set_${i}`)
    await mkdir(set, { recursive: true })
    for (const [k, t] of tensors.entries()) {
      await writeFile(join(set, `input_${k}.pb`), encodeTensor({ name: t.name, dims: [1, 4], dataType: t.dtype, rawData: new Uint8Array(t.data.buffer) }))
    }
  }
  const ids = (v: number) => ({ name: 'input_ids', data: new BigInt64Array(4).fill(BigInt(v)), dtype: DataType.INT64 })
  const mask = { name: 'attention_mask', data: new BigInt64Array(4).fill(1n), dtype: DataType.INT64 }
  const types = { name: 'token_type_ids', data: new BigInt64Array(4), dtype: DataType.INT64 }

  it('yields each data set as one batch, in order', async () => {
    const root = join(dir, 'sets')
    for (const i of [0, 1, 2, 10]) await writeSet(root, i, [ids(i + 5), mask, types])
    const data = await loadCalibData({ data: root, inputs, modelPath: BERT, batchSize: 99, seqLen: 99 })
    expect(data).toMatchObject({ kind: 'onnx-test-data', samples: 4 })
    const batches = await all({ data: root, batchSize: 1, seqLen: 1 })
    expect(batches.map((b) => Number((b.input_ids!.data as BigInt64Array)[0]))).toEqual([5, 6, 7, 15])
  })

  it('refuses a directory without data sets, a set lacking an input, an input of the wrong dtype', async () => {
    const empty = join(dir, 'no-sets')
    await mkdir(empty)
    expect(await failure({ data: empty })).toMatchObject({ code: 'CALIB_DATA_EMPTY' })
    const lacking = join(dir, 'lacking')
    await writeSet(lacking, 0, [ids(1), mask])
    expect(await failure({ data: lacking })).toMatchObject({ code: 'CALIB_DATA_INVALID', message: expect.stringMatching(/token_type_ids/) })
    const wrong = join(dir, 'wrong')
    await writeSet(wrong, 0, [ids(1), mask, { name: 'token_type_ids', data: new Float32Array(4), dtype: DataType.FLOAT }])
    expect(await failure({ data: wrong })).toMatchObject({ code: 'CALIB_DATA_INVALID', message: expect.stringMatching(/float32/) })
  })
})
