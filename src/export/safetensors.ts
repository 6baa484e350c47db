/**
 * safetensors reader (single file or sharded through model.safetensors.index.json) and a small writer.
 *
 * Hand-written on purpose: the format is an 8-byte length, a JSON header and a byte buffer, and the npm
 * packages that read it either load whole files into memory or skip the checks below. We read the header
 * only, validate it against the file the way the Rust reference reader does (header length vs file size,
 * offsets in range, contiguous and non-overlapping, byte sizes vs shapes, known dtypes), and then read one
 * tensor at a time with positioned reads, so memory holds at most the tensor being converted.
 */
import { open, stat, writeFile, type FileHandle } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { errnoCode, IntegrityError, NotFoundError, osFailure, UsageError } from '../lib/errors.js'
import { parseJson, readJsonFile } from '../lib/json.js'
import { bf16ToF32, f16ToF32 } from '../onnx/float16.js'

/** Bits per element of every dtype the reference implementation knows. */
export const SAFETENSORS_DTYPE_BITS: Record<string, number> = {
  BOOL: 8, U8: 8, I8: 8, F8_E5M2: 8, F8_E4M3: 8, F8_E8M0: 8, F8_E4M3FNUZ: 8, F8_E5M2FNUZ: 8,
  I16: 16, U16: 16, F16: 16, BF16: 16, I32: 32, U32: 32, F32: 32, C64: 64, F64: 64, I64: 64, U64: 64,
  F4: 4, F6_E2M3: 6, F6_E3M2: 6,
}
/** dtypes that readFloat32 converts. */
export const FLOAT_DTYPES = ['F32', 'F16', 'BF16', 'F64'] as const

/** The Rust reader's limit; a larger header is a corrupt or hostile file. */
const MAX_HEADER_BYTES = 100_000_000

export interface TensorInfo {
  name: string
  dtype: string
  shape: number[]
  /** The file holding the tensor. */
  file: string
  /** Absolute byte offset of the tensor in the file. */
  offset: number
  byteLength: number
}

export interface SafetensorsHeader {
  file: string
  headerLength: number
  fileSize: number
  metadata: Record<string, string>
  tensors: TensorInfo[]
}

const invalid = (file: string, what: string): UsageError =>
  new IntegrityError(`${file} is not a valid safetensors file: ${what}`, {
    code: 'SAFETENSORS_INVALID',
    hint: 'The file is truncated, corrupt or not safetensors. Download it again (modelforge fetch <repo> --refresh) or re-save it with safetensors.',
    details: { file },
  })

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0

