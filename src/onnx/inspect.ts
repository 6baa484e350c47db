/**
 * inspect: what an ONNX file is (IR version, opsets, producer, inputs and outputs, op histogram, parameters,
 * external data) and whether it is well formed. The structural checks are the part of onnx.checker that
 * needs no shape inference: names defined once, inputs defined somewhere, opsets imported for every domain,
 * initializers holding the bytes their shape needs, external data files present and long enough. Shape
 * errors are what onnxruntime finds when the model is loaded, which is the validate area's to do
 * (src/validate/load-check.ts adds its view as `runtime`): this module only reads the file.
 */
import { readFile, stat } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { errnoCode, IntegrityError, ModelforgeError, NotFoundError, UsageError } from '../lib/errors.js'
import {
  DataType, DataTypeName, DataTypeSize, decodeModel, num,
  type GraphProto, type ModelProto, type NodeProto, type TensorProto, type TypeProto, type ValueInfoProto,
} from './proto.js'
import { locationInModelDir } from './external-data.js'

export interface ValueSummary {
  name: string
  /** onnxruntime-style names (float32, int64, float16, bfloat16, ...); sequence<...>, map<...>, optional<...>. */
  dtype: string
  /** Numbers for fixed dims, strings for symbolic ones, '?' for unknown; null when no shape is declared. */
  shape: (number | string)[] | null
}

export interface OpCount {
  op: string
  /** Absent for the default ONNX domain. */
  domain?: string
  count: number
}

export interface ExternalDataFile {
  /** As recorded in the model, relative to the model's directory. */
  location: string
  tensors: number
  /** Bytes the model reads from the file (sum of lengths). */
  bytes: number
  exists: boolean
  /** The file's size on disk, when it exists. */
  size?: number
}

export interface Problem {
  severity: 'error' | 'warning'
  /** Machine-readable, e.g. DUPLICATE_NAME, UNDEFINED_INPUT, MISSING_OPSET, INITIALIZER_SIZE, EXTERNAL_DATA_MISSING. */
  code: string
  message: string
}

export type RuntimeView = { loaded: true; inputs: ValueSummary[]; outputs: ValueSummary[] } | { loaded: false; code: string; message: string }

export interface ModelInspection {
  path: string
  fileBytes: number
  irVersion: number
  opsets: { domain: string; version: number }[]
  producer: { name: string; version: string }
  domain?: string
  modelVersion?: number
  docString?: string
  metadata: Record<string, string>
  graphName: string
  inputs: ValueSummary[]
  outputs: ValueSummary[]
  /** Nodes in all graphs, subgraphs included. */
  nodes: number
  /** Subgraphs (If/Loop/Scan bodies, nested at any depth). */
  subgraphs: number
  /** Local functions defined in the model. */
  functions: number
  ops: OpCount[]
  parameters: {
    /** Initializer tensors in all graphs. */
    tensors: number
    /** Total elements. */
    count: number
    /** Storage bytes (embedded plus external). */
    bytes: number
    externalTensors: number
    /** Elements per dtype (float32, float16, int8, ...): an fp16 model holds its weights as float16. */
    dtypes: Record<string, number>
  }
  externalData: ExternalDataFile[]
  problems: Problem[]
  /** When loaded in onnxruntime (src/validate/load-check.ts): what it reports, or why it refused. */
  runtime?: RuntimeView
  passed: boolean
}

const ORT_NAMES: Record<string, string> = { float: 'float32', double: 'float64' }

export function dtypeName(elemType: number | undefined): string {
  const name = DataTypeName[elemType ?? 0] ?? `type${elemType}`
  return ORT_NAMES[name] ?? name
}

function typeName(t: TypeProto | undefined): string {
  if (!t) return 'unknown'
  if (t.tensorType) return dtypeName(t.tensorType.elemType)
  if (t.sparseTensorType) return `sparse<${dtypeName(t.sparseTensorType.elemType)}>`
  if (t.sequenceType) return `sequence<${typeName(t.sequenceType.elemType)}>`
  if (t.mapType) return `map<${dtypeName(t.mapType.keyType)},${typeName(t.mapType.valueType)}>`
  if (t.optionalType) return `optional<${typeName(t.optionalType.elemType)}>`
  return 'unknown'
}

