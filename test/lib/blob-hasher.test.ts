import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { rm, writeFile, appendFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createHasher } from '../../src/lib/blob-hasher.js'
import { bytes, tempDir } from '../helpers/hub-fixtures.js'
import { gitBlobSha1 } from '../helpers/mock-hub.js'

let dir: string
beforeEach(async () => {
  dir = await tempDir('mf-hasher-')
})
afterEach(async () => {
  await rm(dir, { recursive: true, force: true })
})

/** Writes `data` in pieces after a prefix, telling the hasher as a download would. */
async function hashAsDownload(workerMinBytes: number, algorithm: 'sha256' | 'git-sha1', data: Buffer, prefix: number): Promise<{ digest: string; sha256: string }> {
  const file = join(dir, `f-${workerMinBytes}-${algorithm}`)
  await writeFile(file, data.subarray(0, prefix))
  const h = createHasher(file, algorithm, data.length, workerMinBytes)
  await h.prefix(prefix)
  for (let at = prefix; at < data.length; at += 70_000) {
    const piece = data.subarray(at, Math.min(at + 70_000, data.length))
    await appendFile(file, piece)
    h.written(at, [piece])
  }
  return h.finish()
}

describe('blob hashers', () => {
  const data = bytes(300_000, 'hasher')
  const sha256 = createHash('sha256').update(data).digest('hex')

  it('inline and worker hashers agree with sha256 and the git blob sha1, resumed or not', async () => {
    for (const workerMin of [Infinity, 0]) {
      expect(await hashAsDownload(workerMin, 'sha256', data, 0)).toEqual({ digest: sha256, sha256 })
      expect(await hashAsDownload(workerMin, 'sha256', data, 123_456)).toEqual({ digest: sha256, sha256 })
      expect(await hashAsDownload(workerMin, 'git-sha1', data, 5)).toEqual({ digest: gitBlobSha1(data), sha256 })
    }
  })

  it('the worker runs in a process started with --input-type=module', () => {
    const hasher = fileURLToPath(new URL('../../src/lib/blob-hasher.ts', import.meta.url))
    const file = join(dir, 'x')
    const code = `
      import { writeFileSync } from 'node:fs'
      const { createHasher } = await import(${JSON.stringify(hasher)})
      writeFileSync(${JSON.stringify(file)}, 'abc')
      const h = createHasher(${JSON.stringify(file)}, 'sha256', 3, 0)
      h.written(0, [Buffer.from("abc")])
      console.log((await h.finish()).digest)`
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { encoding: 'utf8' })
    expect(r.stderr).toBe('')
    expect(r.stdout.trim()).toBe(createHash('sha256').update('abc').digest('hex'))
  })
})
