import { spawnSync } from 'node:child_process'
import { chmodSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { hashFile, hashFiles } from '../../src/publish/hash.js'
import { makeTemp, removeTemps } from '../helpers/store-helpers.js'

afterAll(removeTemps)

function sha256sum(path: string): string {
  return spawnSync('sha256sum', [path], { encoding: 'utf8' }).stdout.split(' ')[0]!
}

describe('hashFiles', () => {
  it('gives the sha256sum digests on worker threads and inline, in input order', async () => {
    const dir = makeTemp()
    const sizes = [0, 1, 1024 * 1024 - 1, 1024 * 1024, 3 * 1024 * 1024 + 7, 5000]
    const files = sizes.map((size, i) => {
      const path = join(dir, `f${i}`)
      const buf = Buffer.alloc(size)
      for (let j = 0; j < size; j++) buf[j] = (j * 31 + i) & 0xff
      writeFileSync(path, buf)
      return { path, rel: `f${i}`, size }
    })
    const expected = files.map((f) => sha256sum(f.path))
    const onWorkers = await hashFiles(files, { threads: 2, inlineBelow: 0, fsync: true })
    const inline = await hashFiles(files, { inlineBelow: Infinity })
    expect(onWorkers.map((h) => h.sha256)).toEqual(expected)
    expect(inline.map((h) => h.sha256)).toEqual(expected)
    expect(onWorkers.map((h) => h.size)).toEqual(sizes)
    expect(onWorkers.map((h) => h.rel)).toEqual(files.map((f) => f.rel))
  })

  it('works from a `node --input-type=module -e` script (the worker must not inherit that flag)', () => {
    const dir = makeTemp()
    const files = ['a', 'b'].map((n, i) => {
      writeFileSync(join(dir, n), Buffer.alloc(3 * 1024 * 1024, i + 1))
      return { path: join(dir, n), rel: n, size: 3 * 1024 * 1024 }
    })
    const script = `
      import { hashFiles } from ${JSON.stringify(join(process.cwd(), 'src/publish/hash.ts'))}
      const r = await hashFiles(${JSON.stringify(files)}, { inlineBelow: 0, threads: 2 })
      process.stdout.write(r.map((h) => h.sha256).join(' '))`
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' })
    expect(r.stderr).toBe('')
    expect(r.stdout).toBe(files.map((f) => sha256sum(f.path)).join(' '))
  })

  it('reports progress up to the total', async () => {
    const dir = makeTemp()
    const path = join(dir, 'big')
    writeFileSync(path, Buffer.alloc(13 * 1024 * 1024))
    let last = 0
    await hashFiles([{ path, rel: 'big', size: 13 * 1024 * 1024 }, { path, rel: 'again', size: 13 * 1024 * 1024 }], { inlineBelow: 0, onProgress: (n) => (last = n) })
    expect(last).toBe(26 * 1024 * 1024)
  })

  it('refuses a file swapped for a symlink or a fifo after the tree was checked, without blocking', async () => {
    const dir = makeTemp()
    writeFileSync(join(dir, 'real'), 'x'.repeat(100))
    symlinkSync('real', join(dir, 'link'))
    spawnSync('mkfifo', [join(dir, 'fifo')])
    for (const inlineBelow of [Infinity, 0]) {
      for (const name of ['link', 'fifo']) {
        await expect(hashFiles([{ path: join(dir, name), rel: name, size: 100 }, { path: join(dir, 'real'), rel: 'real', size: 100 }], { inlineBelow, threads: 2 })).rejects.toMatchObject({
          exitCode: 4, code: 'UNSUPPORTED_FILE_TYPE', message: `${name} is no longer a regular file (it was replaced while being hashed)`,
        })
      }
    }
  })

  it('names the file it cannot read (exit 4, UNREADABLE_FILE)', async () => {
    const dir = makeTemp()
    await expect(hashFiles([{ path: join(dir, 'gone'), rel: 'gone', size: 10 }], { inlineBelow: 0, threads: 2 })).rejects.toMatchObject({
      exitCode: 4, code: 'UNREADABLE_FILE', message: expect.stringContaining('gone'),
    })
    await expect(hashFile(dir, { rel: 'a-directory' })).rejects.toMatchObject({ code: 'UNSUPPORTED_FILE_TYPE', message: expect.stringContaining('a-directory') })
    if (process.getuid?.() !== 0) {
      const p = join(dir, 'locked')
      writeFileSync(p, 'x')
      chmodSync(p, 0)
      await expect(hashFile(p, { rel: 'locked' })).rejects.toMatchObject({ code: 'UNREADABLE_FILE' })
    }
  })
})