function summarize(v: ValueInfoProto): ValueSummary {
  const shape = v.type?.tensorType?.shape ?? v.type?.sparseTensorType?.shape
  return {
    name: v.name,
    dtype: typeName(v.type),
    shape: shape ? (shape.dim ?? []).map((d) => (d.dimParam ? d.dimParam : d.dimValue !== undefined && d.dimValue !== null ? num(d.dimValue) : '?')) : null,
  }
}

/**
 * The inputs (initializers excluded, as onnxruntime sees them) and outputs a model declares, from a
 * ModelProto already in memory: an exporter that built the graph need not read its weights back.
 */
export function graphInterface(model: ModelProto): { inputs: ValueSummary[]; outputs: ValueSummary[] } {
  const graph = model.graph ?? {}
  const initNames = new Set((graph.initializer ?? []).map((t) => t.name))
  return {
    inputs: (graph.input ?? []).filter((v) => !initNames.has(v.name)).map(summarize),
    outputs: (graph.output ?? []).map(summarize),
  }
}

function elements(t: TensorProto): number {
  return (t.dims ?? []).reduce<number>((a, d) => a * num(d), 1)
}

interface ExternalRef { location: string; offset: number; length?: number }

function externalRef(t: TensorProto): ExternalRef | undefined {
  if (t.dataLocation !== 1) return undefined
  const kv = Object.fromEntries((t.externalData ?? []).map((e) => [e.key, e.value]))
  return { location: kv.location ?? '', offset: Number(kv.offset ?? 0), length: kv.length !== undefined ? Number(kv.length) : undefined }
}

/** Bytes stored inline for a tensor (raw_data or the typed fields). */
function inlineBytes(t: TensorProto): number {
  if (t.rawData && t.rawData.length) return t.rawData.length
  const type = t.dataType ?? 0
  const size = DataTypeSize[type] ?? 0
  if (type === DataType.STRING) return (t.stringData ?? []).reduce((a, s) => a + s.length, 0)
  const stored = (t.floatData?.length ?? 0) + (t.int32Data?.length ?? 0) + (t.int64Data?.length ?? 0)
    + (t.doubleData?.length ?? 0) + (t.uint64Data?.length ?? 0)
  // Typed fields hold one element per entry (complex: two floats per element).
  const perEntry = type === DataType.COMPLEX64 || type === DataType.COMPLEX128 ? size / 2 : size
  return stored * perEntry
}

/** How many values the typed fields hold, in elements (complex: pairs count once). */
function typedCount(t: TensorProto): number {
  const type = t.dataType ?? 0
  const n = (t.floatData?.length ?? 0) + (t.int32Data?.length ?? 0) + (t.int64Data?.length ?? 0)
    + (t.doubleData?.length ?? 0) + (t.uint64Data?.length ?? 0) + (t.stringData?.length ?? 0)
  if (type === DataType.COMPLEX64 || type === DataType.COMPLEX128) return n / 2
  // Sub-byte types pack several elements into each int32 entry.
  const size = DataTypeSize[type] ?? 1
  return size > 0 && size < 1 ? Math.floor(n / size) : n
}

class Walker {
  nodes = 0
  subgraphs = 0
  ops = new Map<string, OpCount>()
  tensors: { tensor: TensorProto; where: string; initializer: boolean }[] = []
  problems: Problem[] = []
  domains = new Set<string>()

  error(code: string, message: string): void {
    this.problems.push({ severity: 'error', code, message })
  }

  warn(code: string, message: string): void {
    this.problems.push({ severity: 'warning', code, message })
  }

