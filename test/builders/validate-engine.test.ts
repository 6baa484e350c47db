import { describe, expect, it } from 'vitest'
import { bindingBytes, planValidation, tolerancePrecision } from '../../src/builders/validate-engine.js'
import { parseVersionText } from '../../src/builders/trtexec-version.js'

const v10 = parseVersionText('10.16.1')!
const v86 = parseVersionText('8.6.1')!

describe('engine validation: the parts that need no GPU', () => {
  it('judges each precision by validate\'s rule for it', () => {
    expect(tolerancePrecision('fp32')).toBe('fp32')
    expect(tolerancePrecision('fp16')).toBe('fp16')
    expect(tolerancePrecision('bf16')).toBe('fp16')
    expect(tolerancePrecision('int8', 'qdq')).toBe('int8')
    expect(tolerancePrecision('best', 'qdq')).toBe('int8')
    expect(tolerancePrecision('best')).toBe('fp16')
  })

  it('plans the validation run: a raw file per input, --shapes for the dynamic ones only', () => {
    const plan = planValidation({
      version: v10,
      engine: 'engine.plan',
      inputs: [{ name: 'input_ids', shape: ['batch', 'sequence'] }, { name: 'scale:0', shape: [1] }],
      inference: { input_ids: [8, 64] },
    })
    expect(plan.files).toEqual({ input_ids: 'validation/input-0-input_ids.bin', 'scale:0': 'validation/input-1-scale_0.bin' })
    expect(plan.shapes).toEqual({ input_ids: [8, 64], 'scale:0': [1] })
    expect(plan.argv).toContain('--loadEngine=engine.plan')
    expect(plan.argv).toContain('--shapes=input_ids:8x64')
    expect(plan.argv).toContain("--loadInputs=input_ids:validation/input-0-input_ids.bin,'scale:0':validation/input-1-scale_0.bin")
    expect(plan.argv).toContain('--exportOutput=validation/outputs.json')
  })

  it('writes inputs as the binding\'s bytes: int64 stays on TensorRT 10, becomes int32 before it', () => {
    const ids = { dtype: 'int64' as const, dims: [2], data: BigInt64Array.from([1n, -2n]) }
    expect(Buffer.from(bindingBytes(ids, v10))).toEqual(Buffer.from(new BigInt64Array([1n, -2n]).buffer))
    expect(Buffer.from(bindingBytes(ids, v86))).toEqual(Buffer.from(new Int32Array([1, -2]).buffer))
    expect(() => bindingBytes({ dtype: 'int64', dims: [1], data: BigInt64Array.from([2n ** 40n]) }, v86)).toThrow(expect.objectContaining({ code: 'REFERENCE_INVALID' }))
    expect(bindingBytes({ dtype: 'bool', dims: [3], data: Uint8Array.from([1, 0, 1]) }, v10)).toEqual(Uint8Array.from([1, 0, 1]))
    expect(bindingBytes({ dtype: 'float64', dims: [1], data: Float64Array.from([0.5]) }, v10).byteLength).toBe(4)
  })
})
