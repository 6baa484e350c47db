/**
 * The inference phase: deserializing a plan (--loadEngine, with TensorRT's refusal of a plan from another
 * version or GPU), setting input shapes within the profile, filling the input bindings (--loadInputs raw
 * files of exactly the binding's size, else trtexec's random values), computing the outputs with
 * onnxruntime on the ONNX file the plan recorded (rounded as the engine's precision would round them), the
 * benchmark, the layer and profile reports, and the output dump and --exportOutput.
 */
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { prng } from '../../../src/lib/random.js'
import { bf16ToF32, f32ToBf16, floatToHalf, halfToFloat } from '../../../src/onnx/float16.js'
import { DataType } from '../../../src/onnx/proto.js'
import type { HostTensor, TensorMap } from '../../../src/validate/tensors.js'
import { dtypeFromOnnx } from '../../../src/validate/tensors.js'
import type { Engine } from './build.js'
import { DoubleError, seedOf, since, type Run } from './context.js'
import { Exit, failed } from './exit.js'
import { crash } from './faults.js'
import { cppFloat, dimsText, volume } from './format.js'
import { layerInfoJson, layerInfoLine, type TensorFacts } from './layers.js'
import { bindingTypeName, elementSize, readOnnx } from './model.js'
import { profileLayers, printProfile, report, simulate, writeProfile, type Costs } from './perf.js'
import { readPlan, type PlanBinding, type PlanRecord } from './plan.js'
import { atLeast, fullVersion } from './version.js'

const TAIL = ['Failed to create engine from model or file.', 'Engine set up failed']

/** --loadEngine: read and check the plan as TensorRT's runtime does. */
export function loadEngine(run: Run): Engine {
  const { log, o, env } = run
  const v = env.version
  const path = o.loadEngine ?? ''
  const started = performance.now()
  if (!existsSync(path) || !statSync(path).isFile()) {
    log.error(`Error opening engine file: ${path}`)
    for (const e of TAIL) log.error(e)
    throw failed()
  }
  const plan = readPlan(path)
  if (v.major < 10) {
    log.info(`Engine loaded in ${cppFloat(since(started))} sec.`)
  }
  if (o.getPlanVersionOnly) {
    if (!plan.ok && plan.why === 'magic') {
      log.error('Failed to verify a plan tag.')
      throw failed()
    }
    const pv = plan.ok ? plan.version : { major: 0, minor: 0, patch: 0, build: 0 }
    log.info(`Plan was created with TensorRT version ${pv.major}.${pv.minor}.${pv.patch}.${pv.build}`)
    throw new Exit(0, 'PASSED')
  }
  const deserializeFailed = (error: string): never => {
    log.error(error)
    log.error('Engine deserialization failed')
    for (const e of TAIL) log.error(e)
    throw failed()
  }
  const api = v.major >= 10 ? 'IRuntime::deserializeCudaEngine: ' : ''
  if (!plan.ok) {
    deserializeFailed(plan.why === 'magic'
      ? `Error[1]: ${api}Error Code 1: Serialization (Serialization assertion magicTagRead == kMAGIC_TAG failed.Magic tag does not match)`
      : `Error[1]: ${api}Error Code 1: Serialization (Serialization assertion stdVersionRead == kSERIALIZATION_VERSION failed.Version tag does not match. Note: Current Version: 239, Serialized Engine Version: 0)`)
    throw failed()
  }
  const r = plan.record
  const built = r.tensorrt
  const same = built.major === v.major && built.minor === v.minor && built.patch === v.patch
  // A version-compatible plan runs on the same or a later TensorRT.
  const compatible = same || (r.versionCompatible && atLeast(v, built.major, built.minor, built.patch))
  if (!compatible) {
    deserializeFailed(`Error[6]: ${api}Error Code 6: API Usage Error (The engine plan file is not compatible with this version of TensorRT, expecting library version ${fullVersion(v)} got ${built.major}.${built.minor}.${built.patch}.${built.build}, please rebuild.)`)
  }
  const cc = (s: string) => s.split('.').map(Number) as [number, number]
  const [pm, pn] = cc(r.gpu.computeCapability)
  const [gm, gn] = cc(env.gpu.computeCapability)
  const deviceOk = r.hardwareCompatibilityLevel === 'ampere+' ? gm >= 8 : pm === gm && pn === gn
  if (!deviceOk) {
    deserializeFailed(`Error[6]: ${api}Error Code 6: API Usage Error (The engine plan file is generated on an incompatible device, expecting compute ${env.gpu.computeCapability} got compute ${r.gpu.computeCapability}, please rebuild.)`)
  }
  log.trtInfo(`Loaded engine size: ${Math.floor(plan.size / (1 << 20))} MiB`)
  if (r.gpu.name !== env.gpu.name && r.hardwareCompatibilityLevel === 'none') {
    log.trtWarn('Using an engine plan file across different models of devices is not recommended and is likely to affect performance or even cause errors.')
  }
  if (v.major < 10) log.trtInfo(`[MemUsageChange] TensorRT-managed allocation in engine deserialization: CPU +0, GPU +${Math.ceil(plan.size / (1 << 20))}, now: CPU 0, GPU ${Math.ceil(plan.size / (1 << 20))} (MiB)`)
  log.info(`Engine deserialized in ${cppFloat(since(started) + 0.0009)} sec.`)
  return { record: r, sizeBytes: plan.size }
}

