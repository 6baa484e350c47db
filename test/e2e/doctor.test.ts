/**
 * `modelforge doctor` end to end through bin/run.js (dist/ must be built). This machine has no GPU and no
 * TensorRT: doctor exits 0 and says what is missing. With the trtexec double in TRTEXEC (once
 * test/helpers/trtexec-double exists) it reports that trtexec's version.
 */
import { existsSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { DEFAULT_TRTEXEC } from '../../src/builders/locate.js'
import { cli, envelope, makeTemp, removeTemps, repoRoot } from '../helpers/store-helpers.js'

afterAll(removeTemps)

const DOUBLE = join(repoRoot, 'test', 'helpers', 'trtexec-double', 'trtexec')

describe('modelforge doctor', () => {
  const root = makeTemp('mf-e2e-doctor-')
  const bin = join(root, 'bin')
  mkdirSync(bin)
  // PATH without trtexec, nvidia-smi or optimum-cli, whatever the test machine has; the caches under root.
  const env = { PATH: bin, TRTEXEC: undefined, MODELFORGE_CACHE: join(root, 'cache'), HF_HUB_CACHE: join(root, 'hf'), HF_HOME: undefined }

  it.skipIf(existsSync(DEFAULT_TRTEXEC))('no GPU, no trtexec: exit 0, each part on a line, and what is missing with how to get it', () => {
    const r = cli(['doctor', '--store', join(root, 'store')], { env })
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/^trtexec +missing: trtexec was not found/m)
    expect(r.stdout).toMatch(/^GPUs +nvidia-smi not found$/m)
    expect(r.stdout).toMatch(/^onnxruntime +onnxruntime-node \d+\.\d+\.\d+: cpu/m)
    expect(r.stdout).toContain(`store         ${join(root, 'store')} (does not exist yet; can be created in ${root})`)
    expect(r.stdout).toContain(`timing cache  ${join(root, 'cache', 'timing-cache')} (does not exist yet; can be created in ${root})`)
    expect(r.stdout).toMatch(/^Missing:\n {2}- trtexec: .*Install TensorRT/m)
    expect(r.stdout).toMatch(/^ {2}- an NVIDIA GPU: nvidia-smi not found/m)
    expect(r.stderr).toBe('')
  })

  it('--json: one object with the report, status 0', () => {
    const r = cli(['doctor', '--json', '--store', join(root, 'store'), '--trtexec', join(root, 'nope')], { env })
    expect(r.code).toBe(0)
    const { status, result } = envelope(r)
    expect(status).toBe(0)
    expect(result.trtexec).toEqual({
      found: false,
      problem: `--trtexec names ${join(root, 'nope')}, which cannot be run as trtexec: it does not exist`,
      hint: 'Fix the path, or drop --trtexec to search TRTEXEC, PATH and /usr/src/tensorrt/bin.',
    })
    expect(result.gpus).toEqual({ gpus: [], problem: 'nvidia-smi not found' })
    expect(result.hubCache).toMatchObject({ path: join(root, 'hf'), exists: false, writable: true })
    expect(result.onnxruntime.backends.map((b: { name: string }) => b.name)).toContain('cpu')
    expect(result.missing.map((m: { what: string }) => m.what)).toContain('trtexec')
  })

  // The double is a script that runs node from PATH, so these runs keep the test's PATH.
  it.skipIf(!existsSync(DOUBLE))('with the trtexec double in TRTEXEC: its path and version', () => {
    const r = cli(['doctor', '--json', '--store', join(root, 'store')], { env: { ...env, PATH: process.env.PATH, TRTEXEC: DOUBLE, TRTEXEC_DOUBLE_VERSION: '10.16.1' } })
    expect(r.code).toBe(0)
    expect(envelope(r).result.trtexec).toMatchObject({ found: true, path: DOUBLE, source: 'TRTEXEC', version: '10.16.1' })
    const text = cli(['doctor'], { env: { ...env, PATH: process.env.PATH, TRTEXEC: DOUBLE, TRTEXEC_DOUBLE_VERSION: '8.6.1' } })
    expect(text.stdout).toMatch(new RegExp(`^trtexec +${DOUBLE} \\(from TRTEXEC\\): TensorRT 8\\.6\\.1$`, 'm'))
  })
})
