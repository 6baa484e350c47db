import { mkdirSync, readdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { fsyncDir, fsyncDirSync, swapSymlink, TEMP_LINK_PREFIX, TEMP_SUFFIX, writeFileAtomic, writeFileDurable } from '../../src/lib/fs.js'
import { makeTemp, removeTemps } from '../helpers/store-helpers.js'

afterAll(removeTemps)

describe('lib/fs', () => {
  it('writeFileAtomic replaces a file whole, creates its directory and leaves no temporary behind', async () => {
    const dir = makeTemp()
    const file = join(dir, 'refs', 'release', 'v2')
    await writeFileAtomic(file, 'a'.repeat(40))
    await writeFileAtomic(file, 'b'.repeat(40))
    expect(readFileSync(file, 'utf8')).toBe('b'.repeat(40))
    expect(readdirSync(join(dir, 'refs', 'release'))).toEqual(['v2'])
  })

  it('writeFileAtomic removes its temporary file when the rename fails', async () => {
    const dir = makeTemp()
    mkdirSync(join(dir, 'taken', 'inside'), { recursive: true })
    // rename(2) cannot replace a non-empty directory.
    await expect(writeFileAtomic(join(dir, 'taken'), 'x')).rejects.toMatchObject({ code: expect.stringMatching(/EISDIR|ENOTEMPTY|EEXIST/) })
    expect(readdirSync(dir)).toEqual(['taken'])
  })

  it('writeFileDurable refuses to overwrite', async () => {
    const dir = makeTemp()
    await writeFileDurable(join(dir, 'm.json'), '{}')
    await expect(writeFileDurable(join(dir, 'm.json'), '[]')).rejects.toMatchObject({ code: 'EEXIST' })
    expect(readFileSync(join(dir, 'm.json'), 'utf8')).toBe('{}')
  })

  it('writeFileAtomic durable (fsync first) replaces a file whole and leaves no temporary behind, also when the rename fails', async () => {
    const dir = makeTemp()
    await writeFileAtomic(join(dir, 'manifest.json'), '{"a": 1}', { durable: true })
    await writeFileAtomic(join(dir, 'manifest.json'), '{"a": 2}', { durable: true })
    expect(readFileSync(join(dir, 'manifest.json'), 'utf8')).toBe('{"a": 2}')
    mkdirSync(join(dir, 'taken', 'inside'), { recursive: true })
    await expect(writeFileAtomic(join(dir, 'taken'), 'x', { durable: true })).rejects.toMatchObject({ code: expect.stringMatching(/EISDIR|ENOTEMPTY|EEXIST/) })
    expect(readdirSync(dir).sort()).toEqual(['manifest.json', 'taken'])
  })

  it('swapSymlink replaces a link in one step, durable or not, with the temporary name store gc knows', async () => {
    const dir = makeTemp()
    symlinkSync('versions/v1', join(dir, 'current'))
    await swapSymlink(dir, 'current', 'versions/v2')
    expect(readlinkSync(join(dir, 'current'))).toBe('versions/v2')
    // The hub's snapshot links use it without fsync; the result is the same.
    await swapSymlink(dir, 'current', 'versions/v3', { durable: false })
    expect(readlinkSync(join(dir, 'current'))).toBe('versions/v3')
    expect(readdirSync(dir)).toEqual(['current'])
  })

  it('swapSymlink removes its temporary link when the rename fails', async () => {
    const dir = makeTemp()
    mkdirSync(join(dir, 'current', 'x'), { recursive: true })
    await expect(swapSymlink(dir, 'current', 'versions/v1')).rejects.toBeTruthy()
    expect(readdirSync(dir).filter((n) => n.startsWith(TEMP_LINK_PREFIX) && n.endsWith(TEMP_SUFFIX))).toEqual([])
  })

  it('fsyncDir and fsyncDirSync accept a directory', async () => {
    const dir = makeTemp()
    writeFileSync(join(dir, 'f'), 'x')
    await fsyncDir(dir)
    fsyncDirSync(dir)
    await expect(fsyncDir(join(dir, 'absent'))).rejects.toMatchObject({ code: 'ENOENT' })
  })
})
