/**
 * Acceptance 5: Polygraphy's test models. The broken ones are refused with a clear message (by the static
 * checks of inspect, by onnxruntime when loaded, or both); the valid ones inspect and load.
 */
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { ModelforgeError } from '../../src/lib/errors.js'
import { assertWellFormed } from '../../src/onnx/inspect.js'
import { inspectModel } from '../../src/validate/load-check.js'
import { loadModel, closeModel, runModel } from '../../src/validate/runtime.js'
import { fromValues } from '../../src/validate/tensors.js'

const ROOT = 'fixtures/polygraphy'

/**
 * What each model is. `problems`: the codes inspect's static checks report as errors ([] = well formed).
 * `load`: 'ok', or the code loadModel (onnxruntime) refuses it with.
 */
const EXPECTED: Record<string, { problems: string[]; load: string; why?: string }> = {
  'add_with_dup_inputs.onnx': { problems: [], load: 'ok' },
  'and.onnx': { problems: [], load: 'ok' },
  'attention.onnx': { problems: [], load: 'ok' },
  'attention_same_qkv.onnx': { problems: [], load: 'ok' },
  'bad_graph_conditionally_invalid.onnx': { problems: [], load: 'ok', why: 'valid until run with cond=false (tested below)' },
  'bad_graph_with_dup_value_info.onnx': { problems: ['DUPLICATE_NAME'], load: 'ONNX_INVALID', why: 'graph input "inp" listed twice' },
  'bad_graph_with_duplicate_node_names.onnx': { problems: ['DUPLICATE_NODE_NAME'], load: 'ONNX_INVALID' },
  'bad_graph_with_multi_level_errors.onnx': { problems: ['GRAPH_NAME'], load: 'ONNX_INVALID', why: 'no graph name; MatMul shapes incompatible' },
  'bad_graph_with_no_import_domains.onnx': { problems: ['MISSING_OPSET', 'MISSING_OPSET'], load: 'ONNX_INVALID' },
  'bad_graph_with_no_name.onnx': { problems: ['GRAPH_NAME'], load: 'ok', why: 'onnx.checker requires a graph name; onnxruntime does not' },
  'bad_graph_with_parallel_invalid_nodes.onnx': { problems: [], load: 'ONNX_INVALID', why: 'shape errors only shape inference finds' },
  'capability.onnx': { problems: [], load: 'ONNX_UNSUPPORTED', why: 'FAKE! operator' },
  'cleanable.onnx': { problems: [], load: 'ok' },
  'const_foldable.onnx': { problems: [], load: 'ok' },
  'conv.onnx': { problems: [], load: 'ok' },
  'custom_op_node.onnx': { problems: ['MISSING_OPSET'], load: 'ONNX_INVALID', why: 'node of domain ai.onnx.contrib without its opset import' },
  'dim_param.onnx': { problems: [], load: 'ok' },
  'dynamic_identity.onnx': { problems: [], load: 'ok' },
  'empty.onnx': { problems: ['NO_OUTPUTS'], load: 'ONNX_INVALID' },
  'empty_tensor_expand.onnx': { problems: [], load: 'ok' },
  'ext_weights.onnx': { problems: ['EXTERNAL_DATA_MISSING'], load: 'ONNX_INVALID', why: 'its data file lies in data/, not next to it' },
  'identity.onnx': { problems: [], load: 'ok' },
  'identity_identity.onnx': { problems: [], load: 'ok' },
  'identity_multi_ch.onnx': { problems: [], load: 'ok' },
  'identity_with_initializer.onnx': { problems: [], load: 'ok' },
  'inp_dim_val_not_set.onnx': { problems: ['GRAPH_NAME'], load: 'ok', why: 'empty graph name' },
  'instancenorm.onnx': { problems: [], load: 'ok' },
  'loop.onnx': { problems: [], load: 'ok' },
  'matmul.bf16.i32data.onnx': { problems: [], load: 'ONNX_UNSUPPORTED', why: 'bfloat16 MatMul has no CPU kernel' },
  'matmul.bf16.onnx': { problems: [], load: 'ONNX_UNSUPPORTED' },
  'matmul.fp16.onnx': { problems: [], load: 'ok' },
  'matmul.onnx': { problems: [], load: 'ok' },
  'matmul_2layer.onnx': { problems: [], load: 'ok' },
  'multi_attention.onnx': { problems: [], load: 'ok' },
  'multi_output.onnx': { problems: [], load: 'ok' },
  'needs_constraints.onnx': { problems: [], load: 'ok' },
  'no_op_reshape.onnx': { problems: [], load: 'ok' },
  'nonzero.onnx': { problems: [], load: 'ok' },
  'pow_scalar.onnx': { problems: [], load: 'ok' },
  'qdq_conv.onnx': { problems: [], load: 'ok' },
  'reducable.onnx': { problems: [], load: 'ok' },
  'reducable_with_const.onnx': { problems: [], load: 'ok' },
  'renamable.onnx': { problems: [], load: 'ok' },
  'reshape.onnx': { problems: [], load: 'ok' },
  'residual_block.onnx': { problems: [], load: 'ok' },
  'roialign.onnx': { problems: [], load: 'ok' },
  'scan.onnx': { problems: [], load: 'ok' },
  'sparse.conv.onnx': { problems: [], load: 'ok' },
  'sparse.matmul.onnx': { problems: [], load: 'ok' },
  'tensor_attr.onnx': { problems: [], load: 'ok' },
  'toy_subgraph.onnx': { problems: [], load: 'ONNX_UNSUPPORTED', why: 'placeholder operators O, A, B, C, D, E' },
  'transpose_matmul.onnx': { problems: [], load: 'ok' },
  'unbounded_dds.onnx': { problems: [], load: 'ok' },
  'unsorted.onnx': { problems: [], load: 'ok', why: 'a warning: nodes not topologically sorted' },
  'weightless.conv.onnx': { problems: ['INITIALIZER_SIZE'], load: 'ONNX_INVALID', why: 'weights stripped' },
  'weightless.matmul.bf16.onnx': { problems: ['INITIALIZER_SIZE'], load: 'ONNX_INVALID' },
  'weightless.matmul.fp16.onnx': { problems: ['INITIALIZER_SIZE'], load: 'ONNX_INVALID' },
  'weightless.qdq_conv.onnx': { problems: ['INITIALIZER_SIZE', 'INITIALIZER_SIZE'], load: 'ONNX_INVALID' },
  'weightless.sparse.conv.onnx': { problems: ['INITIALIZER_SIZE'], load: 'ONNX_INVALID' },
  'weightless.sparse.matmul.onnx': { problems: ['INITIALIZER_SIZE'], load: 'ONNX_INVALID' },
  'weightless.transpose_matmul.onnx': { problems: ['INITIALIZER_SIZE'], load: 'ONNX_INVALID' },
  'ext_weights_same_dir/ext_weights.onnx': { problems: [], load: 'ok' },
  'examples/check01_bad_graph.onnx': { problems: ['GRAPH_NAME'], load: 'ONNX_INVALID', why: "Polygraphy's lint example" },
  'examples/inspect08_tensorrt_onnx_support_model.onnx': { problems: [], load: 'ONNX_UNSUPPORTED', why: 'Fake operator' },
}

