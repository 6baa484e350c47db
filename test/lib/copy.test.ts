import { spawnSync } from 'node:child_process'
import { chmodSync, existsSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { filePlacer } from '../../src/lib/copy.js'
import { tmpfs, unmountAll } from '../helpers/mounts.js'
import { makeTemp, removeTemps } from '../helpers/store-helpers.js'

afterAll(() => {
  unmountAll()
  removeTemps()
})

function source(bytes = Buffer.alloc(2 * 1024 * 1024 + 3, 9)): { dir: string; file: string } {
  const dir = makeTemp('mf-copy-')
  const file = join(dir, 'src.bin')
  writeFileSync(file, bytes)
  chmodSync(file, 0o751)
  return { dir, file }
}

describe('filePlacer', () => {
  it('copies (or clones) with the permission bits, reporting bytes; a hard link only when asked', async () => {
    const { dir, file } = source()
    const seen: number[] = []
    const method = await filePlacer().place(file, join(dir, 'copy.bin'), (n) => seen.push(n))
    expect(['copy', 'reflink']).toContain(method)
    expect(readFileSync(join(dir, 'copy.bin')).equals(readFileSync(file))).toBe(true)
    expect(statSync(join(dir, 'copy.bin')).ino).not.toBe(statSync(file).ino)
    expect(statSync(join(dir, 'copy.bin')).mode & 0o777).toBe(0o751 & ~process.umask())
    expect(seen.at(-1)).toBe(2 * 1024 * 1024 + 3)
    expect(await filePlacer({ link: true }).place(file, join(dir, 'link.bin'))).toBe('link')
    expect(statSync(join(dir, 'link.bin')).ino).toBe(statSync(file).ino)
  })

  it('refuses an existing destination, a fifo (without blocking) and a symlink as the source', async () => {
    const { dir, file } = source(Buffer.from('x'))
    writeFileSync(join(dir, 'there'), 'keep')
    await expect(filePlacer().place(file, join(dir, 'there'))).rejects.toMatchObject({ code: 'EEXIST' })
    expect(readFileSync(join(dir, 'there'), 'utf8')).toBe('keep')
    expect(spawnSync('mkfifo', [join(dir, 'pipe')]).status).toBe(0)
    symlinkSync('src.bin', join(dir, 'alias'))
    await expect(filePlacer().place(join(dir, 'pipe'), join(dir, 'p2'))).rejects.toMatchObject({ code: 'ENOTFILE' })
    await expect(filePlacer().place(join(dir, 'alias'), join(dir, 'a2'))).rejects.toMatchObject({ code: 'ELOOP' })
    expect(existsSync(join(dir, 'p2')) || existsSync(join(dir, 'a2'))).toBe(false)
  })

  const disk = tmpfs('1m')
  it.skipIf(!disk)('across filesystems a link falls back to a copy; a full disk removes the partial copy and names it', async () => {
    const { file } = source(Buffer.from('small'))
    expect(await filePlacer({ link: true }).place(file, join(disk!, 'small.bin'))).toBe('copy')
    const big = source()
    const dst = join(disk!, 'big.bin')
    await expect(filePlacer({ link: true }).place(big.file, dst)).rejects.toMatchObject({ code: 'ENOSPC', path: dst })
    expect(existsSync(dst)).toBe(false)
  })
})
