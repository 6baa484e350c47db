import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { HASH_CHUNK, readChunks, sha256File } from '../../src/lib/hash.js'
import { legacyChecksum } from '../../src/publish/manifest.js'
import { makeTemp, removeTemps } from '../helpers/store-helpers.js'

afterAll(removeTemps)

const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex')

function pattern(size: number): Buffer {
  const buf = Buffer.alloc(size)
  for (let i = 0; i < size; i++) buf[i] = (i * 131 + 7) & 0xff
  return buf
}

describe('lib/hash', () => {
  it('streams files of any size around the 1 MiB chunk through one buffer', async () => {
    const dir = makeTemp()
    for (const size of [0, 1, HASH_CHUNK - 1, HASH_CHUNK, 2 * HASH_CHUNK + 5]) {
      const data = pattern(size)
      writeFileSync(join(dir, 'f'), data)
      expect(await sha256File(join(dir, 'f'), { fsync: true })).toEqual({ size, sha256: sha256(data) })
    }
  })

  it('length: only the first bytes (a resumed partial download)', async () => {
    const dir = makeTemp()
    const data = pattern(HASH_CHUNK + 100)
    writeFileSync(join(dir, 'f'), data)
    const h = createHash('sha256')
    expect(await readChunks(join(dir, 'f'), (c) => h.update(c), { length: HASH_CHUNK + 3 })).toBe(HASH_CHUNK + 3)
    expect(h.digest('hex')).toBe(sha256(data.subarray(0, HASH_CHUNK + 3)))
  })

  it('refuses a symlink unless asked to follow it (hub snapshots are links into blobs/)', async () => {
    const dir = makeTemp()
    writeFileSync(join(dir, 'blob'), 'content')
    symlinkSync('blob', join(dir, 'link'))
    await expect(sha256File(join(dir, 'link'))).rejects.toMatchObject({ code: 'ELOOP' })
    expect(await sha256File(join(dir, 'link'), { followSymlinks: true })).toEqual({ size: 7, sha256: sha256('content') })
  })

  it('refuses a fifo or a directory without blocking, following links or not', async () => {
    const dir = makeTemp()
    spawnSync('mkfifo', [join(dir, 'fifo')])
    symlinkSync('fifo', join(dir, 'to-fifo'))
    for (const followSymlinks of [false, true]) {
      await expect(sha256File(join(dir, 'fifo'), { followSymlinks })).rejects.toMatchObject({ code: 'ENOTFILE' })
      await expect(sha256File(dir, { followSymlinks })).rejects.toMatchObject({ code: 'ENOTFILE' })
    }
    await expect(sha256File(join(dir, 'to-fifo'), { followSymlinks: true })).rejects.toMatchObject({ code: 'ENOTFILE' })
  })

  it('the legacy checksum no longer hangs on a fifo in a version (it opened files with a blocking open)', async () => {
    const dir = makeTemp()
    writeFileSync(join(dir, 'model.onnx'), 'x')
    spawnSync('mkfifo', [join(dir, 'pipe')])
    await expect(legacyChecksum(dir)).rejects.toMatchObject({ code: 'ENOTFILE' })
  })
})
