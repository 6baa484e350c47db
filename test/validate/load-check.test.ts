import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { inspectModel as readInspection } from '../../src/onnx/inspect.js'
import { inspectModel, runtimeView, withRuntimeView } from '../../src/validate/load-check.js'

const ROOT = 'fixtures/polygraphy'

describe('inspect with onnxruntime', () => {
  it('reading the file alone never loads it; with load, the runtime view joins the report', async () => {
    const path = join(ROOT, 'dim_param.onnx')
    const read = await readInspection(path)
    expect(read.runtime).toBeUndefined()
    const loaded = await inspectModel(path, { load: true })
    expect(loaded).toEqual({ ...read, runtime: { loaded: true, inputs: [{ name: 'Input:0', dtype: 'float32', shape: ['dim0', 16, 128] }], outputs: expect.any(Array) } })
  })

  it('a refusal is one more error, and the report given is left as it was', async () => {
    const path = join(ROOT, 'capability.onnx')
    const read = await readInspection(path)
    expect(read.passed).toBe(true)
    const view = await runtimeView(path)
    expect(view).toMatchObject({ loaded: false, code: 'ONNX_UNSUPPORTED' })
    const merged = withRuntimeView(read, view)
    expect(merged.passed).toBe(false)
    expect(merged.problems.at(-1)).toMatchObject({ severity: 'error', code: 'ONNX_UNSUPPORTED' })
    expect(read).toMatchObject({ passed: true, problems: [] })
  })
})