/** Parses and validates a header; `fileSize` is the size of the whole file. */
export function parseSafetensorsHeader(file: string, head: Uint8Array, fileSize: number): SafetensorsHeader {
  if (fileSize < 8 || head.byteLength < 8) throw invalid(file, `it holds ${fileSize} bytes, fewer than the 8-byte header length`)
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength)
  const n = view.getBigUint64(0, true)
  if (n > BigInt(fileSize - 8)) {
    throw invalid(file, `the header length field says ${n} bytes but the file holds only ${fileSize - 8} bytes after it`)
  }
  const headerLength = Number(n)
  if (headerLength > MAX_HEADER_BYTES) throw invalid(file, `the header is ${headerLength} bytes, over the 100 MB limit`)
  if (head.byteLength < 8 + headerLength) throw invalid(file, 'the header was not read completely')
  const text = Buffer.from(head.buffer, head.byteOffset + 8, headerLength).toString('utf8')
  if (!text.startsWith('{')) throw invalid(file, 'the header does not start with "{"')
  const parsed = parseJson<Record<string, unknown>>(text, file, {
    expect: 'object',
    onError: (f) => invalid(file, f.kind === 'syntax' ? `the header is not JSON (${f.reason})` : 'the header is not a JSON object'),
  })
  const dataStart = 8 + headerLength
  const dataLength = fileSize - dataStart
  const tensors: TensorInfo[] = []
  let metadata: Record<string, string> = {}
  for (const [name, raw] of Object.entries(parsed)) {
    if (name === '__metadata__') {
      if (!raw || typeof raw !== 'object' || Array.isArray(raw) || Object.values(raw).some((v) => typeof v !== 'string')) {
        throw invalid(file, '__metadata__ must map strings to strings')
      }
      metadata = raw as Record<string, string>
      continue
    }
    const entry = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown }
    if (!entry || typeof entry !== 'object') throw invalid(file, `tensor ${name} is not an object`)
    const { dtype, shape, data_offsets: offsets } = entry
    if (typeof dtype !== 'string' || !(dtype in SAFETENSORS_DTYPE_BITS)) {
      throw invalid(file, `tensor ${name} has unknown dtype ${JSON.stringify(dtype)} (known: ${Object.keys(SAFETENSORS_DTYPE_BITS).join(', ')})`)
    }
    if (!Array.isArray(shape) || !shape.every(isCount)) throw invalid(file, `tensor ${name} has an invalid shape ${JSON.stringify(shape)}`)
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount) || offsets[0] > offsets[1]) {
      throw invalid(file, `tensor ${name} has invalid data_offsets ${JSON.stringify(offsets)}`)
    }
    const [begin, end] = offsets as [number, number]
    if (end > dataLength) {
      throw invalid(file, `tensor ${name} has data_offsets [${begin}, ${end}] beyond the ${dataLength} bytes of data (out of range)`)
    }
    const bits = (shape as number[]).reduce((a, b) => a * b, 1) * SAFETENSORS_DTYPE_BITS[dtype]!
    if (bits % 8 !== 0 || bits / 8 !== end - begin) {
      throw invalid(file, `tensor ${name} (${dtype} [${(shape as number[]).join(', ')}]) needs ${bits / 8} bytes but data_offsets span ${end - begin}`)
    }
    tensors.push({ name, dtype, shape: shape as number[], file, offset: dataStart + begin, byteLength: end - begin })
  }
  // Like the reference reader: sorted by offset, tensors tile the data region exactly (no overlap, no holes).
  const sorted = [...tensors].sort((a, b) => a.offset - b.offset || a.byteLength - b.byteLength)
  let cursor = dataStart
  let previous: TensorInfo | undefined
  for (const t of sorted) {
    if (t.offset < cursor) {
      throw invalid(file, `tensors ${previous!.name} and ${t.name} overlap (bytes ${t.offset - dataStart}..${cursor - dataStart})`)
    }
    if (t.offset > cursor) throw invalid(file, `${t.offset - cursor} bytes before tensor ${t.name} belong to no tensor`)
    cursor = t.offset + t.byteLength
    previous = t
  }
  if (cursor !== fileSize) throw invalid(file, `${fileSize - cursor} bytes after the last tensor belong to no tensor`)
  return { file, headerLength, fileSize, metadata, tensors }
}

async function openFile(file: string): Promise<FileHandle> {
  try {
    return await open(file, 'r')
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') {
      throw new NotFoundError(`${file} does not exist`, { code: 'WEIGHTS_NOT_FOUND', hint: 'Check the model directory; download it again with modelforge fetch.' })
    }
    throw osFailure(err, 'opening the checkpoint')
  }
}

async function readExactly(fh: FileHandle, target: Uint8Array, position: number, file: string): Promise<void> {
  // One read() is capped near 2 GiB; loop so tensors of any size read fully.
  let done = 0
  while (done < target.byteLength) {
    const length = Math.min(target.byteLength - done, 1 << 30)
    const { bytesRead } = await fh.read(target, done, length, position + done)
    if (bytesRead === 0) throw invalid(file, 'it ended early while reading tensor data (was it modified while reading?)')
    done += bytesRead
  }
}