describe('Polygraphy test models', () => {
  it('the table covers every model in the fixtures', () => {
    const found = [
      ...readdirSync(ROOT).filter((f) => f.endsWith('.onnx')),
      ...readdirSync(join(ROOT, 'ext_weights_same_dir')).filter((f) => f.endsWith('.onnx')).map((f) => `ext_weights_same_dir/${f}`),
      ...readdirSync(join(ROOT, 'examples')).filter((f) => f.endsWith('.onnx')).map((f) => `examples/${f}`),
    ].sort()
    expect(found).toEqual(Object.keys(EXPECTED).sort())
  })

  for (const [file, want] of Object.entries(EXPECTED)) {
    const valid = want.problems.length === 0 && want.load === 'ok'
    it(`${file}: ${valid ? 'inspects and loads' : `refused (${[...want.problems, want.load].filter((x) => x !== 'ok').join(', ')})`}${want.why ? ` [${want.why}]` : ''}`, async () => {
      const path = join(ROOT, file)
      const info = await inspectModel(path)
      const errors = info.problems.filter((p) => p.severity === 'error')
      expect(errors.map((p) => p.code)).toEqual(want.problems)
      expect(info.passed).toBe(want.problems.length === 0)
      for (const p of errors) expect(p.message.length).toBeGreaterThan(20)
      if (want.problems.length) {
        const err = (() => { try { assertWellFormed(info) } catch (e) { return e } })() as ModelforgeError
        expect(err.exitCode).toBe(4)
        expect(err.message).toContain(path)
        expect(err.hint).toBeTruthy()
      }
      const loaded = await loadModel(path).then(async (m) => {
        await closeModel(m)
        return 'ok'
      }, (e: ModelforgeError) => {
        expect(e.exitCode).toBe(4)
        expect(e.message).toContain(path)
        expect(e.hint).toBeTruthy()
        return e.code
      })
      expect(loaded).toBe(want.load)
    })
  }

  it('refuses a TensorFlow graph as not ONNX', async () => {
    await expect(inspectModel(join(ROOT, 'tf_identity.pb'))).rejects.toMatchObject({ exitCode: 4, code: 'ONNX_INVALID' })
    await expect(loadModel(join(ROOT, 'tf_identity.pb'))).rejects.toMatchObject({ exitCode: 4, code: 'ONNX_INVALID' })
  })

  it('with load, inspect reports what onnxruntime says', async () => {
    const bad = await inspectModel(join(ROOT, 'bad_graph_with_parallel_invalid_nodes.onnx'), { load: true })
    expect(bad.passed).toBe(false)
    expect(bad.runtime).toMatchObject({ loaded: false, code: 'ONNX_INVALID' })
    expect(bad.problems.at(-1)?.message).toMatch(/Incompatible dimensions for matrix multiplication/)
    const ok = await inspectModel(join(ROOT, 'dim_param.onnx'), { load: true })
    expect(ok.runtime).toEqual({ loaded: true, inputs: [{ name: 'Input:0', dtype: 'float32', shape: ['dim0', 16, 128] }], outputs: expect.any(Array) })
  })

  it('describes subgraphs and external data', async () => {
    const loop = await inspectModel(join(ROOT, 'loop.onnx'))
    expect(loop.subgraphs).toBe(1)
    expect(loop.ops.find((o) => o.op === 'Loop')?.count).toBe(1)
    // Nodes inside the body are counted too (the main graph has 6).
    expect(loop.nodes).toBeGreaterThan(6)
    const ifModel = await inspectModel(join(ROOT, 'bad_graph_conditionally_invalid.onnx'))
    expect(ifModel.subgraphs).toBe(2)
    const ext = await inspectModel(join(ROOT, 'ext_weights_same_dir', 'ext_weights.onnx'))
    expect(ext.externalData).toEqual([{ location: 'ext_weights.data', tensors: 3, bytes: 36, exists: true, size: expect.any(Number) }])
    expect(ext.parameters).toEqual({ tensors: 3, count: 9, bytes: 36, externalTensors: 3, dtypes: { float32: 9 } })
  })

  it('a conditionally invalid graph fails at run time with exit 4', async () => {
    const m = await loadModel(join(ROOT, 'bad_graph_conditionally_invalid.onnx'))
    try {
      const ok = await runModel(m, { cond: fromValues('bool', [1], [true]) })
      expect(ok.matmul_out_0.dims).toEqual([2, 2])
      await expect(runModel(m, { cond: fromValues('bool', [1], [false]) })).rejects.toMatchObject({ exitCode: 4, code: 'ONNX_RUN_FAILED' })
    } finally {
      await closeModel(m)
    }
  })
})