  graph(g: GraphProto, where: string, outer: ReadonlySet<string>): void {
    const defined = new Set<string>()
    const define = (name: string, what: string) => {
      if (!name) return
      if (defined.has(name)) this.error('DUPLICATE_NAME', `${where}: "${name}" is defined more than once (${what})`)
      defined.add(name)
    }
    const initNames = new Set((g.initializer ?? []).map((t) => t.name ?? ''))
    for (const v of g.input ?? []) define(v.name, 'graph input')
    for (const t of g.initializer ?? []) {
      // Before IR 4 initializers were also listed as inputs; that pairing is not a redefinition.
      if (!(g.input ?? []).some((v) => v.name === t.name)) define(t.name ?? '', 'initializer')
      this.tensors.push({ tensor: t, where: `${where} initializer "${t.name ?? ''}"`, initializer: true })
    }
    for (const s of g.sparseInitializer ?? []) {
      const name = (s as { values?: TensorProto }).values?.name ?? ''
      define(name, 'sparse initializer')
    }
    const nodeNames = new Set<string>()
    const produced = new Set<string>()
    for (const node of g.node ?? []) for (const o of node.output ?? []) if (o) produced.add(o)
    const available = new Set<string>([...outer, ...defined])
    let unsorted = false
    for (const [i, node] of (g.node ?? []).entries()) {
      const label = node.name ? `node "${node.name}" (${node.opType})` : `node #${i} (${node.opType})`
      this.countOp(node)
      if (node.name) {
        if (nodeNames.has(node.name)) this.error('DUPLICATE_NODE_NAME', `${where}: two nodes are named "${node.name}"`)
        nodeNames.add(node.name)
      }
      for (const input of node.input ?? []) {
        if (!input || available.has(input)) continue
        if (produced.has(input)) unsorted = true
        else this.error('UNDEFINED_INPUT', `${where}: ${label} reads "${input}", which no graph input, initializer or node defines`)
      }
      // Subgraphs see everything defined so far in this scope (and outer scopes).
      for (const attr of node.attribute ?? []) {
        const bodies = [...(attr.g ? [attr.g] : []), ...(attr.graphs ?? [])]
        for (const body of bodies) {
          this.subgraphs++
          this.graph(body, `${where} > ${label}.${attr.name}`, new Set([...available, ...produced]))
        }
        if (attr.t) this.tensors.push({ tensor: attr.t, where: `${where} ${label} attribute ${attr.name}`, initializer: false })
      }
      for (const o of node.output ?? []) {
        if (!o) continue
        define(o, `output of ${label}`)
        available.add(o)
      }
    }
    if (unsorted) this.warn('UNSORTED', `${where}: nodes are not in topological order (onnxruntime sorts them; other tools may not)`)
    for (const v of g.output ?? []) {
      if (!available.has(v.name) && !initNames.has(v.name)) this.error('UNDEFINED_OUTPUT', `${where}: graph output "${v.name}" is not produced by any node`)
    }
  }

  countOp(node: NodeProto): void {
    this.nodes++
    const domain = node.domain && node.domain !== 'ai.onnx' ? node.domain : ''
    this.domains.add(domain)
    const key = `${domain}::${node.opType}`
    const entry = this.ops.get(key)
    if (entry) entry.count++
    else this.ops.set(key, { op: node.opType, ...(domain ? { domain } : {}), count: 1 })
  }
}

async function readModelFile(path: string): Promise<Buffer> {
  try {
    const s = await stat(path)
    if (!s.isFile()) throw new UsageError(`${path} is not a file`, { code: 'ONNX_NOT_FILE', hint: 'Give the path of a .onnx file.' })
    return await readFile(path)
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') throw new NotFoundError(`ONNX model ${path} does not exist`, { code: 'ONNX_NOT_FOUND', hint: 'Check the path.' })
    throw err
  }
}

function decodeOrRefuse(bytes: Uint8Array, path: string): ModelProto {
  if (bytes.length === 0) {
    throw new IntegrityError(`${path} is empty`, { code: 'ONNX_INVALID', hint: 'The file is truncated: export or download it again.' })
  }
  try {
    return decodeModel(bytes, path)
  } catch (err) {
    const e = err as ModelforgeError
    throw new IntegrityError(e.message, { code: 'ONNX_INVALID', hint: e.hint, cause: err })
  }
}

/** Whether a report with these problems passes: warnings do not fail it. */
export function passes(problems: readonly Problem[]): boolean {
  return !problems.some((p) => p.severity === 'error')
}