/** The model the plan was built from, checked against the sha256 it recorded. */
function recordedModel(r: PlanRecord) {
  if (!existsSync(r.onnx.path)) {
    throw new DoubleError(`the plan records ${r.onnx.path}, which no longer exists: the double computes outputs with onnxruntime on it`)
  }
  const model = readOnnx(r.onnx.path)
  if (model.sha256 !== r.onnx.sha256) {
    throw new DoubleError(`${r.onnx.path} changed since the plan was built (sha256 ${model.sha256}, recorded ${r.onnx.sha256})`)
  }
  return model
}

/** trtexec's random inputs: a fresh default-seeded generator per binding, in the binding type's range. */
function randomData(b: PlanBinding, n: number): HostTensor['data'] {
  const rand = prng(0)
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1))
  switch (b.elemType) {
    case DataType.FLOAT: return Float32Array.from({ length: n }, () => -1 + 2 * rand())
    case DataType.FLOAT16: return Uint16Array.from({ length: n }, () => floatToHalf(-1 + 2 * rand()))
    case DataType.BFLOAT16: return f32ToBf16(Float32Array.from({ length: n }, () => -1 + 2 * rand()))
    case DataType.INT32: return Int32Array.from({ length: n }, () => int(-128, 127))
    case DataType.INT64: return BigInt64Array.from({ length: n }, () => BigInt(int(-128, 127)))
    case DataType.INT8: return Int8Array.from({ length: n }, () => int(-128, 127))
    case DataType.UINT8: return Uint8Array.from({ length: n }, () => int(0, 255))
    case DataType.BOOL: return Uint8Array.from({ length: n }, () => int(0, 1))
    default: return Float32Array.from({ length: n }, () => -1 + 2 * rand())
  }
}

function fromRaw(b: PlanBinding, bytes: Buffer): HostTensor['data'] {
  const ab = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)
  switch (b.elemType) {
    case DataType.FLOAT: return new Float32Array(ab)
    case DataType.FLOAT16: case DataType.BFLOAT16: return new Uint16Array(ab)
    case DataType.INT32: return new Int32Array(ab)
    case DataType.INT64: return new BigInt64Array(ab)
    case DataType.INT8: return new Int8Array(ab)
    default: return new Uint8Array(ab)
  }
}

/** Binding data (the engine's type) as the tensor onnxruntime takes (the model's type). */
function toOnnx(b: PlanBinding, dims: number[], data: HostTensor['data']): HostTensor {
  const dtype = dtypeFromOnnx[b.onnxType] ?? 'float32'
  if (b.onnxType === b.elemType) return { dtype, dims, data }
  const n = data.length
  if (b.onnxType === DataType.INT64) return { dtype, dims, data: BigInt64Array.from({ length: n }, (_, i) => BigInt(Number(data[i]))) }
  if (b.onnxType === DataType.DOUBLE) return { dtype, dims, data: Float64Array.from(data as Float32Array) }
  if (b.onnxType === DataType.UINT64) return { dtype, dims, data: BigUint64Array.from({ length: n }, (_, i) => BigInt(Number(data[i]))) }
  return { dtype, dims, data: Float64Array.from({ length: n }, (_, i) => Number(data[i])) as unknown as HostTensor['data'] }
}

