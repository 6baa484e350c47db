/**
 * Writes an ONNX model whose large initializers are produced one at a time (read from the checkpoint,
 * converted, written, dropped), inline or as external data.
 *
 * Why not encodeModel(): protobufjs builds the whole message in memory, so a 91 MB model would need the
 * weights plus a second 91 MB copy. A protobuf message is a concatenation of fields and a repeated field
 * may be split anywhere, so we encode everything but those initializers with protobufjs and append each
 * initializer as a GraphProto field 5 record, streaming its raw_data (TensorProto field 9) straight to disk.
 */
import { open, type FileHandle } from 'node:fs/promises'
import { basename } from 'node:path'
import { encodeGraph, encodeModel, encodeTensor, type ModelProto, type TensorProto } from './proto.js'
import { DATA_LOCATION_EXTERNAL, externalEntries } from './external-data.js'

export interface LazyInitializer {
  name: string
  dims: number[]
  dataType: number
  byteLength: number
  /**
   * Produces the little-endian bytes, in one piece or in chunks; called once, when the tensor is written.
   * The writer is done with each piece when the next is requested, so producers may reuse their buffers.
   */
  load(): Promise<Uint8Array> | AsyncIterable<Uint8Array>
}

export interface WriteOptions {
  /**
   * Total weight bytes above which initializers go to external data. Default 2 GB minus headroom for the
   * graph, since protobuf cannot parse a message of 2 GiB or more.
   */
  externalDataThreshold?: number
  /** Tensors smaller than this stay inline even with external data (as onnx's save does). */
  externalMinTensorBytes?: number
}

export interface WrittenModel {
  /** Absolute paths written: the model and, with external data, its data file. */
  files: string[]
  externalData?: string
  modelBytes: number
  weightBytes: number
}

export const DEFAULT_EXTERNAL_THRESHOLD = 2_000_000_000
/** Page-aligned offsets let onnxruntime map the data file instead of copying it. */
const EXTERNAL_ALIGN = 4096

function varint(n: number): Uint8Array {
  const bytes: number[] = []
  let v = n
  while (v >= 0x80) {
    bytes.push((v % 0x80) | 0x80)
    v = Math.floor(v / 0x80)
  }
  bytes.push(v)
  return Uint8Array.from(bytes)
}

const GRAPH_FIELD = (7 << 3) | 2
const INITIALIZER_FIELD = (5 << 3) | 2
const RAW_DATA_FIELD = (9 << 3) | 2

class Sink {
  position = 0
  private pending: Uint8Array[] = []
  private pendingBytes = 0
  constructor(private readonly fh: FileHandle) {}

  async write(chunk: Uint8Array): Promise<void> {
    // Many small header records: batch them into one write call.
    if (chunk.byteLength < 1 << 16) {
      // Copied: producers reuse their buffers once write() returns.
      this.pending.push(Uint8Array.prototype.slice.call(chunk))
      this.pendingBytes += chunk.byteLength
      this.position += chunk.byteLength
      if (this.pendingBytes >= 1 << 20) await this.flush()
      return
    }
    await this.flush()
    let done = 0
    while (done < chunk.byteLength) {
      const { bytesWritten } = await this.fh.write(chunk, done, Math.min(chunk.byteLength - done, 1 << 30))
      done += bytesWritten
    }
    this.position += chunk.byteLength
  }

  async flush(): Promise<void> {
    if (this.pendingBytes === 0) return
    const all = Buffer.concat(this.pending, this.pendingBytes)
    this.pending = []
    this.pendingBytes = 0
    await this.fh.write(all)
  }
}

/**
 * Writes `model` (its graph's own initializers inline) plus `lazy` initializers to `path`; with external
 * data the lazy ones go to `<basename(path)>.data` next to it.
 */
export async function writeModelStreaming(path: string, model: ModelProto, lazy: LazyInitializer[], options: WriteOptions = {}): Promise<WrittenModel> {
  const weightBytes = lazy.reduce((a, t) => a + t.byteLength, 0)
  const external = weightBytes > (options.externalDataThreshold ?? DEFAULT_EXTERNAL_THRESHOLD)
  const minExternal = options.externalMinTensorBytes ?? 1024
  const dataName = `${basename(path)}.data`
  const dataPath = `${path}.data`

  // First pass: headers and offsets, so that the graph's length prefix is known before any byte is written.
  let dataOffset = 0
  const plans = lazy.map((t) => {
    const header: TensorProto = { name: t.name, dims: t.dims, dataType: t.dataType }
    const toExternal = external && t.byteLength >= minExternal
    let offset = 0
    if (toExternal) {
      offset = Math.ceil(dataOffset / EXTERNAL_ALIGN) * EXTERNAL_ALIGN
      dataOffset = offset + t.byteLength
      header.dataLocation = DATA_LOCATION_EXTERNAL
      header.externalData = externalEntries(dataName, offset, t.byteLength)
    }
    const head = encodeTensor(header)
    const rawPrefix = toExternal ? new Uint8Array(0) : Uint8Array.from([RAW_DATA_FIELD, ...varint(t.byteLength)])
    const tensorLength = head.byteLength + rawPrefix.byteLength + (toExternal ? 0 : t.byteLength)
    const recordPrefix = Uint8Array.from([INITIALIZER_FIELD, ...varint(tensorLength)])
    return { t, toExternal, offset, head, rawPrefix, recordLength: recordPrefix.byteLength + tensorLength, recordPrefix }
  })

  const { graph, ...rest } = model
  const graphHead = encodeGraph(graph ?? {})
  const graphLength = graphHead.byteLength + plans.reduce((a, p) => a + p.recordLength, 0)
  const modelHead = encodeModel(rest)

  const fh = await open(path, 'w')
  const dataFh = external ? await open(dataPath, 'w') : undefined
  try {
    const sink = new Sink(fh)
    const dataSink = dataFh ? new Sink(dataFh) : undefined
    await sink.write(modelHead)
    await sink.write(Uint8Array.from([GRAPH_FIELD, ...varint(graphLength)]))
    await sink.write(graphHead)
    for (const p of plans) {
      await sink.write(p.recordPrefix)
      await sink.write(p.head)
      let target = sink
      if (p.toExternal) {
        target = dataSink!
        const pad = p.offset - target.position
        if (pad > 0) await target.write(new Uint8Array(pad))
      } else {
        await sink.write(p.rawPrefix)
      }
      const start = target.position
      const produced = p.t.load()
      if (produced instanceof Uint8Array || produced instanceof Promise) {
        await target.write(await produced)
      } else {
        for await (const chunk of produced) await target.write(chunk)
      }
      // A wrong length would shift every later field: fail before the file is used.
      if (target.position - start !== p.t.byteLength) {
        throw new RangeError(`initializer ${p.t.name}: produced ${target.position - start} bytes, expected ${p.t.byteLength}`)
      }
    }
    await sink.flush()
    await dataSink?.flush()
    const modelBytes = sink.position
    return { files: dataFh ? [path, dataPath] : [path], externalData: dataFh ? dataName : undefined, modelBytes, weightBytes }
  } finally {
    await fh.close()
    await dataFh?.close()
  }
}