/** Reads and validates the header of one safetensors file (the tensor data is not read). */
export async function readSafetensorsHeader(file: string): Promise<SafetensorsHeader> {
  const fh = await openFile(file)
  try {
    const { size } = await fh.stat()
    const lengthBytes = new Uint8Array(8)
    if (size >= 8) await readExactly(fh, lengthBytes, 0, file)
    const n = size >= 8 ? new DataView(lengthBytes.buffer).getBigUint64(0, true) : 0n
    if (size < 8 || n > BigInt(size - 8) || n > BigInt(MAX_HEADER_BYTES)) return parseSafetensorsHeader(file, lengthBytes, size)
    const head = new Uint8Array(8 + Number(n))
    await readExactly(fh, head, 0, file)
    return parseSafetensorsHeader(file, head, size)
  } finally {
    await fh.close()
  }
}

/** The weights of a checkpoint: every tensor of one safetensors file or of all shards of an index. */
export class SafetensorsCheckpoint {
  readonly tensors = new Map<string, TensorInfo>()
  private readonly handles = new Map<string, Promise<FileHandle>>()

  constructor(
    readonly files: string[],
    headers: SafetensorsHeader[],
    /** The index file for sharded checkpoints. */
    readonly index?: string,
  ) {
    for (const header of headers) {
      for (const t of header.tensors) {
        const other = this.tensors.get(t.name)
        if (other) {
          throw new IntegrityError(`Tensor ${t.name} is stored twice, in ${basename(other.file)} and ${basename(t.file)}`, {
            code: 'SAFETENSORS_INVALID',
            hint: 'The shards do not belong together; download the checkpoint again.',
          })
        }
        this.tensors.set(t.name, t)
      }
    }
  }

  /** Sum of the tensors' byte sizes. */
  get totalBytes(): number {
    let n = 0
    for (const t of this.tensors.values()) n += t.byteLength
    return n
  }

  has(name: string): boolean {
    return this.tensors.has(name)
  }

  info(name: string): TensorInfo {
    const t = this.tensors.get(name)
    if (!t) {
      throw new IntegrityError(`The checkpoint has no tensor ${name}`, {
        code: 'WEIGHTS_MISSING',
        hint: 'The weights do not match config.json (wrong architecture or an incomplete download).',
        details: { tensor: name },
      })
    }
    return t
  }

  /**
   * The raw little-endian bytes of a tensor, in a fresh buffer aligned for any typed-array view, or in the
   * start of `into` when it is large enough (callers that convert tensor after tensor reuse one buffer).
   */
  async readRaw(name: string, into?: Uint8Array): Promise<Uint8Array> {
    const t = this.info(name)
    const out = into && into.byteLength >= t.byteLength && into.byteOffset % 8 === 0 ? into.subarray(0, t.byteLength) : new Uint8Array(t.byteLength)
    await readExactly(await this.handle(t.file), out, t.offset, t.file)
    return out
  }

  private handle(file: string): Promise<FileHandle> {
    let handle = this.handles.get(file)
    if (!handle) {
      handle = openFile(file)
      this.handles.set(file, handle)
    }
    return handle
  }

