/**
 * The fp16 transform (to-fp16.ts) for a model whose weights are still lazy (write-model.ts): the graph
 * is rewritten from the weights' headers alone, and each weight the rewrite stores in fp16 is converted
 * chunk by chunk while the writer streams it, so `export --dtype fp16` never holds the model in memory.
 */
import { convertToFp16, toFp16Bits, type Fp16Options, type Fp16Report } from './to-fp16.js'
import { DataType, type ModelProto, type TensorProto } from './proto.js'
import { type LazyInitializer } from './write-model.js'

export interface LazyFp16Model {
  model: ModelProto
  initializers: LazyInitializer[]
  report: Fp16Report
}

/** float32 bytes (as a producer yields them) to fp16 bytes; the producer's buffer is not changed. */
function halfBytes(bytes: Uint8Array, counts: { clamped: number }): Uint8Array {
  if (bytes.byteLength % 4 !== 0) throw new RangeError(`a float32 chunk of ${bytes.byteLength} bytes is not whole values`)
  const values = new Float32Array(bytes.byteLength / 4)
  new Uint8Array(values.buffer).set(bytes)
  const bits = toFp16Bits(values, counts)
  return new Uint8Array(bits.buffer, bits.byteOffset, bits.byteLength)
}

function halfOf(source: LazyInitializer, name: string, counts: { clamped: number }): LazyInitializer {
  return {
    name,
    dims: source.dims,
    dataType: DataType.FLOAT16,
    byteLength: source.byteLength / 2,
    load: () => {
      const produced = source.load()
      if (produced instanceof Promise) return produced.then((b) => halfBytes(b, counts))
      return (async function* () {
        for await (const chunk of produced) yield halfBytes(chunk, counts)
      })()
    },
  }
}

/**
 * `model` with its float32 computation in fp16 (the transform's default block list; no measurement, which
 * needs onnxruntime and the weights in memory: that is `quantize --precision fp16`). `report.clampedValues`
 * is counted as the weights stream, so it is final only after the model is written.
 */
export function lazyFp16(model: ModelProto, lazy: readonly LazyInitializer[], options: Omit<Fp16Options, 'deferred'> = {}): LazyFp16Model {
  const byName = new Map(lazy.map((t) => [t.name, t]))
  const floats = new Set(lazy.filter((t) => t.dataType === DataType.FLOAT).map((t) => t.name))
  const headers: TensorProto[] = lazy.filter((t) => floats.has(t.name)).map((t) => ({ name: t.name, dims: t.dims, dataType: DataType.FLOAT }))
  const graph = model.graph ?? {}
  const skeleton: ModelProto = { ...model, graph: { ...graph, initializer: [...(graph.initializer ?? []), ...headers] } }
  const { model: converted, report, deferred } = convertToFp16(skeleton, { ...options, deferred: floats })

  const counts = {
    get clamped() { return report.clampedValues },
    set clamped(n: number) { report.clampedValues = n },
  }
  const inline: TensorProto[] = []
  const streamed: LazyInitializer[] = lazy.filter((t) => !floats.has(t.name))
  for (const t of converted.graph?.initializer ?? []) {
    const name = t.name ?? ''
    const source = deferred.get(name)
    if (source !== undefined) streamed.push(halfOf(byName.get(source)!, name, counts))
    else if (floats.has(name)) streamed.push(byName.get(name)!)
    else inline.push(t)
  }
  return { model: { ...converted, graph: { ...converted.graph, initializer: inline } }, initializers: streamed, report }
}