/** Inspects an ONNX file. Structural problems are reported in `problems`, not thrown; see assertWellFormed. */
export async function inspectModel(path: string): Promise<ModelInspection> {
  const bytes = await readModelFile(path)
  const model = decodeOrRefuse(bytes, path)
  const graph = model.graph!
  const w = new Walker()

  const opsets = (model.opsetImport ?? []).map((o) => ({ domain: o.domain || 'ai.onnx', version: num(o.version) }))
  if (opsets.length === 0) w.error('MISSING_OPSET', 'the model imports no opset (opset_import is empty)')
  if (!graph.name) w.error('GRAPH_NAME', 'the main graph has no name (ONNX requires one)')
  if (num(model.irVersion) === 0) w.error('IR_VERSION', 'the model has no IR version')

  w.graph(graph, 'graph', new Set())
  for (const f of (model.functions ?? []) as { name?: string; node?: NodeProto[] }[]) for (const n of f.node ?? []) w.countOp(n)
  const imported = new Set(opsets.map((o) => (o.domain === 'ai.onnx' ? '' : o.domain)))
  for (const d of w.domains) {
    if (!imported.has(d)) w.error('MISSING_OPSET', `operators of domain "${d || 'ai.onnx'}" are used but the model imports no opset for it`)
  }
  if ((graph.output ?? []).length === 0) w.error('NO_OUTPUTS', 'the graph has no outputs')

  const baseDir = dirname(path)
  const external = new Map<string, ExternalDataFile & { maxEnd: number }>()
  let count = 0
  let storage = 0
  let externalTensors = 0
  let initializerTensors = 0
  const dtypes: Record<string, number> = {}
  for (const { tensor, where, initializer: isInitializer } of w.tensors) {
    const n = elements(tensor)
    const size = DataTypeSize[tensor.dataType ?? 0]
    const ref = externalRef(tensor)
    if (isInitializer) {
      initializerTensors++
      count += n
      const dtype = dtypeName(tensor.dataType)
      dtypes[dtype] = (dtypes[dtype] ?? 0) + n
    }
    if (ref) {
      externalTensors++
      if (locationInModelDir(ref.location) === undefined) {
        w.error('EXTERNAL_DATA_LOCATION', `${where}: external data location "${ref.location}" must be a relative path inside the model's directory`)
        continue
      }
      const length = ref.length ?? Math.ceil(n * (size ?? 0))
      if (isInitializer) storage += length
      const entry = external.get(ref.location) ?? { location: ref.location, tensors: 0, bytes: 0, exists: false, maxEnd: 0 }
      entry.tensors++
      entry.bytes += length
      entry.maxEnd = Math.max(entry.maxEnd, ref.offset + length)
      external.set(ref.location, entry)
      continue
    }
    const bytesHere = inlineBytes(tensor)
    if (isInitializer) storage += bytesHere
    if (tensor.dataType === DataType.STRING || size === undefined || size === 0) continue
    const expected = Math.ceil(n * size)
    const hasRaw = !!(tensor.rawData && tensor.rawData.length)
    if (hasRaw && tensor.rawData!.length !== expected) {
      w.error('INITIALIZER_SIZE', `${where}: raw_data holds ${tensor.rawData!.length} bytes but shape [${(tensor.dims ?? []).map(num).join(', ')}] of ${dtypeName(tensor.dataType)} needs ${expected}`)
    } else if (!hasRaw && n > 0 && typedCount(tensor) !== n) {
      const what = typedCount(tensor) === 0 ? 'holds no data (a weightless model: weights stripped)' : `holds ${typedCount(tensor)} values for ${n} elements`
      w.error('INITIALIZER_SIZE', `${where}: ${what}`)
    }
  }
  for (const entry of external.values()) {
    try {
      const s = await stat(join(baseDir, entry.location))
      entry.exists = s.isFile()
      entry.size = s.size
      if (entry.maxEnd > s.size) {
        w.error('EXTERNAL_DATA_TRUNCATED', `external data file ${entry.location} has ${s.size} bytes, but the model reads up to byte ${entry.maxEnd}`)
      }
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw err
      w.error('EXTERNAL_DATA_MISSING', `external data file "${entry.location}" (recorded in the model, ${entry.tensors} tensors) does not exist next to it in ${baseDir}`)
    }
  }

  return {
    path,
    fileBytes: bytes.length,
    irVersion: num(model.irVersion),
    opsets,
    producer: { name: model.producerName ?? '', version: model.producerVersion ?? '' },
    ...(model.domain ? { domain: model.domain } : {}),
    ...(num(model.modelVersion) ? { modelVersion: num(model.modelVersion) } : {}),
    ...(model.docString ? { docString: model.docString } : {}),
    metadata: Object.fromEntries((model.metadataProps ?? []).map((p) => [p.key, p.value])),
    graphName: graph.name ?? '',
    ...graphInterface(model),
    nodes: w.nodes,
    subgraphs: w.subgraphs,
    functions: (model.functions ?? []).length,
    ops: [...w.ops.values()].sort((a, b) => b.count - a.count || a.op.localeCompare(b.op)),
    parameters: { tensors: initializerTensors, count, bytes: storage, externalTensors, dtypes },
    externalData: [...external.values()].map(({ maxEnd: _maxEnd, ...e }) => e),
    problems: w.problems,
    passed: passes(w.problems),
  }
}