  /**
   * A float tensor as float32 chunks of at most `chunkBytes` (of float32 output), for tensors written
   * straight through. The chunk buffers are reused: each chunk is valid only until the next is requested.
   */
  async *float32Chunks(name: string, chunkBytes = 4 << 20): AsyncGenerator<Float32Array> {
    const t = this.info(name)
    const width = SAFETENSORS_DTYPE_BITS[t.dtype]! / 8
    if (!(FLOAT_DTYPES as readonly string[]).includes(t.dtype)) {
      await this.readFloat32(name)
      return
    }
    const total = t.byteLength / width
    const perChunk = Math.max(1, Math.floor(chunkBytes / 4))
    const raw = new Uint8Array(Math.min(total, perChunk) * width)
    const out = t.dtype === 'F32' ? undefined : new Float32Array(Math.min(total, perChunk))
    const handle = await this.handle(t.file)
    for (let done = 0; done < total; done += perChunk) {
      const n = Math.min(perChunk, total - done)
      const bytes = raw.subarray(0, n * width)
      await readExactly(handle, bytes, t.offset + done * width, t.file)
      if (t.dtype === 'F32') {
        yield new Float32Array(raw.buffer, 0, n)
        continue
      }
      const dst = out!.subarray(0, n)
      if (t.dtype === 'F64') {
        const src = new Float64Array(raw.buffer, 0, n)
        for (let i = 0; i < n; i++) dst[i] = src[i]!
      } else {
        dst.set(t.dtype === 'F16' ? f16ToF32(new Uint16Array(raw.buffer, 0, n)) : bf16ToF32(new Uint16Array(raw.buffer, 0, n)))
      }
      yield dst
    }
  }

  /** A float tensor converted to float32 (F32 is a view of the bytes read, F16/BF16/F64 are converted). */
  async readFloat32(name: string, into?: Uint8Array): Promise<Float32Array> {
    const t = this.info(name)
    const raw = await this.readRaw(name, into)
    const count = t.byteLength / (SAFETENSORS_DTYPE_BITS[t.dtype]! / 8)
    switch (t.dtype) {
      case 'F32':
        return new Float32Array(raw.buffer, raw.byteOffset, count)
      case 'F16':
        return f16ToF32(new Uint16Array(raw.buffer, raw.byteOffset, count))
      case 'BF16':
        return bf16ToF32(new Uint16Array(raw.buffer, raw.byteOffset, count))
      case 'F64':
        return Float32Array.from(new Float64Array(raw.buffer, raw.byteOffset, count))
      default:
        throw new IntegrityError(`Tensor ${name} has dtype ${t.dtype}, not a float type (${FLOAT_DTYPES.join(', ')})`, {
          code: 'WEIGHTS_DTYPE',
          hint: 'Quantized or integer checkpoints are not supported by the native exporter; try --exporter optimum.',
        })
    }
  }

  async close(): Promise<void> {
    const handles = [...this.handles.values()]
    this.handles.clear()
    await Promise.all(handles.map(async (h) => (await h.catch(() => undefined))?.close()))
  }
}

export const SAFETENSORS_FILE = 'model.safetensors'
export const SAFETENSORS_INDEX = 'model.safetensors.index.json'

/** Opens `<dir>/model.safetensors`, or the shards listed by `<dir>/model.safetensors.index.json`. */
export async function openCheckpoint(dir: string): Promise<SafetensorsCheckpoint> {
  const single = join(dir, SAFETENSORS_FILE)
  const indexPath = join(dir, SAFETENSORS_INDEX)
  if (existsSync(single)) {
    return new SafetensorsCheckpoint([single], [await readSafetensorsHeader(single)])
  }
  if (existsSync(indexPath)) return openSharded(indexPath)
  const pytorch = ['pytorch_model.bin', 'pytorch_model.bin.index.json', 'tf_model.h5', 'flax_model.msgpack'].filter((f) => existsSync(join(dir, f)))
  if (pytorch.length > 0) {
    throw new UsageError(`${dir} has weights only as ${pytorch.join(', ')}, which the native exporter does not read (no safetensors)`, {
      code: 'NO_SAFETENSORS',
      hint: 'Pickle checkpoints run code when loaded, so modelforge reads only safetensors. Convert them (python -c "from transformers import AutoModel; AutoModel.from_pretrained(DIR).save_pretrained(DIR)") or use --exporter optimum.',
      details: { files: pytorch },
    })
  }
  throw new NotFoundError(`${dir} has no model weights (${SAFETENSORS_FILE} or ${SAFETENSORS_INDEX})`, {
    code: 'WEIGHTS_NOT_FOUND',
    hint: 'Point at a Hugging Face model directory or snapshot that contains safetensors weights.',
  })
}