interface OutputValues { name: string; dims: number[]; elemType: number; values: (number | bigint)[] }

/** How the engine's arithmetic changes a float output: rounding through its precision, or a fault. */
function engineValue(r: PlanRecord, x: number, corrupt: boolean): number {
  let y = Math.fround(x)
  if (r.quantization === 'dummy-ranges') {
    // Dummy ranges quantize every output to [-4, 4] in steps of 4/127.
    const scale = 4 / 127
    y = Math.max(-127, Math.min(127, Math.round(y / scale))) * scale
  }
  if (!r.stronglyTyped && (r.precision.fp16 || r.precision.best)) y = halfToFloat(floatToHalf(y))
  else if (!r.stronglyTyped && r.precision.bf16) y = bf16ToF32(f32ToBf16(Float32Array.of(y)))[0]!
  if (corrupt) y = -1.5 * y + 0.25
  return Math.fround(y)
}

function outputValues(r: PlanRecord, b: PlanBinding, t: HostTensor, corrupt: boolean): OutputValues {
  const n = t.data.length
  const values: (number | bigint)[] = new Array(n)
  const isFloat = t.dtype === 'float32' || t.dtype === 'float64' || t.dtype === 'float16'
  for (let i = 0; i < n; i++) {
    const raw = t.data[i]!
    if (isFloat) values[i] = engineValue(r, t.dtype === 'float16' ? halfToFloat(raw as number) : Number(raw), corrupt)
    else if (typeof raw === 'bigint') values[i] = b.elemType === DataType.INT32 ? Number(BigInt.asIntN(32, raw)) + (corrupt ? 1 : 0) : raw + (corrupt ? 1n : 0n)
    else values[i] = Number(raw) + (corrupt ? 1 : 0)
  }
  return { name: b.name, dims: t.dims, elemType: b.elemType, values }
}

function valueText(v: number | bigint, elemType: number): string {
  if (typeof v === 'bigint') return v.toString()
  return elemType === DataType.FLOAT || elemType === DataType.FLOAT16 || elemType === DataType.BFLOAT16 ? cppFloat(v) : String(v)
}

/** exportJSONOutput. */
function writeOutputs(path: string, outs: OutputValues[]): void {
  let text = '[\n'
  let sep = '  '
  for (const o of outs) {
    text += `${sep}{ "name" : ${JSON.stringify(o.name)}\n`
    sep = ', '
    text += `  ${sep}"dimensions" : "${dimsText(o.dims)}"\n`
    text += `  ${sep}"values" : [ ${o.values.map((v) => valueText(v, o.elemType)).join(sep)} ]\n  }\n`
  }
  writeFileSync(path, `${text}]\n`)
}

function costs(run: Run, r: PlanRecord, inputs: Map<string, number[]>, outputs: OutputValues[]): Costs {
  const { o, env } = run
  const half = !r.stronglyTyped && (r.precision.fp16 || r.precision.best || r.precision.bf16)
  const factor = r.quantization !== 'none' ? 0.3 : half ? 0.55 : 1
  let scale = 1
  for (const b of r.inputs) {
    const range = r.profile[b.name]
    const dims = inputs.get(b.name)
    if (range && dims) scale = Math.max(scale, volume(dims) / Math.max(1, volume(range.min)))
  }
  const speed = Math.sqrt(108 / env.gpu.sms)
  const computeMs = (0.2 + (r.weightBytes * factor / 4e6) * scale) * speed
  const inBytes = r.inputs.reduce((a, b) => a + volume(inputs.get(b.name) ?? []) * elementSize(b.elemType), 0)
  const outBytes = outputs.reduce((a, x) => a + x.values.length * elementSize(x.elemType), 0)
  return {
    computeMs,
    h2dMs: o.dataTransfers ? 0.003 + inBytes / 12e6 : 0,
    d2hMs: o.dataTransfers ? 0.003 + outBytes / 12e6 : 0,
    enqueueMs: o.cudaGraph ? 0.004 : 0.01 + 0.0005 * r.layers.length,
  }
}

