/**
 * Runs a model with some of its inner values exposed as extra graph outputs, the way calibration and the
 * fp16 magnitude check look inside a model: only the named tensors are fetched, one run (batch) at a time,
 * so memory is bounded by one batch's activations and not by the calibration set.
 *
 * onnxruntime infers the type of an output declared by name alone, so the extra outputs carry no type;
 * `valueTypes` reads those inferred types back to say which values are float tensors.
 */
import { randomBytes } from 'node:crypto'
import { rm, writeFile } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { osFailure } from '../lib/errors.js'
import { encodeModel, type ModelProto } from '../onnx/proto.js'
import { externalDataRefs } from '../onnx/external-data.js'
import { loadModel, runModel, type LoadedModel, type LoadOptions } from './runtime.js'
import type { TensorMap } from './tensors.js'

export interface ExposedModel {
  loaded: LoadedModel
  /** Runs one batch and returns only `names` (defaults to every exposed value). */
  run(feeds: TensorMap, names?: string[]): Promise<TensorMap>
  close(): Promise<void>
}

/** A copy of `model` whose graph outputs are its own plus `names` (each once, in the given order). */
export function withOutputs(model: ModelProto, names: readonly string[]): ModelProto {
  const graph = model.graph ?? {}
  const outputs = [...(graph.output ?? [])]
  const have = new Set(outputs.map((o) => o.name))
  for (const name of names) {
    if (have.has(name)) continue
    have.add(name)
    outputs.push({ name })
  }
  return { ...model, graph: { ...graph, output: outputs } }
}

/**
 * Loads `model` (read from `path`, whose directory holds any external data) with `names` exposed. A model
 * with external data is loaded from a temporary sibling file, because onnxruntime resolves data locations
 * from the model file's directory; the file is removed as soon as the session exists.
 */
export async function exposeValues(model: ModelProto, path: string, names: readonly string[], options: LoadOptions = {}): Promise<ExposedModel> {
  const bytes = encodeModel(withOutputs(model, names))
  const label = options.label ?? path
  let loaded: LoadedModel
  if (externalDataRefs(model).length === 0) {
    loaded = await loadModel(bytes, { ...options, label })
  } else {
    const temp = join(dirname(path), `.${basename(path)}.${randomBytes(4).toString('hex')}.exposed.onnx`)
    try {
      await writeFile(temp, bytes)
    } catch (err) {
      throw osFailure(err, `writing a temporary copy of ${path} next to its external data`)
    }
    try {
      loaded = await loadModel(temp, { ...options, label })
    } finally {
      await rm(temp, { force: true })
    }
  }
  const exposed = [...new Set(names)]
  return {
    loaded,
    run: (feeds, only) => runModel(loaded, feeds, only ?? exposed),
    close: () => loaded.session.release(),
  }
}

/** Loads, calls fn, and releases the session whatever happens. */
export async function withExposedValues<T>(model: ModelProto, path: string, names: readonly string[], fn: (m: ExposedModel) => Promise<T>, options?: LoadOptions): Promise<T> {
  const exposed = await exposeValues(model, path, names, options)
  try {
    return await fn(exposed)
  } finally {
    await exposed.close()
  }
}

/** Every value a node produces (in graph order, empty names of omitted outputs left out). */
export function nodeOutputs(model: ModelProto): string[] {
  return (model.graph?.node ?? []).flatMap((n) => (n.output ?? []).filter((o) => o !== ''))
}

/** onnxruntime's type ('float32', 'int64', ...) of each input and output of an exposed model. */
export function typesOf(m: ExposedModel): Map<string, string> {
  const types = new Map<string, string>()
  for (const v of [...m.loaded.inputs, ...m.loaded.outputs]) types.set(v.name, v.dtype)
  return types
}

/**
 * onnxruntime's type of every node output, graph input and output, as it infers them: the model is loaded
 * once with all node outputs exposed and not run. (quantize keeps such a session open instead and runs it:
 * one session gives the types, the calibration runs and the fp32 reference.)
 */
export async function valueTypes(model: ModelProto, path: string): Promise<Map<string, string>> {
  return withExposedValues(model, path, nodeOutputs(model), async (m) => typesOf(m))
}
