import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { hostname, tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { checkOut, commitStaging, discardStaging, openStaging } from '../../src/builders/out-dir.js'

let dir: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mf-outdir-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

async function errorOf(p: Promise<unknown>): Promise<{ code: string; exitCode: number }> {
  return p.then(() => { throw new Error('expected a failure') }, (e) => e)
}

describe('the output directory of a build', () => {
  it('takes an absent or empty --out, refuses one with files unless --force (exit 5), and a file (exit 2)', async () => {
    const base = join(dir, 'check')
    await mkdir(join(base, 'empty'), { recursive: true })
    await mkdir(join(base, 'full'))
    await writeFile(join(base, 'full', 'engine.plan'), 'old')
    await writeFile(join(base, 'file'), 'x')
    expect(await checkOut(join(base, 'absent'), false)).toBe('absent')
    expect(await checkOut(join(base, 'empty'), false)).toBe('empty')
    expect(await errorOf(checkOut(join(base, 'full'), false))).toMatchObject({ code: 'OUTPUT_EXISTS', exitCode: 5 })
    expect(await checkOut(join(base, 'full'), true)).toBe('non-empty')
    expect(await errorOf(checkOut(join(base, 'file'), false))).toMatchObject({ code: 'OUT_NOT_DIRECTORY', exitCode: 2 })
    expect(await errorOf(checkOut(join(base, 'file', 'sub'), false))).toMatchObject({ code: 'OUT_NOT_DIRECTORY', exitCode: 2 })
  })

  it('stages beside --out, hidden, and commits with one rename', async () => {
    const out = join(dir, 'commit', 'engines', 'bert')
    const staging = await openStaging(out)
    expect(staging.dir.startsWith(join(dir, 'commit', 'engines', '.bert.modelforge-build-'))).toBe(true)
    expect(staging.created).toEqual([join(dir, 'commit'), join(dir, 'commit', 'engines')])
    await writeFile(join(staging.dir, 'engine.plan'), 'new')
    await commitStaging(staging, false)
    expect(await readFile(join(out, 'engine.plan'), 'utf8')).toBe('new')
    expect(await readdir(join(dir, 'commit', 'engines'))).toEqual(['bert'])
  })

  it('a failed build leaves nothing: the staging directory and the parents it created go', async () => {
    const out = join(dir, 'discard', 'a', 'out')
    const staging = await openStaging(out)
    await writeFile(join(staging.dir, 'engine.plan'), 'half')
    await discardStaging(staging)
    expect(existsSync(join(dir, 'discard'))).toBe(false)
  })

  it('with --force replaces a full --out only at the end; without, a --out filled meanwhile is refused', async () => {
    const out = join(dir, 'force', 'out')
    await mkdir(out, { recursive: true })
    await writeFile(join(out, 'old.txt'), 'old')
    const refused = await openStaging(out)
    await writeFile(join(refused.dir, 'engine.plan'), 'new')
    expect(await errorOf(commitStaging(refused, false))).toMatchObject({ code: 'OUTPUT_EXISTS' })
    await discardStaging(refused)
    const staging = await openStaging(out)
    await writeFile(join(staging.dir, 'engine.plan'), 'new')
    expect(await readFile(join(out, 'old.txt'), 'utf8')).toBe('old')
    await commitStaging(staging, true)
    expect(await readdir(out)).toEqual(['engine.plan'])
    expect(await readdir(join(dir, 'force'))).toEqual(['out'])
  })

  it('removes what killed builds of the same --out left, never a live build\'s', async () => {
    const parent = join(dir, 'leftovers')
    await mkdir(parent)
    // A pid that no longer runs: a child that has exited.
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout
    const deadDir = join(parent, `.out.modelforge-build-${hostname()}-${dead}-0123abcd`)
    const liveDir = join(parent, `.out.modelforge-build-${hostname()}-${process.pid}-0123abcd`)
    const otherOut = join(parent, `.other.modelforge-build-${hostname()}-${dead}-0123abcd`)
    for (const d of [deadDir, liveDir, otherOut]) await mkdir(d)
    const staging = await openStaging(join(parent, 'out'))
    expect(existsSync(deadDir)).toBe(false)
    expect(existsSync(liveDir)).toBe(true)
    expect(existsSync(otherOut)).toBe(true)
    await discardStaging(staging)
  })
})