async function openSharded(indexPath: string): Promise<SafetensorsCheckpoint> {
  const dir = dirname(indexPath)
  const index = await readJsonFile<{ weight_map?: unknown } | null>(indexPath, {
    onError: (f) => new IntegrityError(f.message, { code: 'SAFETENSORS_INDEX_INVALID', hint: 'Download the checkpoint again; the index file is damaged.' }),
  })
  const map = index?.weight_map
  if (!map || typeof map !== 'object' || Array.isArray(map) || Object.values(map).some((v) => typeof v !== 'string')) {
    throw new IntegrityError(`${indexPath} has no weight_map of tensor names to shard files`, {
      code: 'SAFETENSORS_INDEX_INVALID',
      hint: 'A sharded checkpoint index looks like {"metadata": {...}, "weight_map": {"tensor": "model-00001-of-00002.safetensors"}}.',
    })
  }
  const weightMap = map as Record<string, string>
  const shardNames = [...new Set(Object.values(weightMap))].sort()
  for (const s of shardNames) {
    if (s.includes('/') || s.includes('\\') || s === '..' || s === '.') {
      throw new IntegrityError(`${indexPath} names shard ${JSON.stringify(s)} outside the model directory`, {
        code: 'SAFETENSORS_INDEX_INVALID',
        hint: 'Shard names in weight_map must be plain file names next to the index.',
      })
    }
  }
  const files = shardNames.map((s) => join(dir, s))
  for (const f of files) {
    if (!existsSync(f)) {
      throw new NotFoundError(`Shard ${basename(f)} listed in ${basename(indexPath)} is missing`, {
        code: 'WEIGHTS_NOT_FOUND',
        hint: 'The download is incomplete; fetch the model again.',
        details: { shard: f },
      })
    }
  }
  const headers = await Promise.all(files.map((f) => readSafetensorsHeader(f)))
  const checkpoint = new SafetensorsCheckpoint(files, headers, indexPath)
  for (const [tensor, shard] of Object.entries(weightMap)) {
    const t = checkpoint.tensors.get(tensor)
    if (!t || basename(t.file) !== shard) {
      throw new IntegrityError(`${basename(indexPath)} puts tensor ${tensor} in ${shard}, but ${t ? `it is in ${basename(t.file)}` : `${shard} does not contain it`}`, {
        code: 'SAFETENSORS_INDEX_INVALID',
        hint: 'The index and the shards do not belong together; download the checkpoint again.',
      })
    }
  }
  return checkpoint
}

export interface TensorToWrite {
  dtype: string
  shape: number[]
  data: Uint8Array | Float32Array | Uint16Array | Int32Array | BigInt64Array | Float64Array
}

/**
 * Writes a safetensors file as the reference writer does (header padded with spaces to a multiple of 8,
 * tensors in name order). Used by the bench and tests to make checkpoints; data must already be in `dtype`.
 */
export async function writeSafetensors(file: string, tensors: Record<string, TensorToWrite>, metadata: Record<string, string> = { format: 'pt' }): Promise<number> {
  const header: Record<string, unknown> = { __metadata__: metadata }
  const names = Object.keys(tensors).sort()
  let offset = 0
  for (const name of names) {
    const t = tensors[name]!
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] }
    offset += t.data.byteLength
  }
  let json = JSON.stringify(header)
  const pad = (8 - ((Buffer.byteLength(json) + 8) % 8)) % 8
  json += ' '.repeat(pad)
  const head = Buffer.alloc(8)
  head.writeBigUInt64LE(BigInt(Buffer.byteLength(json)))
  const parts = [head, Buffer.from(json, 'utf8'), ...names.map((n) => {
    const d = tensors[n]!.data
    return new Uint8Array(d.buffer, d.byteOffset, d.byteLength)
  })]
  await writeFile(file, parts)
  return (await stat(file)).size
}