export async function infer(run: Run, engine: Engine): Promise<void> {
  const { log, o, env } = run
  const v = env.version
  const v10 = v.major >= 10
  const r = engine.record
  if (v10) log.trtInfo('[MemUsageChange] TensorRT-managed allocation in IExecutionContext creation: CPU +0, GPU +2, now: CPU 0, GPU 8 (MiB)')
  else log.trtInfo('[MemUsageChange] TensorRT-managed allocation in IExecutionContext creation: CPU +0, GPU +1, now: CPU 0, GPU 7 (MiB)')
  log.info('Setting persistentCacheLimit to 0 bytes.')
  const setupFailed = (...errors: string[]): never => {
    for (const e of errors) log.error(e)
    log.error('Inference set up failed')
    throw failed()
  }
  const inputNames = r.inputs.map((b) => b.name)
  for (const name of o.shapes.keys()) {
    if (!inputNames.includes(name)) {
      setupFailed(`Cannot find input tensor with name "${name}" in the engine bindings! Please make sure the input tensor names are correct.`, 'Invalid tensor names found in --shapes flag.')
    }
  }
  // Shapes: --shapes for dynamic inputs (within the profile), 1 for the dynamic dims of the others.
  const shapes = new Map<string, number[]>()
  for (const b of r.inputs) {
    const given = o.shapes.get(b.name)
    if (!b.dims.includes(-1)) {
      if (given && dimsText(given) !== dimsText(b.dims)) {
        setupFailed(`The engine was built with static shapes for input tensor ${b.name} but the provided shapes do not match the static shapes!`)
      }
      shapes.set(b.name, b.dims)
      continue
    }
    let dims = given
    if (!dims) {
      dims = b.dims.map((d) => (d >= 0 ? d : 1))
      log.warn(`Shape missing for input with dynamic shape: ${b.name}Automatically setting shape to: ${dimsText(dims)}`)
    }
    if (v10) log.info(`Set shape of input tensor ${b.name} to: ${dimsText(dims)}`)
    const range = r.profile[b.name]
    const fits = range && dims.length === range.min.length && dims.every((d, i) => d >= range.min[i]! && d <= range.max[i]!)
    if (!fits) {
      setupFailed('Error[3]: [executionContext.cpp::setInputShape::2309] Error Code 3: API Usage Error (Parameter check failed at: runtime/api/executionContext.cpp::setInputShape::2309, condition: satisfyProfile Runtime dimension does not satisfy any optimization profile.)')
    }
    shapes.set(b.name, dims)
  }
  if (v10) log.info(`Created execution context with device memory size: ${cppFloat(engine.sizeBytes / 7 / (1 << 20))} MiB`)
  for (const name of o.loadInputs.keys()) {
    if (!inputNames.includes(name)) {
      setupFailed(`Cannot find input tensor with name "${name}" in the engine bindings! Please make sure the input tensor names are correct.`, 'Invalid tensor names found in --loadInputs flag.')
    }
  }
  // Input bindings: --loadInputs files, checked to the byte, or random values.
  const feeds: TensorMap = {}
  let randomInts = false
  for (const b of r.inputs) {
    const dims = shapes.get(b.name)!
    const n = volume(dims)
    const file = o.loadInputs.get(b.name)
    let data: HostTensor['data']
    if (file !== undefined) {
      log.info(`Using values loaded from ${file} for input ${b.name}`)
      const size = n * elementSize(b.elemType)
      let bytes: Buffer
      try {
        bytes = readFileSync(file)
      } catch {
        log.error(`Uncaught exception detected: Cannot open file ${file}!`)
        throw failed()
      }
      // 10.x also takes twice the size: int32 data of an int64 input, for version-compatible engines.
      if (bytes.length !== size && !(v10 && bytes.length === size * 2)) {
        log.error(`Uncaught exception detected: Unexpected file size for input file: ${file}. Note: Input binding size is: ${size} bytes but the file size is ${bytes.length} bytes. Double check the size and datatype of the provided data.`)
        throw failed()
      }
      data = fromRaw(b, Buffer.from(bytes.subarray(0, size)))
    } else {
      log.info(`Using random values for input ${b.name}`)
      data = randomData(b, n)
      if (b.elemType !== DataType.FLOAT && b.elemType !== DataType.FLOAT16 && b.elemType !== DataType.BFLOAT16) randomInts = true
    }
    feeds[b.name] = toOnnx(b, dims, data)
    if (!v10) {
      log.info(atLeast(v, 8, 6, 1) ? `Input binding for ${b.name} with dimensions ${dimsText(dims)} is created.` : `Created input binding for ${b.name} with dimensions ${dimsText(dims)}`)
    } else {
      log.info(`Input binding for ${b.name} with dimensions ${dimsText(dims)} and type ${bindingTypeName(b.elemType)} is created.`)
    }
  }
  const outputs = await computeOutputs(run, r, feeds, randomInts)
  for (const out of outputs) {
    if (!v10) {
      if (!atLeast(v, 8, 6, 1)) log.info(`Using random values for output ${out.name}`)
      log.info(atLeast(v, 8, 6, 1) ? `Output binding for ${out.name} with dimensions ${dimsText(out.dims)} is created.` : `Created output binding for ${out.name} with dimensions ${dimsText(out.dims)}`)
    } else {
      log.info(`Output binding for ${out.name} with dimensions ${dimsText(out.dims)} and type ${bindingTypeName(out.elemType)} is created.`)
    }
  }
  await layerInfo(run, r, shapes)
  log.info('Starting inference')
  if (env.fault === 'crash' || env.fault === 'abort') crash(run, env.fault)
  if (env.fault === 'cuda') {
    log.raw('Cuda failure at /_src/samples/common/sampleInference.cpp:606: an illegal memory access was encountered\n', 2)
    throw new Exit(1, null)
  }
  if (o.cudaGraph && v10) {
    log.info('Capturing CUDA graph for the current execution context')
    log.info('Successfully captured CUDA graph for the current execution context')
  }
  if (o.duration < 0) {
    // --duration=-1 runs until stopped, as trtexec does.
    await new Promise(() => setInterval(() => undefined, 1 << 30))
  }
  const c = costs(run, r, shapes, outputs)
  const seed = seedOf(`${r.onnx.sha256}|${JSON.stringify([...shapes])}`)
  const profiler = o.dumpProfile || o.exportProfile !== ''
  if (profiler && !o.separateProfileRun) {
    log.info('The e2e network timing is not reported since it is inaccurate due to the extra synchronizations when the profiler is enabled.')
    log.info('To show e2e network timing report, add --separateProfileRun to profile layer timing in a separate run or remove --dumpProfile to disable the profiler.')
  } else {
    const { trace, warmups } = simulate(o, c, seed)
    report(log, o, trace, warmups)
  }
  if (o.dumpOutput) {
    for (const out of outputs) {
      log.info(`${out.name}: (${dimsText(out.dims)})`)
      log.info(out.values.map((x) => valueText(x, out.elemType)).join(' '))
    }
  }
  if (o.exportOutput) writeOutputs(o.exportOutput, outputs)
  if (profiler) {
    // Profiled iterations: as many as fit in the duration at the profiler's slower pace.
    const iterations = Math.max(o.iterations, Math.floor((o.duration * 1000) / (c.computeMs * 1.8 + c.enqueueMs * 4)))
    const shares = r.layers.map((l) => (l.op === 'Conv' || l.op === 'MatMul' || l.op === 'Gemm' ? 4 : l.op === 'Reformat' ? 0.5 : 1))
    const layers = profileLayers(r.layers.map((l) => l.name), shares, Math.min(iterations, 20000), c.computeMs, seed)
    if (o.dumpProfile) printProfile(log, layers)
    if (o.exportProfile) writeProfile(o.exportProfile, layers)
  }
}

