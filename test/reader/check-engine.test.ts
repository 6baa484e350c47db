/** checkEngine: whether a published engine can run on this machine, and why not. */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ENGINE_SCHEMA } from '../../src/builders/engine-record.js'
import { assertEngineFits, checkEngine } from '../../src/reader/index.js'

let dir: string
let n = 0
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'mf-check-engine-'))
})
afterAll(() => {
  rmSync(dir, { recursive: true, force: true })
})

function engineDir(extra: Record<string, unknown> = {}): string {
  const d = join(dir, `engine-${n++}`)
  mkdirSync(d)
  writeFileSync(join(d, 'engine.json'), JSON.stringify({
    schema: ENGINE_SCHEMA, created: '2026-12-01T00:00:00Z', engine: { file: 'engine.plan', bytes: 1, sha256: '0'.repeat(64) },
    onnx: { path: 'model.onnx', bytes: 1, sha256: '0'.repeat(64) }, precision: 'fp16',
    tensorrt: { version: '10.16.1', encoded: 101601 }, gpu: { name: 'NVIDIA A100-SXM4-80GB', computeCapability: '8.0', source: 'trtexec' },
    profile: {}, inferenceShapes: {}, options: {}, trtexec: { path: '/usr/bin/trtexec', argv: [] },
    tools: { modelforge: '0.1.0', node: 'v20', trtexec: '10.16.1' }, ...extra,
  }))
  return d
}

const a100 = [{ name: 'NVIDIA A100-PCIE-40GB', computeCapability: '8.0', source: 'nvidia-smi' as const }]
const a10 = [{ name: 'NVIDIA A10', computeCapability: '8.6', source: 'nvidia-smi' as const }]

describe('checkEngine', () => {
  it('accepts the compute capability and TensorRT it was built for', async () => {
    const r = await checkEngine(engineDir(), { gpus: a100, tensorrtVersion: '10.16.1' })
    expect(r).toEqual({
      ok: true, problems: [], notes: [],
      engine: { gpu: 'NVIDIA A100-SXM4-80GB', computeCapability: '8.0', tensorrt: '10.16.1' },
      machine: { gpu: 'NVIDIA A100-PCIE-40GB', computeCapability: '8.0', tensorrt: '10.16.1' },
    })
  })

  it('refuses another compute capability, and says why', async () => {
    const d = engineDir()
    const r = await checkEngine(d, { gpus: a10 })
    expect(r.ok).toBe(false)
    expect(r.problems).toEqual(['built for compute capability 8.0 (NVIDIA A100-SXM4-80GB), this GPU is 8.6 (NVIDIA A10): an engine runs only on the compute capability it was built for unless built with --hardware-compatibility-level ampere+'])
    expect(r.notes).toEqual(['the TensorRT version was not checked: pass tensorrtVersion (the one the service links)'])
    await expect(assertEngineFits(d, { gpus: a10 })).rejects.toMatchObject({ code: 'ENGINE_MISMATCH', exitCode: 4, message: expect.stringContaining('this GPU is 8.6') })
  })

  it('refuses another TensorRT version; an ampere+ engine runs on a later GPU', async () => {
    expect((await checkEngine(engineDir(), { gpus: a100, tensorrtVersion: '10.3.0' })).problems).toEqual(['built with TensorRT 10.16.1, this is TensorRT 10.3.0: a plan loads only in the TensorRT version that built it'])
    expect((await checkEngine(engineDir({ options: { hardwareCompatibilityLevel: 'ampere+' } }), { gpus: a10 })).ok).toBe(true)
  })

  it('no GPU here is a problem too', async () => {
    const r = await checkEngine(engineDir(), { gpus: [] })
    expect(r.problems).toEqual(['no GPU here (no GPU given): a TensorRT engine needs an NVIDIA GPU'])
  })

  it('asks nvidia-smi for device 0 (CUDA_VISIBLE_DEVICES honoured)', async () => {
    const bin = join(dir, 'bin')
    mkdirSync(bin, { recursive: true })
    writeFileSync(join(bin, 'nvidia-smi'), '#!/bin/sh\necho "NVIDIA A100-SXM4-80GB, 8.0, 81920 MiB, 550.54"\necho "NVIDIA A10, 8.6, 23028 MiB, 550.54"\n')
    chmodSync(join(bin, 'nvidia-smi'), 0o755)
    const env = { PATH: `${bin}:${dirname(process.execPath)}:/usr/bin:/bin` }
    expect((await checkEngine(engineDir(), { env })).machine).toEqual({ gpu: 'NVIDIA A100-SXM4-80GB', computeCapability: '8.0' })
    const second = await checkEngine(engineDir(), { env: { ...env, CUDA_VISIBLE_DEVICES: '1' } })
    expect(second.ok).toBe(false)
    expect(second.machine.computeCapability).toBe('8.6')
    expect((await checkEngine(engineDir(), { env: { PATH: '/nonexistent' } })).problems).toEqual(['no GPU here (nvidia-smi not found): a TensorRT engine needs an NVIDIA GPU'])
  })

  it('a directory without engine.json is exit 6, a broken record exit 4, a bad version string exit 2', async () => {
    const empty = join(dir, 'empty')
    mkdirSync(empty)
    await expect(checkEngine(empty, { gpus: a100 })).rejects.toMatchObject({ code: 'ENGINE_RECORD_MISSING', exitCode: 6 })
    const broken = engineDir()
    writeFileSync(join(broken, 'engine.json'), '{"schema": "something else"}')
    await expect(checkEngine(broken, { gpus: a100 })).rejects.toMatchObject({ code: 'ENGINE_RECORD_INVALID', exitCode: 4 })
    writeFileSync(join(broken, 'engine.json'), '{ not json')
    await expect(checkEngine(broken, { gpus: a100 })).rejects.toMatchObject({ code: 'ENGINE_RECORD_INVALID', exitCode: 4 })
    await expect(checkEngine(engineDir(), { gpus: a100, tensorrtVersion: 'ten' })).rejects.toMatchObject({ code: 'INVALID_OPTION', exitCode: 2 })
  })
})
