/**
 * doctor on this machine (no GPU, no TensorRT): it reports what is there and lists what is missing with
 * how to get it, never failing for it. With the trtexec double (test/helpers/trtexec-double, once it
 * exists) it reports that trtexec's version.
 */
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { doctor, formatDoctor, pathReport } from '../../src/builders/doctor.js'
import { DEFAULT_TRTEXEC } from '../../src/builders/locate.js'
import { tmpfs, unmountAll } from '../helpers/mounts.js'
import { makeTemp, removeTemps, repoRoot } from '../helpers/store-helpers.js'

afterAll(() => {
  unmountAll()
  removeTemps()
})

const DOUBLE = join(repoRoot, 'test', 'helpers', 'trtexec-double', 'trtexec')

describe('doctor', () => {
  const root = makeTemp('mf-doctor-')
  const emptyPath = join(root, 'bin')
  mkdirSync(emptyPath)
  const paths = { storeRoot: join(root, 'store'), hubCache: join(root, 'hf', 'hub'), timingCacheDir: join(root, 'cache', 'timing-cache') }

  it.skipIf(existsSync(DEFAULT_TRTEXEC))('without trtexec, a GPU or optimum-cli: reports, and lists each missing piece with how to get it', async () => {
    const r = await doctor({ ...paths, env: { PATH: emptyPath } })
    expect(r.trtexec).toMatchObject({ found: false, problem: expect.stringMatching(/^trtexec was not found/), hint: expect.stringMatching(/Install TensorRT/) })
    expect(r.gpus).toEqual({ gpus: [], problem: 'nvidia-smi not found' })
    expect(r.optimumCli).toEqual({ found: false })
    expect(r.onnxruntime.backends.find((b) => b.name === 'cpu')).toMatchObject({ available: true })
    // Directories that do not exist yet but can be made are fine, and say where they would be made.
    expect(r.store).toEqual({ path: paths.storeRoot, exists: false, checked: root, writable: true })
    expect(r.timingCache).toMatchObject({ exists: false, checked: root, writable: true })
    expect(r.missing.map((m) => m.what)).toEqual(['trtexec', 'an NVIDIA GPU', 'optimum-cli (optional, for `modelforge export --exporter optimum`)'])
    expect(r.missing[1]!.how).toMatch(/^nvidia-smi not found: TensorRT builds need an NVIDIA GPU/)
    const text = formatDoctor(r)
    expect(text).toMatch(/^trtexec +missing: trtexec was not found/m)
    expect(text).toMatch(/^GPUs +nvidia-smi not found$/m)
    expect(text).toMatch(/^onnxruntime +onnxruntime-node \d+\.\d+\.\d+: cpu/m)
    expect(text).toMatch(new RegExp(`^store +${paths.storeRoot} \\(does not exist yet; can be created in ${root}\\)$`, 'm'))
    expect(text).toMatch(/^Missing:\n {2}- trtexec: /m)
  })

  it('an unusable --trtexec or TRTEXEC is reported, not thrown', async () => {
    const missing = await doctor({ ...paths, trtexecFlag: join(root, 'nope'), env: { PATH: emptyPath } })
    expect(missing.trtexec).toMatchObject({ found: false, problem: `--trtexec names ${join(root, 'nope')}, which cannot be run as trtexec: it does not exist` })
    const plain = join(root, 'plain')
    writeFileSync(plain, '')
    chmodSync(plain, 0o644)
    expect((await doctor({ ...paths, env: { TRTEXEC: plain, PATH: emptyPath } })).trtexec.problem).toMatch(/TRTEXEC names .*plain, which cannot be run as trtexec: it is not executable/)
  })

  it('a program that is not trtexec is reported with its path and why', async () => {
    const r = await doctor({ ...paths, env: { TRTEXEC: process.execPath, PATH: emptyPath } })
    expect(r.trtexec).toMatchObject({ found: false, path: process.execPath, source: 'TRTEXEC', problem: expect.stringMatching(/is not trtexec\?/) })
    expect(formatDoctor(r)).toMatch(new RegExp(`^trtexec +${process.execPath} \\(from TRTEXEC\\) cannot be used: `, 'm'))
  })

  // The double is a script that runs node from PATH, so these runs keep the test's PATH.
  it.skipIf(!existsSync(DOUBLE))('with the trtexec double in TRTEXEC: its path, where it came from and its version', async () => {
    const r = await doctor({ ...paths, env: { TRTEXEC: DOUBLE, TRTEXEC_DOUBLE_VERSION: '10.16.1', PATH: process.env.PATH } })
    expect(r.trtexec).toMatchObject({ found: true, path: DOUBLE, source: 'TRTEXEC', version: '10.16.1' })
    expect(r.missing.map((m) => m.what)).not.toContain('trtexec')
    expect(formatDoctor(r)).toMatch(new RegExp(`^trtexec +${DOUBLE} \\(from TRTEXEC\\): TensorRT 10\\.16\\.1`, 'm'))
    const old = await doctor({ ...paths, env: { TRTEXEC: DOUBLE, TRTEXEC_DOUBLE_VERSION: '8.2.3', PATH: process.env.PATH } })
    expect(old.trtexec).toMatchObject({ found: false, version: '8.2.3', problem: expect.stringMatching(/older than modelforge drives/) })
  })
})

describe('pathReport', () => {
  const root = makeTemp('mf-doctor-paths-')

  it('an existing directory, a missing one under a file, and a file', async () => {
    expect(await pathReport(root)).toEqual({ path: root, exists: true, checked: root, writable: true })
    const file = join(root, 'f')
    writeFileSync(file, '')
    expect(await pathReport(file)).toEqual({ path: file, exists: true, checked: file, writable: false, problem: 'it is not a directory' })
    expect(await pathReport(join(file, 'a', 'b'))).toEqual({ path: join(file, 'a', 'b'), exists: false, checked: file, writable: false, problem: `${file} is a file, so no directory can be made under it` })
  })

  const ro = tmpfs('1m', true)
  it.skipIf(!ro)('a read-only filesystem is not writable, for root too', async () => {
    const r = await pathReport(join(ro!, 'store'))
    expect(r).toEqual({ path: join(ro!, 'store'), exists: false, checked: ro, writable: false, problem: `${ro} is not writable by this user` })
    const d = await doctor({ storeRoot: join(ro!, 'store'), hubCache: root, timingCacheDir: root, env: { PATH: root } })
    expect(d.missing.find((m) => m.what === 'a writable store')?.how).toBe(`${join(ro!, 'store')}: ${ro} is not writable by this user. Choose another path, or fix its permissions.`)
  })
})
