/**
 * inspect --load: inspect's report of the ONNX file (src/onnx/inspect.ts, which only reads it) with what
 * onnxruntime makes of the model. onnxruntime catches what a structural reading cannot: shape errors,
 * operators or types it has no kernel for.
 */
import { type ModelforgeError } from '../lib/errors.js'
import { inspectModel as readInspection, passes, type ModelInspection, type RuntimeView, type ValueSummary } from '../onnx/inspect.js'

export interface InspectOptions {
  /** Also load the model in onnxruntime-node and report what it says (catches shape errors, unknown ops). */
  load?: boolean
}

/** Loads the model once and releases it: onnxruntime's inputs and outputs, or why it refused the model. */
export async function runtimeView(path: string): Promise<RuntimeView> {
  // Imported lazily: inspect without --load must not pay for starting onnxruntime.
  const { loadModel, closeModel } = await import('./runtime.js')
  try {
    const m = await loadModel(path)
    await closeModel(m)
    const asSummary = (v: { name: string; dtype: string; shape: (number | string)[] }): ValueSummary => ({ name: v.name, dtype: v.dtype, shape: v.shape })
    return { loaded: true, inputs: m.inputs.map(asSummary), outputs: m.outputs.map(asSummary) }
  } catch (err) {
    const e = err as ModelforgeError
    return { loaded: false, code: e.code ?? 'ONNX_INVALID', message: e.message }
  }
}

/** The report with onnxruntime's view added; a refusal is one more error, so the model no longer passes. */
export function withRuntimeView(info: ModelInspection, view: RuntimeView): ModelInspection {
  const problems = view.loaded ? info.problems : [...info.problems, { severity: 'error' as const, code: view.code, message: view.message }]
  return { ...info, problems, passed: passes(problems), runtime: view }
}

/** inspect's report, and with `load` onnxruntime's view of the model in `runtime`. */
export async function inspectModel(path: string, options: InspectOptions = {}): Promise<ModelInspection> {
  const info = await readInspection(path)
  return options.load ? withRuntimeView(info, await runtimeView(path)) : info
}
