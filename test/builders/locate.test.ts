/**
 * Finding trtexec (--trtexec, TRTEXEC, PATH, /usr/src/tensorrt/bin/trtexec) and probing its version. The
 * lookup only needs executable files, never runs them; the probe runs real programs: programs that are not
 * trtexec here, and the trtexec double (test/helpers/trtexec-double) once it exists.
 */
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs'
import { delimiter, join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { DEFAULT_TRTEXEC, findTrtexec, PROBE_CACHE_FILE, probeTrtexec } from '../../src/builders/locate.js'
import { parseBanner } from '../../src/builders/trtexec-version.js'
import { makeTemp, removeTemps, repoRoot } from '../helpers/store-helpers.js'

afterAll(removeTemps)

const DOUBLE = join(repoRoot, 'test', 'helpers', 'trtexec-double', 'trtexec')

/** An executable file at `path` (the lookup checks the file, it never runs it). */
function executable(path: string, mode = 0o755): string {
  mkdirSync(join(path, '..'), { recursive: true })
  writeFileSync(path, '#!/bin/sh\nexit 0\n')
  chmodSync(path, mode)
  return path
}

async function failure(p: Promise<unknown>): Promise<{ exitCode: number; code: string; message: string; hint: string }> {
  try {
    await p
  } catch (err) {
    return err as { exitCode: number; code: string; message: string; hint: string }
  }
  throw new Error('expected a failure')
}

describe('findTrtexec', () => {
  const root = makeTemp('mf-locate-')
  const flagged = executable(join(root, 'flag', 'trtexec'))
  const fromEnv = executable(join(root, 'env', 'trtexec'))
  const onPath = executable(join(root, 'path2', 'trtexec'))
  const empty = join(root, 'empty')
  mkdirSync(empty)

  it('takes --trtexec first, then TRTEXEC, then the first trtexec on PATH, and says where it came from', async () => {
    const env = { TRTEXEC: fromEnv, PATH: [empty, join(root, 'path2')].join(delimiter) }
    expect(await findTrtexec({ flag: flagged, env })).toEqual({ path: flagged, source: 'flag' })
    expect(await findTrtexec({ env })).toEqual({ path: fromEnv, source: 'TRTEXEC' })
    expect(await findTrtexec({ env: { PATH: env.PATH } })).toEqual({ path: onPath, source: 'PATH' })
    // An empty TRTEXEC is unset, as in a shell's `TRTEXEC= modelforge build`.
    expect(await findTrtexec({ env: { TRTEXEC: '', PATH: env.PATH } })).toEqual({ path: onPath, source: 'PATH' })
  })

  it('an explicit --trtexec wins even over a broken TRTEXEC, which is then never looked at', async () => {
    expect(await findTrtexec({ flag: flagged, env: { TRTEXEC: join(root, 'nowhere') } })).toEqual({ path: flagged, source: 'flag' })
  })

  it('a relative --trtexec is taken from the working directory and returned absolute', async () => {
    const cwd = process.cwd()
    process.chdir(root)
    try {
      expect(await findTrtexec({ flag: 'flag/trtexec', env: {} })).toEqual({ path: flagged, source: 'flag' })
    } finally {
      process.chdir(cwd)
    }
  })

  it.skipIf(existsSync(DEFAULT_TRTEXEC))('found nowhere: exit 3 TRTEXEC_NOT_FOUND naming the places searched, with how to get it', async () => {
    const err = await failure(findTrtexec({ env: { PATH: empty } }))
    expect(err.exitCode).toBe(3)
    expect(err.code).toBe('TRTEXEC_NOT_FOUND')
    expect(err.message).toMatch(/neither --trtexec nor TRTEXEC is set, no trtexec is on PATH, and \/usr\/src\/tensorrt\/bin\/trtexec does not exist/)
    expect(err.hint).toMatch(/Install TensorRT .*TRTEXEC/)
  })

  it('a named path that does not exist is exit 6, naming it and where it came from', async () => {
    const missing = join(root, 'nowhere', 'trtexec')
    for (const [o, from] of [[{ flag: missing, env: {} }, '--trtexec'], [{ env: { TRTEXEC: missing } }, 'TRTEXEC']] as const) {
      const err = await failure(findTrtexec(o))
      expect(err.exitCode).toBe(6)
      expect(err.code).toBe('TRTEXEC_PATH_NOT_FOUND')
      expect(err.message).toBe(`${from} names ${missing}, which cannot be run as trtexec: it does not exist`)
    }
  })

  it('a directory or a file without the x bit is a path of the wrong kind: exit 2', async () => {
    const dir = await failure(findTrtexec({ env: { TRTEXEC: join(root, 'flag') } }))
    expect(dir).toMatchObject({ exitCode: 2, code: 'TRTEXEC_NOT_EXECUTABLE' })
    expect(dir.message).toMatch(/TRTEXEC names .*flag, which cannot be run as trtexec: it is a directory/)
    const plain = executable(join(root, 'plain', 'trtexec'), 0o644)
    const err = await failure(findTrtexec({ flag: plain }))
    expect(err).toMatchObject({ exitCode: 2, code: 'TRTEXEC_NOT_EXECUTABLE' })
    expect(err.message).toMatch(/it is not executable \(mode 644\)/)
    expect(err.hint).toBe(`Point --trtexec at the trtexec program itself (chmod +x ${plain} if it lost its mode).`)
  })
})

describe('probeTrtexec', () => {
  const root = makeTemp('mf-probe-')

  it('a program that is not trtexec: exit 3 TRTEXEC_NOT_TRTEXEC with the tail of what it printed', async () => {
    // node --help prints its own help and exits 0, without trtexec's banner.
    const err = await failure(probeTrtexec(process.execPath))
    expect(err).toMatchObject({ exitCode: 3, code: 'TRTEXEC_NOT_TRTEXEC' })
    expect(err.message).toMatch(/is not trtexec\? `.* --help` exited with code 0 without trtexec's "&&&& RUNNING TensorRT.trtexec" banner:\n/)
    expect(err.message).toMatch(/node/i)
    // A program that fails and prints nothing.
    const mute = join(root, 'mute')
    writeFileSync(mute, '#!/bin/sh\nexit 127\n', { mode: 0o755 })
    const silent = await failure(probeTrtexec(mute))
    expect(silent.message).toMatch(/exited with code 127 without .* banner and printed nothing$/)
    expect(silent.hint).toMatch(/TensorRT libraries may be missing/)
  })

  it('a cached probe is used while the binary keeps its real path, size and mtime, and redone when it changes', async () => {
    const bin = join(root, 'trtexec')
    copyFileSync('/bin/true', bin)
    chmodSync(bin, 0o755)
    // What an earlier probe of this file recorded: the real 10.16.1 help text and its banner's version.
    const help = readFileSync(join(repoRoot, 'fixtures', 'trtexec-help', 'trtexec-10.16.1-help.txt'), 'utf8')
    const version = parseBanner(help.split('\n')[0]!)!.version
    const st = statSync(bin)
    const cacheDir = join(root, 'cache')
    mkdirSync(cacheDir)
    writeFileSync(join(cacheDir, PROBE_CACHE_FILE), JSON.stringify({
      schema: 'modelforge/trtexec-probe@1',
      entries: { [bin]: { size: st.size, mtimeMs: st.mtimeMs, version, help } },
    }))
    expect(await probeTrtexec(bin, { cacheDir })).toEqual({ version, help })
    expect(version.text).toBe('10.16.1')
    // A new mtime (an upgrade in place) makes the entry stale: the file is run again, and /bin/true is no trtexec.
    utimesSync(bin, st.atime, new Date(st.mtimeMs + 5000))
    expect(await failure(probeTrtexec(bin, { cacheDir }))).toMatchObject({ code: 'TRTEXEC_NOT_TRTEXEC' })
    // Without a cache directory nothing is read: the seeded entry would have answered otherwise.
    utimesSync(bin, st.atime, st.mtime)
    expect(await failure(probeTrtexec(bin))).toMatchObject({ code: 'TRTEXEC_NOT_TRTEXEC' })
  })
})

describe.skipIf(!existsSync(DOUBLE))('probeTrtexec with the trtexec double', () => {
  const root = makeTemp('mf-probe-double-')
  const runs = (record: string): number => (existsSync(record) ? readFileSync(record, 'utf8').trim().split('\n').length : 0)

  it('reads the version from the banner of a --help run, for each encoding', async () => {
    for (const [v, encoded] of [['8.6.1', 8601], ['10.16.1', 101601], ['11.1.0', 110100]] as const) {
      const probe = await probeTrtexec(DOUBLE, { env: { TRTEXEC_DOUBLE_VERSION: v } })
      expect(probe.version).toMatchObject({ text: v, encoded })
      expect(probe.help).toMatch(/--onnx=<file>/)
    }
  })

  it('caches the probe: the second call does not run trtexec; a broken cache file is rebuilt', async () => {
    const cacheDir = join(root, 'cache')
    const record = join(root, 'runs.jsonl')
    const env = { TRTEXEC_DOUBLE_RECORD: record }
    const first = await probeTrtexec(DOUBLE, { cacheDir, env })
    expect(runs(record)).toBe(1)
    expect(await probeTrtexec(DOUBLE, { cacheDir, env })).toEqual(first)
    expect(runs(record)).toBe(1)
    writeFileSync(join(cacheDir, PROBE_CACHE_FILE), '{ torn')
    expect(await probeTrtexec(DOUBLE, { cacheDir, env })).toEqual(first)
    expect(runs(record)).toBe(2)
    expect(JSON.parse(readFileSync(join(cacheDir, PROBE_CACHE_FILE), 'utf8')).schema).toBe('modelforge/trtexec-probe@1')
  })

  it('a cache directory that cannot be written does not fail the probe', async () => {
    const file = join(root, 'a-file')
    writeFileSync(file, '')
    expect((await probeTrtexec(DOUBLE, { cacheDir: file })).version.major).toBeGreaterThan(0)
  })
})
