import { spawnSync } from 'node:child_process'
import { mkdirSync, symlinkSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { fetchModel } from '../../src/hub/fetch.js'
import { compareBytes, listFiles, walkTree } from '../../src/lib/tree.js'
import { makeTemp, removeTemps, writeTree } from '../helpers/store-helpers.js'
import { unsortedSubdirs } from '../helpers/store-legacy.js'

afterAll(removeTemps)

// U+FF5E sorts after U+1F600 in UTF-8 bytes (EF.. < F0..) but before it in UTF-16 code units (FF5E > D83D):
// the hub's walk (Array.sort) and export's (<) used the latter.
const HIGH_BMP = '\uFF5E.txt'
const ASTRAL = '\u{1F600}.txt'

describe('lib/tree', () => {
  it('compareBytes is UTF-8 byte order, not UTF-16 order', () => {
    expect([ASTRAL, HIGH_BMP, 'Z', 'a', '_'].sort(compareBytes)).toEqual(['Z', '_', 'a', HIGH_BMP, ASTRAL])
  })

  it("walkTree: Python's sorted os.walk order (a directory's files, then its subdirectories), lstat by default", () => {
    const dir = makeTemp()
    writeTree(dir, { 'b.txt': '1', 'a/x': '22', 'a/c/y': '3', 'c.txt': '4' })
    symlinkSync('b.txt', join(dir, 'link'))
    return walkTree(dir).then((entries) => {
      expect(entries.map((e) => [e.rel, e.type])).toEqual([
        ['b.txt', 'file'], ['c.txt', 'file'], ['link', 'symlink'],
        ['a', 'directory'], ['a/x', 'file'], ['a/c', 'directory'], ['a/c/y', 'file'],
      ])
      expect(entries.find((e) => e.rel === 'a/x')).toMatchObject({ abs: join(dir, 'a', 'x'), size: 2 })
    })
  })

  it("order 'listing': subdirectories as the filesystem lists them (os.walk's order), files still sorted", async (ctx) => {
    const dir = makeTemp()
    const listed = unsortedSubdirs(dir)
    if (!listed) return ctx.skip('this filesystem lists every directory sorted, so listing order cannot differ from sorted')
    writeTree(dir, { 'z.txt': '1', 'b.txt': '2' })
    const entries = await walkTree(dir, { order: 'listing' })
    expect(entries.filter((e) => e.type === 'directory').map((e) => e.rel)).toEqual(listed)
    // A directory's files first, sorted; then each subdirectory with what it holds, in listing order.
    expect(entries.map((e) => e.rel)).toEqual(['b.txt', 'z.txt', ...listed.flatMap((d) => [d, `${d}/${d}.bin`])])
    expect((await walkTree(dir)).filter((e) => e.type === 'directory').map((e) => e.rel)).toEqual([...listed].sort())
  })

  it('sees fifos for what they are', async () => {
    const dir = makeTemp()
    spawnSync('mkfifo', [join(dir, 'fifo')])
    expect((await walkTree(dir)).map((e) => e.type)).toEqual(['fifo'])
  })

  it('followSymlinks: types a link by its target, descends linked directories, keeps a dangling link a symlink, stops at a loop', async () => {
    const dir = makeTemp()
    writeTree(dir, { 'blobs/1': 'one', 'blobs/2': 'two!' })
    mkdirSync(join(dir, 'snap'))
    symlinkSync('../blobs/1', join(dir, 'snap', 'config.json'))
    symlinkSync('../blobs', join(dir, 'snap', 'sub'))
    symlinkSync('../blobs/none', join(dir, 'snap', 'dangling'))
    symlinkSync('.', join(dir, 'snap', 'loop'))
    const entries = await walkTree(join(dir, 'snap'), { followSymlinks: true })
    expect(entries.map((e) => [e.rel, e.type])).toEqual([
      ['config.json', 'file'], ['dangling', 'symlink'], ['loop', 'directory'], ['sub', 'directory'], ['sub/1', 'file'], ['sub/2', 'file'],
    ])
    expect(entries.find((e) => e.rel === 'sub/2')!.size).toBe(4)
  })

  it('skip leaves a name out at every depth', async () => {
    const dir = makeTemp()
    writeTree(dir, { '.git/HEAD': 'x', 'a/.git/HEAD': 'y', 'a/m.onnx': 'z' })
    expect((await listFiles(dir, { skip: ['.git'] })).map((e) => e.rel)).toEqual(['a/m.onnx'])
  })

  it('listFiles: regular files only, sorted by whole path in byte order', async () => {
    const dir = makeTemp()
    writeTree(dir, { 'b': '1', 'a/x': '2', [HIGH_BMP]: '3', [ASTRAL]: '4' })
    symlinkSync('b', join(dir, 'link'))
    expect((await listFiles(dir)).map((e) => e.rel)).toEqual(['a/x', 'b', HIGH_BMP, ASTRAL])
    expect((await listFiles(dir, { followSymlinks: true })).map((e) => e.rel)).toEqual(['a/x', 'b', 'link', HIGH_BMP, ASTRAL])
  })

  it('the hub lists a local model directory in the same byte order as the store (it sorted UTF-16 code units)', async () => {
    const dir = makeTemp()
    writeTree(dir, { [HIGH_BMP]: '1', [ASTRAL]: '2', 'config.json': '{}', '.git/config': 'x' })
    const r = await fetchModel(dir)
    expect(r.files.map((f) => f.path)).toEqual(['config.json', HIGH_BMP, ASTRAL])
  })
})
