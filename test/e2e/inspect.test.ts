/** `modelforge inspect` end to end through bin/run.js (dist/ must be built). */
import { describe, expect, it } from 'vitest'
import { cli, envelope } from '../helpers/store-helpers.js'

describe('modelforge inspect', () => {
  it('prints opsets, inputs, op histogram and parameters (exit 0)', () => {
    const r = cli(['inspect', 'fixtures/hf-tiny/tiny-bert/model.onnx'])
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/IR version 8; opsets ai.onnx 17/)
    expect(r.stdout).toMatch(/input_ids: int64 \[batch, sequence\]/)
    expect(r.stdout).toMatch(/LayerNormalization +5/)
    expect(r.stdout).toMatch(/parameters: [\d,]+ in \d+ initializers/)
  })

  it('--json --load: one object with the runtime view', () => {
    const r = cli(['inspect', 'fixtures/polygraphy/ext_weights_same_dir/ext_weights.onnx', '--load', '--json'])
    expect(r.code).toBe(0)
    const env = envelope(r)
    expect(env.result).toMatchObject({ passed: true, externalData: [{ location: 'ext_weights.data', exists: true }], runtime: { loaded: true } })
  })

  it('a broken model: the report, then exit 4 with the reason and a hint', () => {
    const r = cli(['inspect', 'fixtures/polygraphy/weightless.conv.onnx'])
    expect(r.code).toBe(4)
    expect(r.stdout).toMatch(/error: graph initializer "b": holds no data/)
    expect(r.stderr).toMatch(/Error: fixtures\/polygraphy\/weightless.conv.onnx is not a well-formed ONNX model/)
    expect(r.stderr).toMatch(/Hint: Initializers lack their data/)
  })

  it('an operator onnxruntime lacks, with --load --json: status 4 ONNX_UNSUPPORTED and the inspection in details', () => {
    const r = cli(['inspect', 'fixtures/polygraphy/examples/inspect08_tensorrt_onnx_support_model.onnx', '--load', '--json'])
    expect(r.code).toBe(4)
    const env = envelope(r)
    expect(env.error!.code).toBe('ONNX_UNSUPPORTED')
    expect(env.error!.message).toMatch(/Fake/)
    expect(env.error!.details.inspection.ops.map((o: { op: string }) => o.op)).toContain('Fake')
  })

  it('not ONNX: exit 4; missing: exit 6', () => {
    const junk = cli(['inspect', 'fixtures/polygraphy/tf_identity.pb', '--json'])
    expect(junk.code).toBe(4)
    expect(envelope(junk).error!.code).toBe('ONNX_INVALID')
    expect(cli(['inspect', 'fixtures/polygraphy/none.onnx']).code).toBe(6)
  })
})
