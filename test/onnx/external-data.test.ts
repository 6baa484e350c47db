/**
 * External data: the native exporter's >2 GB path (forced here with a small threshold), the reader that
 * follows the locations stored in the model, and the repo exporter copying data files by those names.
 */
import { mkdir, readFile, rename, rm, truncate, writeFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { exportModel } from '../../src/export/index.js'
import {
  DATA_LOCATION_EXTERNAL,
  externalDataFiles,
  externalDataRefs,
  inlineExternalData,
  readExternalTensor,
} from '../../src/onnx/external-data.js'
import { encodeModel, readModel, type ModelProto, type TensorProto } from '../../src/onnx/proto.js'
import { openCheckpoint } from '../../src/export/safetensors.js'
import { type ModelforgeError } from '../../src/lib/errors.js'
import { copyFixture, FIXTURES, loadReference, maxAbsDiff, referenceFeeds, runOnnx, tempDir, type Reference } from '../export/export-helpers.js'

let dir: string
let out: string
let ref: Reference
beforeAll(async () => {
  dir = await tempDir('ext')
  out = join(dir, 'out')
  ref = await loadReference('tiny-bert')
  await exportModel({ model: join(FIXTURES, 'tiny-bert'), out, exporter: 'native', externalDataThreshold: 1 })
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

const initializer = (m: ModelProto, name: string): TensorProto => m.graph!.initializer!.find((t) => t.name === name)!

describe('native export with external data', () => {
  it('writes model.onnx + model.onnx.data that onnxruntime runs to the reference outputs', async () => {
    expect(existsSync(join(out, 'model.onnx.data'))).toBe(true)
    const got = await runOnnx(join(out, 'model.onnx'), referenceFeeds(ref))
    expect(maxAbsDiff(got.last_hidden_state!.data, ref.outputs.last_hidden_state!.data)).toBeLessThan(1e-4)
  })

  it('stores location/offset/length entries, page-aligned offsets, and keeps tensors under 1 KB inline', async () => {
    const model = await readModel(join(out, 'model.onnx'))
    expect(externalDataFiles(model)).toEqual(['model.onnx.data'])
    const refs = externalDataRefs(model)
    expect(refs.length).toBeGreaterThan(10)
    for (const r of refs) {
      expect(r.offset % 4096).toBe(0)
      expect(r.length).toBeGreaterThanOrEqual(1024)
    }
    const emb = initializer(model, 'embeddings.word_embeddings.weight')
    expect(emb.dataLocation).toBe(DATA_LOCATION_EXTERNAL)
    expect(emb.externalData!.map((e) => e.key)).toEqual(['location', 'offset', 'length'])
    const bias = initializer(model, 'embeddings.LayerNorm.bias')
    expect(bias.dataLocation ?? 0).toBe(0)
    expect(bias.rawData!.byteLength).toBe(128)
  })

  it('reads external tensors back byte for byte, and inlines a whole model', async () => {
    const model = await readModel(join(out, 'model.onnx'))
    const bytes = await readExternalTensor(initializer(model, 'embeddings.word_embeddings.weight'), out)
    const ck = await openCheckpoint(join(FIXTURES, 'tiny-bert'))
    const want = await ck.readFloat32('embeddings.word_embeddings.weight')
    await ck.close()
    expect(Array.from(new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4))).toEqual(Array.from(want))
    await inlineExternalData(model, out)
    expect(externalDataFiles(model)).toEqual([])
    const inline = join(dir, 'inline.onnx')
    await writeFile(inline, encodeModel(model))
    const got = await runOnnx(inline, referenceFeeds(ref))
    expect(maxAbsDiff(got.last_hidden_state!.data, ref.outputs.last_hidden_state!.data)).toBeLessThan(1e-4)
  })

  it('refuses locations outside the model directory, missing files, short files and wrong lengths', async () => {
    const model = await readModel(join(out, 'model.onnx'))
    const t = initializer(model, 'embeddings.word_embeddings.weight')
    const withEntry = (key: string, value: string): TensorProto => ({
      ...t,
      externalData: t.externalData!.map((e) => (e.key === key ? { key, value } : e)),
    })
    await expect(readExternalTensor(withEntry('location', '../secret.bin'), out)).rejects.toThrow(/outside the model directory/)
    await expect(readExternalTensor(withEntry('location', '/etc/passwd'), out)).rejects.toThrow(/outside the model directory/)
    const missing = (await readExternalTensor(withEntry('location', 'weights.bin'), out).catch((e: unknown) => e)) as ModelforgeError
    expect(missing.exitCode).toBe(6)
    expect(missing.message).toMatch(/External data file weights.bin .* is missing next to the model/)
    await expect(readExternalTensor(withEntry('length', '12'), out)).rejects.toThrow(/needs 5504 bytes but its external data entry says 12/)
    await expect(readExternalTensor(withEntry('offset', '99999999'), out)).rejects.toThrow(/reads bytes 99999999\.\.\d+ of model.onnx.data, which holds/)
  })
})

describe('repo exporter with external data', () => {
  it('copies the data file under the name stored in the model (not a guessed one) and checks it runs', async () => {
    const repo = await copyFixture('tiny-bert', join(dir, 'repo'))
    await mkdir(join(repo, 'onnx'))
    // Ship the external-data export under Optimum's variant name with a data file named unlike any convention.
    const model = await readModel(join(out, 'model.onnx'))
    for (const t of model.graph!.initializer!) {
      for (const e of t.externalData ?? []) if (e.key === 'location') e.value = 'weights-v2.bin'
    }
    await writeFile(join(repo, 'onnx', 'model_quantized.onnx'), encodeModel(model))
    await writeFile(join(repo, 'onnx', 'weights-v2.bin'), await readFile(join(out, 'model.onnx.data')))

    const target = join(dir, 'repo-out')
    const noVariant = (await exportModel({ model: repo, out: target, exporter: 'repo' }).catch((e: unknown) => e)) as ModelforgeError
    expect(noVariant.exitCode).toBe(6)
    expect(noVariant.message).toMatch(/ships no model.onnx/)
    expect(noVariant.hint).toMatch(/Available variants: quantized \(onnx\/model_quantized.onnx\)/)

    const result = await exportModel({ model: repo, out: target, exporter: 'repo', variant: 'quantized' })
    expect(result).toMatchObject({ exporter: 'repo', opset: 17, externalData: ['weights-v2.bin'] })
    expect(result.files.map((f) => f.path)).toEqual(['config.json', 'model.onnx', 'tokenizer.json', 'tokenizer_config.json', 'vocab.txt', 'weights-v2.bin'])
    const got = await runOnnx(join(target, 'model.onnx'), referenceFeeds(ref))
    expect(maxAbsDiff(got.pooler_output!.data, ref.outputs.pooler_output!.data)).toBeLessThan(1e-4)

    // Without the data file the copy is refused before anything is written.
    await rename(join(repo, 'onnx', 'weights-v2.bin'), join(repo, 'onnx', 'moved.bin'))
    const err = (await exportModel({ model: repo, out: join(dir, 'repo-out2'), exporter: 'repo', variant: 'quantized' }).catch((e: unknown) => e)) as Error
    expect(err.message).toMatch(/onnx\/model_quantized.onnx stores its weights in weights-v2.bin, which is missing next to it/)
    expect(existsSync(join(dir, 'repo-out2'))).toBe(false)
  })

  it('a truncated data file fails the smoke run with exit 4 and writes nothing', async () => {
    const repo = await copyFixture('tiny-bert', join(dir, 'repo-trunc'))
    await writeFile(join(repo, 'model.onnx'), await readFile(join(out, 'model.onnx')))
    await writeFile(join(repo, 'model.onnx.data'), await readFile(join(out, 'model.onnx.data')))
    await truncate(join(repo, 'model.onnx.data'), 1000)
    const target = join(dir, 'trunc-out')
    const err = (await exportModel({ model: repo, out: target, exporter: 'repo' }).catch((e: unknown) => e)) as ModelforgeError
    expect(err.exitCode).toBe(4)
    expect(existsSync(target)).toBe(false)
  })
})