async function computeOutputs(run: Run, r: PlanRecord, feeds: TensorMap, randomInts: boolean): Promise<OutputValues[]> {
  const model = recordedModel(r)
  const { loadModel, runModel, closeModel } = await import('../../../src/validate/runtime.js')
  const session = await loadModel(model.path)
  try {
    let results: TensorMap
    try {
      results = await runModel(session, feeds)
    } catch (err) {
      // trtexec's random integers (-128..127) are out of range for most index inputs (token ids, token
      // types): TensorRT reads past the table and carries on, onnxruntime refuses. Such values cannot be
      // reproduced outside trtexec anyway, so the double computes these outputs on integers clamped to 0..1.
      if (!randomInts) throw new DoubleError(`onnxruntime cannot run ${model.path} on these inputs: ${(err as Error).message}`)
      const clamped: TensorMap = {}
      for (const [k, t] of Object.entries(feeds)) {
        clamped[k] = t.data instanceof BigInt64Array
          ? { ...t, data: t.data.map((x) => (x < 0n ? -x : x) % 2n) }
          : t.dtype.startsWith('int') || t.dtype.startsWith('uint') || t.dtype === 'bool'
            ? { ...t, data: (t.data as Int32Array).map((x) => Math.abs(x) % 2) as Int32Array }
            : t
      }
      results = await runModel(session, clamped)
    }
    const corrupt = run.env.fault === 'corrupt-outputs'
    return r.outputs.map((b) => outputValues(r, b, results[b.name]!, corrupt))
  } finally {
    await closeModel(session)
  }
}

