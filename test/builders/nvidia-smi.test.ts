/**
 * The GPUs nvidia-smi lists. No machine here has a GPU: the parser reads lines in the format nvidia-smi
 * prints for the query, and the query's own paths (missing, failing, silent) run real programs.
 */
import { existsSync, mkdirSync, symlinkSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { parseGpuCsv, queryGpus } from '../../src/builders/nvidia-smi.js'
import { findOnPath, pathDirs } from '../../src/lib/which.js'
import { makeTemp, removeTemps } from '../helpers/store-helpers.js'

afterAll(removeTemps)

describe('parseGpuCsv', () => {
  it('reads name, compute capability, memory in MiB and driver, one GPU a line', () => {
    const text = 'NVIDIA A100-SXM4-80GB, 8.0, 81920 MiB, 535.104.05\nNVIDIA GeForce RTX 3090 Ti, 8.6, 24576 MiB, 550.90.07\n'
    expect(parseGpuCsv(text)).toEqual([
      { name: 'NVIDIA A100-SXM4-80GB', computeCapability: '8.0', memoryMiB: 81920, driverVersion: '535.104.05', source: 'nvidia-smi' },
      { name: 'NVIDIA GeForce RTX 3090 Ti', computeCapability: '8.6', memoryMiB: 24576, driverVersion: '550.90.07', source: 'nvidia-smi' },
    ])
  })

  it('leaves out fields nvidia-smi cannot tell ([N/A], [Not Supported]) and keeps a name with a comma whole', () => {
    expect(parseGpuCsv('Tesla K80, [N/A], [Not Supported], 470.82.01\n\n')).toEqual([{ name: 'Tesla K80', driverVersion: '470.82.01', source: 'nvidia-smi' }])
    expect(parseGpuCsv('GPU, rev 2, 9.0, 97871 MiB, 570.1')[0]!.name).toBe('GPU, rev 2')
  })
})

describe('queryGpus', () => {
  const root = makeTemp('mf-smi-')
  const pathWith = (target: string): string => {
    const dir = join(root, target.replaceAll('/', '_'))
    mkdirSync(dir)
    symlinkSync(target, join(dir, 'nvidia-smi'))
    return dir
  }

  it('without nvidia-smi on PATH: no GPUs, and says so', async () => {
    expect(await queryGpus({ env: { PATH: root } })).toEqual({ gpus: [], problem: 'nvidia-smi not found' })
  })

  it.skipIf(pathDirs().some((d) => existsSync(join(d, 'nvidia-smi'))))('on this machine (no GPU): nvidia-smi not found', async () => {
    expect(await findOnPath('nvidia-smi')).toBeUndefined()
    expect((await queryGpus()).problem).toBe('nvidia-smi not found')
  })

  it('an nvidia-smi that fails, or lists nothing, is reported with its path', async () => {
    const failing = pathWith('/bin/false')
    expect(await queryGpus({ env: { PATH: failing } })).toEqual({ nvidiaSmi: join(failing, 'nvidia-smi'), gpus: [], problem: 'nvidia-smi exited with code 1' })
    const silent = pathWith('/bin/true')
    expect(await queryGpus({ env: { PATH: silent } })).toEqual({ nvidiaSmi: join(silent, 'nvidia-smi'), gpus: [], problem: 'nvidia-smi listed no GPU' })
  })
})
