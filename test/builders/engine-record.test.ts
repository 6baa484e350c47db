import { describe, expect, it } from 'vitest'
import { checkEngineRecord, ENGINE_SCHEMA, type EngineRecord } from '../../src/builders/engine-record.js'

const record: EngineRecord = {
  schema: ENGINE_SCHEMA,
  created: '2026-12-01T00:00:00.000Z',
  engine: { file: 'engine.plan', bytes: 10, sha256: 'a'.repeat(64) },
  onnx: { path: '/m/model.onnx', bytes: 20, sha256: 'b'.repeat(64) },
  precision: 'fp16',
  tensorrt: { version: '10.16.1', build: 11, encoded: 101601 },
  gpu: { name: 'NVIDIA A100-SXM4-80GB', computeCapability: '8.0', source: 'trtexec' },
  profile: {},
  inferenceShapes: {},
  options: {},
  trtexec: { path: '/usr/bin/trtexec', argv: [] },
  tools: { modelforge: '0.1.0', node: 'v20', onnxruntime: '1.30.0', trtexec: '10.16.1' },
}

describe('engine.json tells a reader whether an engine runs here', () => {
  it('accepts the TensorRT and GPU it was built with', () => {
    expect(checkEngineRecord(record, { tensorrt: { major: 10, minor: 16, patch: 1 }, gpu: { name: 'NVIDIA A100-PCIE-40GB', computeCapability: '8.0' } })).toEqual([])
  })

  it('refuses another TensorRT version and another compute capability', () => {
    expect(checkEngineRecord(record, { tensorrt: { major: 10, minor: 9, patch: 0 }, gpu: { name: 'Tesla T4', computeCapability: '7.5' } })).toEqual([
      'built with TensorRT 10.16.1, this is TensorRT 10.9.0: a plan loads only in the TensorRT version that built it',
      'built for compute capability 8.0 (NVIDIA A100-SXM4-80GB), this GPU is 7.5 (Tesla T4): an engine runs only on the compute capability it was built for unless built with --hardware-compatibility-level ampere+',
    ])
  })

  it('lets a hardware-compatible engine run on another compute capability', () => {
    const ampere = { ...record, options: { hardwareCompatibilityLevel: 'ampere+' } }
    expect(checkEngineRecord(ampere, { tensorrt: { major: 10, minor: 16, patch: 1 }, gpu: { name: 'NVIDIA H100', computeCapability: '9.0' } })).toEqual([])
    // ampere+ means compute capability 8.0 and later: a Turing GPU still cannot run it.
    expect(checkEngineRecord(ampere, { gpu: { name: 'Tesla T4', computeCapability: '7.5' } })).toEqual([
      'built with hardware compatibility level ampere+ (compute capability 8.0 and up), this GPU is 7.5 (Tesla T4)',
    ])
    // sameComputeCapability relaxes nothing across capabilities.
    expect(checkEngineRecord({ ...record, options: { hardwareCompatibilityLevel: 'sameComputeCapability' } }, { gpu: { name: 'NVIDIA H100', computeCapability: '9.0' } })).toHaveLength(1)
  })

  it('checks no TensorRT version when none is given', () => {
    expect(checkEngineRecord(record, { gpu: { name: 'NVIDIA A100-PCIE-40GB', computeCapability: '8.0' } })).toEqual([])
  })
})