/**
 * Every tensor's shape and type at the given input shapes: onnxruntime runs the model with each node output
 * made a graph output. The detailed layer information needs them; without them its Dimensions stay empty.
 */
async function tensorFacts(r: PlanRecord, shapes: Map<string, number[]>): Promise<Map<string, TensorFacts>> {
  const facts = new Map<string, TensorFacts>()
  let model
  try {
    model = recordedModel(r)
  } catch {
    return facts
  }
  const proto = structuredClone(model.proto)
  const graph = proto.graph!
  const seen = new Set((graph.output ?? []).map((o) => o.name))
  for (const n of graph.node ?? []) for (const out of n.output ?? []) if (out && !seen.has(out)) { graph.output!.push({ name: out }); seen.add(out) }
  const { loadModel, runModel, closeModel } = await import('../../../src/validate/runtime.js')
  const { encodeModel } = await import('../../../src/onnx/proto.js')
  const onnxType = new Map(Object.entries(dtypeFromOnnx).map(([k, v]) => [v, Number(k)]))
  try {
    const session = await loadModel(encodeModel(proto), { label: model.path })
    try {
      const feeds: TensorMap = {}
      for (const b of r.inputs) {
        const dims = shapes.get(b.name) ?? b.dims.map((d) => (d < 0 ? 1 : d))
        // Zeros are valid indices for every gather; floats are random, as trtexec's are.
        const data = randomData(b, volume(dims))
        const zeroed = data instanceof Float32Array || data instanceof Uint16Array ? data : data instanceof BigInt64Array ? data.fill(0n) : (data as Int32Array).fill(0)
        feeds[b.name] = toOnnx(b, dims, zeroed)
      }
      const results = await runModel(session, feeds)
      for (const [name, t] of Object.entries(results)) facts.set(name, { dims: t.dims, elemType: onnxType.get(t.dtype) ?? DataType.FLOAT })
    } finally {
      await closeModel(session)
    }
  } catch {
    // A model onnxruntime cannot run this way (a sequence output, say) keeps the dims it declares.
  }
  return facts
}

/** --dumpLayerInfo and --exportLayerInfo (after the inference context exists, or before skipping inference). */
export async function layerInfo(run: Run, r: PlanRecord, shapes?: Map<string, number[]>): Promise<void> {
  const { log, o, env } = run
  if (!o.dumpLayerInfo && !o.exportLayerInfo) return
  // Without an execution context the engine's shapes are the profile's opt shapes.
  const at = shapes ?? new Map(r.inputs.map((b) => [b.name, r.profile[b.name]?.opt ?? b.dims] as [string, number[]]))
  const detailed = r.profilingVerbosity === 2
  const facts = detailed ? await tensorFacts(r, at) : new Map<string, TensorFacts>()
  for (const b of r.inputs) facts.set(b.name, { dims: at.get(b.name) ?? b.dims, elemType: b.elemType })
  let model
  try {
    model = detailed ? recordedModel(r) : undefined
  } catch {
    model = undefined
  }
  if (o.dumpLayerInfo) {
    log.info('Layer Information:')
    log.info('Layers:')
    log.raw(`${r.layers.map((l) => layerInfoLine(l, env.version.major)).join('\n')}\n\nBindings:\n${[...r.inputs, ...r.outputs].map((b) => b.name).join('\n')}\n`)
  }
  if (o.exportLayerInfo) writeFileSync(o.exportLayerInfo, layerInfoJson(r, model, facts, env.version.major, env.gpu.sm))
}
