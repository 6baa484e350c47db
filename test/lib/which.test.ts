/** Finding a program: what counts as executable, and PATH's order. */
import { chmodSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs'
import { delimiter, join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { checkExecutable, findOnPath, pathDirs } from '../../src/lib/which.js'
import { makeTemp, removeTemps } from '../helpers/store-helpers.js'

afterAll(removeTemps)

function program(path: string, mode = 0o755): string {
  mkdirSync(join(path, '..'), { recursive: true })
  writeFileSync(path, '#!/bin/sh\nexit 0\n')
  chmodSync(path, mode)
  return path
}

describe('checkExecutable', () => {
  const dir = makeTemp('mf-which-')

  it('accepts an executable regular file, and a link to one', async () => {
    const p = program(join(dir, 'tool'))
    expect(await checkExecutable(p)).toEqual({ ok: true, path: p })
    symlinkSync(p, join(dir, 'link'))
    expect(await checkExecutable(join(dir, 'link'))).toEqual({ ok: true, path: join(dir, 'link') })
  })

  it('says why anything else does not qualify', async () => {
    expect(await checkExecutable(join(dir, 'none'))).toMatchObject({ ok: false, problem: 'missing' })
    expect(await checkExecutable(dir)).toMatchObject({ ok: false, problem: 'not-a-file', reason: 'it is a directory' })
    const plain = program(join(dir, 'plain'), 0o644)
    expect(await checkExecutable(plain)).toMatchObject({ ok: false, problem: 'not-executable', reason: 'it is not executable (mode 644)' })
    expect(await checkExecutable(join(plain, 'x'))).toMatchObject({ ok: false, problem: 'not-a-file' })
  })
})

describe('findOnPath', () => {
  const root = makeTemp('mf-which-path-')

  it('takes the first PATH directory holding an executable file of that name, skipping ones that do not qualify', async () => {
    const a = join(root, 'a')
    const b = join(root, 'b')
    const c = join(root, 'c')
    program(join(a, 'tool'), 0o644) // not executable: skipped
    mkdirSync(join(b, 'tool'), { recursive: true }) // a directory: skipped
    const winner = program(join(c, 'tool'))
    program(join(root, 'd', 'tool'))
    const env = { PATH: [a, b, c, join(root, 'd')].join(delimiter) }
    expect(await findOnPath('tool', env)).toBe(winner)
    expect(await findOnPath('other', env)).toBeUndefined()
    expect(await findOnPath('tool', {})).toBeUndefined()
  })

  it('ignores empty PATH entries rather than searching the working directory', () => {
    expect(pathDirs({ PATH: `${delimiter}/usr/bin${delimiter}${delimiter}/bin` })).toEqual(['/usr/bin', '/bin'])
  })
})