/** Throws exit 4 listing the errors when the inspection found any; the inspection rides along in details. */
export function assertWellFormed(info: ModelInspection): ModelInspection {
  const errors = info.problems.filter((p) => p.severity === 'error')
  if (errors.length === 0) return info
  const unsupported = errors.every((e) => e.code === 'ONNX_UNSUPPORTED')
  throw new IntegrityError(`${info.path} is ${unsupported ? 'not runnable in onnxruntime' : 'not a well-formed ONNX model'}: ${errors.slice(0, 3).map((e) => e.message).join('; ')}${errors.length > 3 ? `; and ${errors.length - 3} more` : ''}`, {
    code: unsupported ? 'ONNX_UNSUPPORTED' : 'ONNX_INVALID',
    hint: errors.some((e) => e.code.startsWith('EXTERNAL_DATA'))
      ? 'Keep the external data files next to the model under the names recorded in it (see externalData).'
      : errors.some((e) => e.code === 'INITIALIZER_SIZE')
        ? 'Initializers lack their data (truncated file or weights stripped): re-export the model with its weights.'
        : 'Re-export the model, or fix the graph (onnx.checker, polygraphy check lint) and try again.',
    details: { inspection: info },
  })
}

function fmtBytes(n: number): string {
  if (n < 1024) return `${n} B`
  const units = ['KiB', 'MiB', 'GiB', 'TiB']
  let v = n / 1024
  let u = 0
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024
    u++
  }
  return `${v.toFixed(1)} ${units[u]}`
}

function fmtValue(v: ValueSummary): string {
  return `  ${v.name}: ${v.dtype} ${v.shape ? `[${v.shape.join(', ')}]` : '(shape unknown)'}`
}

/** The human report. */
export function formatInspection(info: ModelInspection): string {
  const lines = [
    `${info.path} (${fmtBytes(info.fileBytes)})`,
    `IR version ${info.irVersion}; opsets ${info.opsets.map((o) => `${o.domain} ${o.version}`).join(', ') || 'none'}`,
    `producer: ${info.producer.name || '(none)'}${info.producer.version ? ` ${info.producer.version}` : ''}; graph "${info.graphName}"`,
  ]
  for (const [k, v] of Object.entries(info.metadata)) lines.push(`metadata ${k}: ${v}`)
  lines.push(`inputs (${info.inputs.length}):`, ...info.inputs.map(fmtValue))
  lines.push(`outputs (${info.outputs.length}):`, ...info.outputs.map(fmtValue))
  lines.push(`nodes: ${info.nodes}${info.subgraphs ? ` (in ${info.subgraphs + 1} graphs)` : ''}${info.functions ? `; ${info.functions} local functions` : ''}`)
  if (info.ops.length) {
    lines.push('ops:')
    const width = Math.max(...info.ops.map((o) => (o.domain ? `${o.domain}.${o.op}` : o.op).length))
    for (const o of info.ops) lines.push(`  ${(o.domain ? `${o.domain}.${o.op}` : o.op).padEnd(width)}  ${o.count}`)
  }
  lines.push(`parameters: ${info.parameters.count.toLocaleString('en-US')} in ${info.parameters.tensors} initializers, ${fmtBytes(info.parameters.bytes)}${info.parameters.externalTensors ? ` (${info.parameters.externalTensors} tensors external)` : ''}`)
  if (info.externalData.length) {
    lines.push('external data:')
    for (const e of info.externalData) lines.push(`  ${e.location}: ${e.tensors} tensors, ${fmtBytes(e.bytes)}${e.exists ? '' : ' (MISSING)'}`)
  }
  if (info.runtime) lines.push(info.runtime.loaded ? 'onnxruntime: loads' : `onnxruntime: refused (${info.runtime.code})`)
  if (info.problems.length) {
    lines.push('problems:')
    for (const p of info.problems) lines.push(`  ${p.severity}: ${p.message}`)
  }
  return lines.join('\n')
}
