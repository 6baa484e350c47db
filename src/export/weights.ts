/**
 * Checkpoint tensors as lazy ONNX initializers: shapes are checked against what config.json implies when
 * the graph is built, and the bytes are read (and converted to float32, transposed for MatMul) only when
 * the model writer asks for them.
 */
import { IntegrityError } from '../lib/errors.js'
import { DataType } from '../onnx/proto.js'
import { type SafetensorsCheckpoint } from './safetensors.js'
import { type LazyInitializer } from '../onnx/write-model.js'

const same = (a: number[], b: number[]): boolean => a.length === b.length && a.every((v, i) => v === b[i])

export class LazyWeights {
  readonly initializers: LazyInitializer[] = []
  private readonly names = new Set<string>()
  /** Checkpoint tensors the graph reads, so that the ones it leaves can be named. */
  readonly used = new Set<string>()

  constructor(
    readonly checkpoint: SafetensorsCheckpoint,
    /** What config.json said, quoted in shape-mismatch errors. */
    private readonly configSummary: string,
  ) {}

  has(name: string): boolean {
    return this.checkpoint.has(name)
  }

  /** Fails with a clear message when the checkpoint's shape is not `expected`. */
  check(name: string, expected: number[]): void {
    const info = this.checkpoint.info(name)
    this.used.add(name)
    if (!same(info.shape, expected)) {
      throw new IntegrityError(
        `Weight ${name} has shape [${info.shape.join(', ')}] but config.json (${this.configSummary}) implies [${expected.join(', ')}]`,
        {
          code: 'WEIGHTS_SHAPE_MISMATCH',
          hint: 'config.json and the weights belong to different models, or the config was edited; use the config saved with these weights.',
          details: { tensor: name, shape: info.shape, expected },
        },
      )
    }
  }

  private add(name: string, dims: number[], load: () => Promise<Float32Array> | AsyncIterable<Float32Array>): string {
    if (!this.names.has(name)) {
      this.names.add(name)
      const count = dims.reduce((a, b) => a * b, 1)
      const bytes = (data: Float32Array): Uint8Array => new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
      this.initializers.push({
        name,
        dims,
        dataType: DataType.FLOAT,
        byteLength: count * 4,
        load: () => {
          const produced = load()
          if (produced instanceof Promise) return produced.then(bytes)
          return (async function* () {
            for await (const chunk of produced) yield bytes(chunk)
          })()
        },
      })
    }
    return name
  }

  /** A tensor as stored (converted to float32), after checking its shape; streamed in chunks. */
  tensor(name: string, expected: number[]): string {
    this.check(name, expected)
    return this.add(name, expected, () => this.checkpoint.float32Chunks(name))
  }

  /**
   * Scratch for transposes, reused from one weight to the next (the writer is done with a tensor before
   * it loads the next), so exporting allocates about one weight matrix instead of all of them.
   */
  private scratch = new Float32Array(0)
  private rawScratch = new Uint8Array(0)
  private take(n: number): Float32Array {
    if (this.scratch.length < n) this.scratch = new Float32Array(n)
    return this.scratch.subarray(0, n)
  }
  private raw(bytes: number): Uint8Array {
    if (this.rawScratch.byteLength < bytes) this.rawScratch = new Uint8Array(bytes)
    return this.rawScratch
  }

  /**
   * A torch Linear weight [out, in] transposed to [in, out] for MatMul (as torch.onnx.export stores it),
   * under the name `<name>.T`.
   */
  linear(name: string, out: number, inp: number): string {
    this.check(name, [out, inp])
    return this.add(`${name}.T`, [inp, out], async () => {
      const w = await this.checkpoint.readFloat32(name, this.raw(this.checkpoint.info(name).byteLength))
      const t = this.take(w.length)
      for (let o = 0; o < out; o++) {
        const row = o * inp
        for (let i = 0; i < inp; i++) t[i * out + o] = w[row + i]!
      }
      return t
    })
  }

  /** One row of a 2-D table (RoBERTa's single token type embedding, added as a constant). */
  row(name: string, expected: number[], index: number): string {
    this.check(name, expected)
    const width = expected[1]!
    return this.add(`${name}[${index}]`, [width], async () => {
      const all = await this.checkpoint.readFloat32(name)
      return all.slice(index * width, (index + 1) * width)
    })
  }
}
