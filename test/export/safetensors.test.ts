import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  openCheckpoint,
  parseSafetensorsHeader,
  readSafetensorsHeader,
  writeSafetensors,
} from '../../src/export/safetensors.js'
import { IntegrityError, ModelforgeError } from '../../src/lib/errors.js'
import { f32ToBf16, f32ToF16 } from '../../src/onnx/float16.js'
import { FIXTURES, tempDir } from './export-helpers.js'

let dir: string
beforeAll(async () => {
  dir = await tempDir('st')
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

/** A safetensors file from a literal header object and a data length. */
function rawFile(header: unknown, dataBytes: number, headerLengthOverride?: bigint): Buffer {
  const json = Buffer.from(JSON.stringify(header), 'utf8')
  const head = Buffer.alloc(8)
  head.writeBigUInt64LE(headerLengthOverride ?? BigInt(json.length))
  return Buffer.concat([head, json, Buffer.alloc(dataBytes)])
}

async function expectInvalid(bytes: Buffer, pattern: RegExp): Promise<void> {
  const file = join(dir, `bad-${Math.random().toString(36).slice(2)}.safetensors`)
  await writeFile(file, bytes)
  const err = await readSafetensorsHeader(file).then(() => undefined, (e: unknown) => e)
  // A broken file's content is exit 4 (docs/architecture.md), whatever flag or path led to it.
  expect(err).toBeInstanceOf(IntegrityError)
  expect((err as IntegrityError).exitCode).toBe(4)
  expect((err as IntegrityError).code).toBe('SAFETENSORS_INVALID')
  expect((err as IntegrityError).hint).toMatch(/Download it again/)
  expect((err as Error).message).toMatch(pattern)
}

describe('safetensors header validation', () => {
  it('reads the tiny-bert checkpoint header (39 tensors, F32, metadata)', async () => {
    const h = await readSafetensorsHeader(join(FIXTURES, 'tiny-bert', 'model.safetensors'))
    expect(h.tensors).toHaveLength(39)
    expect(h.metadata).toEqual({ format: 'pt' })
    const emb = h.tensors.find((t) => t.name === 'embeddings.word_embeddings.weight')!
    expect(emb).toMatchObject({ dtype: 'F32', shape: [43, 32], byteLength: 43 * 32 * 4 })
  })

  it('refuses a header length longer than the file', async () => {
    await expectInvalid(rawFile({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, 4, 10_000n), /header length field says 10000 bytes but the file holds only/)
  })

  it('refuses a file shorter than the length field', async () => {
    await expectInvalid(Buffer.from([1, 2, 3]), /fewer than the 8-byte header length/)
  })

  it('refuses overlapping tensors', async () => {
    const header = {
      a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
      b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
    }
    await expectInvalid(rawFile(header, 12), /tensors a and b overlap/)
  })

  it('refuses offsets beyond the data (out of range)', async () => {
    await expectInvalid(rawFile({ a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, 8), /beyond the 8 bytes of data \(out of range\)/)
  })

  it('refuses an unknown dtype, listing the known ones', async () => {
    await expectInvalid(rawFile({ a: { dtype: 'F31', shape: [1], data_offsets: [0, 4] } }, 4), /unknown dtype "F31" \(known: BOOL, U8.*BF16.*F32/)
  })

  it('refuses byte sizes that disagree with shape and dtype', async () => {
    await expectInvalid(rawFile({ a: { dtype: 'F16', shape: [3], data_offsets: [0, 4] } }, 4), /needs 6 bytes but data_offsets span 4/)
  })

  it('refuses holes and trailing bytes', async () => {
    await expectInvalid(rawFile({ a: { dtype: 'U8', shape: [2], data_offsets: [2, 4] } }, 4), /2 bytes before tensor a belong to no tensor/)
    await expectInvalid(rawFile({ a: { dtype: 'U8', shape: [2], data_offsets: [0, 2] } }, 4), /2 bytes after the last tensor/)
  })

  it('refuses non-JSON headers and bad metadata', async () => {
    const json = Buffer.from('{"a": [', 'utf8')
    const head = Buffer.alloc(8)
    head.writeBigUInt64LE(BigInt(json.length))
    await expectInvalid(Buffer.concat([head, json]), /header is not JSON/)
    await expectInvalid(rawFile({ __metadata__: { n: 1 } }, 0), /__metadata__ must map strings to strings/)
    await expectInvalid(rawFile({ a: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, 4), /invalid shape \[-1\]/)
  })

  it('accepts rank-0 and zero-size tensors, I64 for information, and space padding', () => {
    const header = {
      s: { dtype: 'F32', shape: [], data_offsets: [0, 4] },
      z: { dtype: 'F32', shape: [0, 3], data_offsets: [4, 4] },
      ids: { dtype: 'I64', shape: [2], data_offsets: [4, 20] },
    }
    const json = JSON.stringify(header) + '   '
    const head = Buffer.alloc(8)
    head.writeBigUInt64LE(BigInt(json.length))
    const bytes = Buffer.concat([head, Buffer.from(json), Buffer.alloc(20)])
    const h = parseSafetensorsHeader('x.safetensors', bytes, bytes.length)
    expect(h.tensors.map((t) => [t.name, t.byteLength])).toEqual([['s', 4], ['z', 0], ['ids', 16]])
  })
})

describe('checkpoints', () => {
  it('reads F16 and BF16 tensors as float32', async () => {
    const d = join(dir, 'halves')
    await mkdir(d)
    const v = Float32Array.from([0.5, -0.25, 2, 1024])
    await writeSafetensors(join(d, 'model.safetensors'), {
      h: { dtype: 'F16', shape: [2, 2], data: f32ToF16(v) },
      b: { dtype: 'BF16', shape: [4], data: f32ToBf16(v) },
      f: { dtype: 'F32', shape: [4], data: v },
      i: { dtype: 'I64', shape: [1], data: BigInt64Array.from([7n]) },
    })
    const ck = await openCheckpoint(d)
    try {
      expect(Array.from(await ck.readFloat32('h'))).toEqual(Array.from(v))
      expect(Array.from(await ck.readFloat32('b'))).toEqual(Array.from(v))
      expect(Array.from(await ck.readFloat32('f'))).toEqual(Array.from(v))
      await expect(ck.readFloat32('i')).rejects.toThrow(/dtype I64, not a float type/)
      await expect(ck.readFloat32('nope')).rejects.toThrow(/has no tensor nope/)
    } finally {
      await ck.close()
    }
  })

  it('streams float tensors in reused chunks of any size, converting F16/BF16 per chunk', async () => {
    const d = join(dir, 'chunks')
    await mkdir(d)
    const v = Float32Array.from({ length: 37 }, (_, i) => (i - 18) / 8)
    await writeSafetensors(join(d, 'model.safetensors'), {
      f: { dtype: 'F32', shape: [37], data: v },
      h: { dtype: 'F16', shape: [37], data: f32ToF16(v) },
      b: { dtype: 'BF16', shape: [37], data: f32ToBf16(v) },
    })
    const ck = await openCheckpoint(d)
    try {
      for (const name of ['f', 'h', 'b']) {
        const seen: number[] = []
        let chunks = 0
        for await (const chunk of ck.float32Chunks(name, 40)) {
          expect(chunk.length).toBeLessThanOrEqual(10)
          seen.push(...chunk)
          chunks++
        }
        expect(chunks).toBe(4)
        expect(seen).toEqual(Array.from(v))
      }
    } finally {
      await ck.close()
    }
  })

  it('reads sharded checkpoints through model.safetensors.index.json and checks the index', async () => {
    const d = join(dir, 'sharded')
    await mkdir(d)
    await writeSafetensors(join(d, 'model-00001-of-00002.safetensors'), { a: { dtype: 'F32', shape: [1], data: Float32Array.from([1]) } })
    await writeSafetensors(join(d, 'model-00002-of-00002.safetensors'), { b: { dtype: 'F32', shape: [1], data: Float32Array.from([2]) } })
    const index = { metadata: { total_size: 8 }, weight_map: { a: 'model-00001-of-00002.safetensors', b: 'model-00002-of-00002.safetensors' } }
    await writeFile(join(d, 'model.safetensors.index.json'), JSON.stringify(index))
    const ck = await openCheckpoint(d)
    expect(ck.files).toHaveLength(2)
    expect(Array.from(await ck.readFloat32('b'))).toEqual([2])
    await ck.close()

    await writeFile(join(d, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { ...index.weight_map, b: 'model-00001-of-00002.safetensors' } }))
    await expect(openCheckpoint(d)).rejects.toThrow(/puts tensor b in model-00001-of-00002.safetensors, but model-00001-of-00002.safetensors does not contain it/)
    await writeFile(join(d, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { a: 'model-00009-of-00009.safetensors' } }))
    await expect(openCheckpoint(d)).rejects.toThrow(/Shard model-00009-of-00009.safetensors listed in model.safetensors.index.json is missing/)
    await writeFile(join(d, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { a: '../x.safetensors' } }))
    await expect(openCheckpoint(d)).rejects.toThrow(/outside the model directory/)
    await writeFile(join(d, 'model.safetensors.index.json'), '{"weight_map": ')
    await expect(openCheckpoint(d)).rejects.toThrow(/is not valid JSON/)
  })

  it('refuses a directory with only pytorch_model.bin, explaining why', async () => {
    const d = join(dir, 'pickle')
    await mkdir(d)
    await writeFile(join(d, 'pytorch_model.bin'), 'not read')
    const err = (await openCheckpoint(d).catch((e: unknown) => e)) as ModelforgeError
    expect(err.exitCode).toBe(2)
    expect(err.code).toBe('NO_SAFETENSORS')
    expect(err.message).toMatch(/only as pytorch_model.bin/)
    expect(err.hint).toMatch(/--exporter optimum/)
  })

  it('refuses a directory without weights', async () => {
    const d = join(dir, 'empty')
    await mkdir(d)
    await expect(openCheckpoint(d)).rejects.toThrow(/has no model weights/)
  })

  it('writes files the reference reader layout accepts (8-byte aligned header)', async () => {
    const f = join(dir, 'aligned.safetensors')
    await writeSafetensors(f, { x: { dtype: 'F32', shape: [3], data: Float32Array.from([1, 2, 3]) } })
    const bytes = await readFile(f)
    const n = Number(bytes.readBigUInt64LE(0))
    expect((8 + n) % 8).toBe(0)
    expect(Array.from(new Float32Array(bytes.buffer.slice(bytes.byteOffset + 8 + n)))).toEqual([1, 2, 3])
  })
})
