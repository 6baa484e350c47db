/**
 * A small graph builder for writing ONNX models from TypeScript (toy-store models, native exporters,
 * Q/DQ rewrites). It names values, keeps initializers and nodes in order, and produces a ModelProto.
 */
import {
  AttributeType,
  DataType,
  type AttributeProto,
  type ModelProto,
  type NodeProto,
  type TensorProto,
  type ValueInfoProto,
} from './proto.js'

export type Dim = number | string
export type TypedData = Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array | Int8Array | Uint16Array

/** A float attribute, when the value happens to be an integer (e.g. alpha = 1). */
export class FloatAttr {
  constructor(readonly value: number) {}
}
export const float = (value: number): FloatAttr => new FloatAttr(value)

export type AttrValue = number | FloatAttr | string | number[] | FloatAttr[] | string[] | TensorProto

const dataTypeOf = (data: TypedData): number => {
  if (data instanceof Float32Array) return DataType.FLOAT
  if (data instanceof Float64Array) return DataType.DOUBLE
  if (data instanceof Int32Array) return DataType.INT32
  if (data instanceof BigInt64Array) return DataType.INT64
  if (data instanceof Int8Array) return DataType.INT8
  if (data instanceof Uint16Array) return DataType.FLOAT16
  return DataType.UINT8
}

/** A TensorProto holding `data` as little-endian raw_data (x86 and ARM hosts are little-endian). */
export function tensor(name: string, dims: number[], data: TypedData, dataType = dataTypeOf(data)): TensorProto {
  const count = dims.reduce((a, b) => a * b, 1)
  if (count !== data.length) {
    throw new RangeError(`tensor ${name}: dims [${dims.join(', ')}] hold ${count} elements but data has ${data.length}`)
  }
  return {
    name,
    dims,
    dataType,
    rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
  }
}

export function int64s(values: number[]): BigInt64Array {
  return BigInt64Array.from(values.map((v) => BigInt(v)))
}

export function attribute(name: string, value: AttrValue): AttributeProto {
  if (value instanceof FloatAttr) return { name, type: AttributeType.FLOAT, f: value.value }
  if (typeof value === 'number') {
    return Number.isInteger(value) ? { name, type: AttributeType.INT, i: value } : { name, type: AttributeType.FLOAT, f: value }
  }
  if (typeof value === 'string') return { name, type: AttributeType.STRING, s: Buffer.from(value, 'utf8') }
  if (Array.isArray(value)) {
    const list = value as unknown[]
    if (list.length > 0 && typeof list[0] === 'string') {
      return { name, type: AttributeType.STRINGS, strings: (list as string[]).map((s) => Buffer.from(s, 'utf8')) }
    }
    if (list.some((v) => v instanceof FloatAttr || (typeof v === 'number' && !Number.isInteger(v)))) {
      return { name, type: AttributeType.FLOATS, floats: list.map((v) => (v instanceof FloatAttr ? v.value : (v as number))) }
    }
    return { name, type: AttributeType.INTS, ints: list as number[] }
  }
  return { name, type: AttributeType.TENSOR, t: value }
}

export function valueInfo(name: string, elemType: number, shape: Dim[] | undefined): ValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: shape === undefined ? undefined : { dim: shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  }
}

export interface ModelOptions {
  opset?: number
  /** Extra opset imports, e.g. { 'com.microsoft': 1 }. */
  extraOpsets?: Record<string, number>
  producerName?: string
  producerVersion?: string
  irVersion?: number
  docString?: string
  metadata?: Record<string, string>
}

export class GraphBuilder {
  readonly nodes: NodeProto[] = []
  readonly initializers: TensorProto[] = []
  readonly inputs: ValueInfoProto[] = []
  readonly outputs: ValueInfoProto[] = []
  private counter = 0
  private readonly used = new Set<string>()

  constructor(readonly name = 'main') {}

  /** A fresh value name with the given prefix. */
  fresh(prefix: string): string {
    let name: string
    do name = `${prefix}_${this.counter++}`
    while (this.used.has(name))
    this.used.add(name)
    return name
  }

  input(name: string, elemType: number, shape: Dim[]): string {
    this.used.add(name)
    this.inputs.push(valueInfo(name, elemType, shape))
    return name
  }

  output(name: string, elemType: number, shape?: Dim[]): string {
    this.outputs.push(valueInfo(name, elemType, shape))
    return name
  }

  initializer(name: string, dims: number[], data: TypedData, dataType?: number): string {
    this.used.add(name)
    this.initializers.push(tensor(name, dims, data, dataType))
    return name
  }

  /** A constant as an initializer with a fresh name. */
  constant(prefix: string, dims: number[], data: TypedData, dataType?: number): string {
    return this.initializer(this.fresh(prefix), dims, data, dataType)
  }

  /**
   * Adds a node and returns its output names. `outputs` is a count (fresh names) or explicit names.
   * Empty strings in inputs stand for omitted optional inputs, as in ONNX.
   */
  node(opType: string, inputs: string[], outputs: number | string[] = 1, attrs: Record<string, AttrValue> = {}, domain?: string): string[] {
    const outNames = typeof outputs === 'number' ? Array.from({ length: outputs }, () => this.fresh(opType.toLowerCase())) : outputs
    for (const n of outNames) this.used.add(n)
    const node: NodeProto = {
      opType,
      input: inputs,
      output: outNames,
      name: `${opType}_${this.nodes.length}`,
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    }
    if (domain) node.domain = domain
    this.nodes.push(node)
    return outNames
  }

  /** node() for the common single-output case. */
  op(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, name?: string): string {
    return this.node(opType, inputs, name ? [name] : 1, attrs)[0]!
  }

  toModel(options: ModelOptions = {}): ModelProto {
    const opsetImport = [{ domain: '', version: options.opset ?? 17 }]
    for (const [domain, version] of Object.entries(options.extraOpsets ?? {})) opsetImport.push({ domain, version })
    return {
      // IR 8 is what onnxruntime and TensorRT 8.6+ accept for opset 17 to 18.
      irVersion: options.irVersion ?? 8,
      opsetImport,
      producerName: options.producerName ?? 'modelforge',
      producerVersion: options.producerVersion ?? '0.1.0',
      docString: options.docString,
      metadataProps: options.metadata ? Object.entries(options.metadata).map(([key, value]) => ({ key, value })) : undefined,
      graph: {
        name: this.name,
        node: this.nodes,
        initializer: this.initializers,
        input: this.inputs,
        output: this.outputs,
      },
    }
  }
}
