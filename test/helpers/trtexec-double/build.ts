/**
 * Building an engine from --onnx, line by line as the version's trtexec logs it: parse (the ONNX model
 * block; the missing-file, unsupported-operator and plugin-not-found chains), network and profile set-up
 * (input names, static models, dynamic inputs without shapes, invalid ranges), the precision notes, the
 * timing cache, the build itself (which really takes TRTEXEC_DOUBLE_BUILD_SECONDS, less with a timing
 * cache that already holds its tactics), the faults a build can meet, and the plan written to --saveEngine.
 */
import { resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { DataType } from '../../../src/onnx/proto.js'
import { since, type Run } from './context.js'
import { Exit, failed } from './exit.js'
import { crash } from './faults.js'
import { cppFloat, dimsText } from './format.js'
import { planLayers } from './layers.js'
import { engineType, firstUnsupported, isDefaultDomain, nodeText, readOnnx, type OnnxModel } from './model.js'
import type { Range } from './options.js'
import { writePlan, type PlanBinding, type PlanRecord } from './plan.js'
import { readCache, tacticKey, writeCache } from './timing-cache.js'
import { atLeast, fullVersion } from './version.js'

export interface Engine {
  record: PlanRecord
  sizeBytes: number
}

const TAIL = ['Failed to create engine from model or file.', 'Engine set up failed']

function chain(run: Run, ...errors: string[]): never {
  for (const e of errors) run.log.error(e)
  throw failed()
}

/** matchStringWithOneWildcard. */
function matches(pattern: string, name: string): boolean {
  const star = pattern.indexOf('*')
  if (star < 0) return pattern === name
  const [pre, post] = [pattern.slice(0, star), pattern.slice(star + 1)]
  return name.length >= pre.length + post.length && name.startsWith(pre) && name.endsWith(post)
}

function parse(run: Run, started: number): OnnxModel {
  const { log, o, env } = run
  const v = env.version
  const path = o.onnx ?? ''
  const parseFailed = (): never => {
    log.error('Failed to parse onnx file')
    log.info(`Finished parsing network model. Parse time: ${cppFloat(since(started))}`)
    chain(run, 'Parsing model failed', ...TAIL)
  }
  let model: OnnxModel
  try {
    model = readOnnx(path)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT' || code === 'ENOTFILE' || code === 'EISDIR' || code === 'EACCES') {
      if (v.major >= 10) {
        log.error(`Error[3]: In node -1 with name:  and operator:  (parseFromFile): INVALID_VALUE: Assertion failed: stat(onnxModelFile, &sb) == 0 && S_ISREG(sb.st_mode): Input file cannot be found, or is not a regular file: ${path}`)
      } else {
        log.error(`Could not open file ${path}`)
        log.trtError(`ModelImporter.cpp:688: Failed to parse ONNX model from file: ${path}`)
      }
    } else {
      log.trtError(`ModelImporter.cpp:${v.major >= 10 ? 811 : 688}: Failed to parse ONNX model from file: ${path}`)
    }
    return parseFailed()
  }
  const p = model.proto
  const opset = (p.opsetImport ?? []).find((x) => isDefaultDomain(x.domain))
  const ir = Number(p.irVersion ?? 0)
  const field = (label: string, value: string) => log.trtInfo(`${label.padEnd(18)}${value}`)
  log.trtInfo('----------------------------------------------------------------')
  field('Input filename:', path)
  field('ONNX IR version:', `0.0.${ir}`)
  field('Opset version:', String(Number(opset?.version ?? 0)))
  field('Producer name:', p.producerName ?? '')
  field('Producer version:', p.producerVersion ?? '')
  field('Domain:', p.domain ?? '')
  field('Model version:', String(Number(p.modelVersion ?? 0)))
  field('Doc string:', p.docString ?? '')
  log.trtInfo('----------------------------------------------------------------')
  if (v.major < 10 && model.int64Weights) {
    log.trtWarn('onnx2trt_utils.cpp:374: Your ONNX model has been generated with INT64 weights, while TensorRT does not natively support INT64. Attempting to cast down to INT32.')
  }
  const bad = firstUnsupported(model)
  if (bad) {
    const { index, node } = bad
    log.trtInfo(`No importer registered for op: ${node.opType}. Attempting to import as plugin.`)
    log.trtInfo(`Searching for plugin: ${node.opType}, plugin_version: 1, plugin_namespace: `)
    const [l0, l1, l2, l3] = v.major >= 10 ? [963, 964, 965, 968] : [771, 772, 773, 775]
    if (v.major < 10) log.trtError(`3: getPluginCreator could not find plugin: ${node.opType} version: 1`)
    log.trtError(`ModelImporter.cpp:${l0}: While parsing node number ${index} [${node.opType} -> "${node.output?.[0] ?? ''}"]:`)
    log.trtError(`ModelImporter.cpp:${l1}: --- Begin node ---`)
    log.raw(`${nodeText(node)}\n\n`, 2)
    log.trtError(`ModelImporter.cpp:${l2}: --- End node ---`)
    if (v.major >= 10) {
      log.trtError(`ModelImporter.cpp:${l3}: ERROR: onnxOpCheckers.cpp:819 In function checkFallbackPluginImporter:`)
      log.raw('[6] creator && "Plugin not found, are the plugin name, version, and namespace correct?"\n', 2)
    } else {
      log.trtError(`ModelImporter.cpp:${l3}: ERROR: builtin_op_importers.cpp:5404 In function importFallbackPluginImporter:`)
      log.raw('[8] Assertion failed: creator && "Plugin not found, are the plugin name, version, and namespace correct?"\n', 2)
    }
    return parseFailed()
  }
  if (v.major >= 10) {
    for (const out of model.outputs) if (out.elemType === DataType.INT64) log.trtWarn(`ModelImporter.cpp:994: Make sure output ${out.name} has Int64 binding.`)
  }
  log.info(`Finished parsing network model. Parse time: ${cppFloat(since(started))}`)
  return model
}

/** setupNetworkAndConfig's shape half: the profile of every dynamic input, or the failure chain. */
function profileFor(run: Run, model: OnnxModel): Record<string, Range> {
  const { log, o, env } = run
  const setupFailed = (...errors: string[]): never => chain(run, ...errors, 'Network And Config setup failed', 'Building engine failed', ...TAIL)
  for (const name of o.profile.keys()) {
    if (!model.inputs.some((t) => matches(name, t.name))) {
      setupFailed(`Cannot find input tensor with name "${name}" in the network inputs! Please make sure the input tensor names are correct.`)
    }
  }
  const profile: Record<string, Range> = {}
  let dynamic = model.outputs.some((t) => t.dims.includes(-1))
  for (const input of model.inputs) {
    if (!input.dims.includes(-1)) continue
    dynamic = true
    const given = [...o.profile].find(([k]) => matches(k, input.name))?.[1]
    let range: Range
    if (!given) {
      const dims = input.dims.map((d) => (d > 0 ? d : 1))
      log.warn(`Dynamic dimensions required for input: ${input.name}, but no shapes were provided. Automatically overriding shape to: ${dimsText(dims)}`)
      range = { min: dims, opt: dims, max: dims }
    } else {
      range = given
    }
    for (const [which, dims] of [['MIN', range.min], ['OPT', range.opt], ['MAX', range.max]] as const) {
      if (dims.length !== input.dims.length || dims.some((d, i) => (input.dims[i]! >= 0 && d !== input.dims[i]) || d < 0)) {
        setupFailed(
          `Error[3]: IOptimizationProfile::setDimensions: Error Code 3: API Usage Error (Parameter check failed, condition: the dimensions of ${input.name} match the network input [${input.dims.join(',')}]: ${which}=${dimsText(dims)})`,
          `Error in set dimensions to profile ${which}`,
        )
      }
    }
    if (env.version.major >= 10) {
      log.info(`Set shape of input tensor ${input.name} for optimization profile 0 to: MIN=${dimsText(range.min)} OPT=${dimsText(range.opt)} MAX=${dimsText(range.max)}`)
    }
    for (let i = 0; i < range.min.length; i++) {
      const [lo, mid, hi] = [range.min[i]!, range.opt[i]!, range.max[i]!]
      if (!(lo <= mid && mid <= hi)) {
        setupFailed(
          `Error[4]: [optimizationProfile.cpp::setDimensions::119] Error Code 4: API Usage Error (${input.name}: for dimension number ${i} in profile 0 does not satisfy MIN = ${lo} <= OPT = ${mid} <= MAX = ${hi}.)`,
          'Required optimization profile is invalid',
        )
      }
    }
    profile[input.name] = range
  }
  if (!dynamic && o.profile.size > 0) {
    setupFailed('Static model does not take explicit shapes since the shape of inference tensors will be determined by the model itself')
  }
  return profile
}

function bindings(model: OnnxModel, major: number): { inputs: PlanBinding[]; outputs: PlanBinding[] } {
  const one = (t: OnnxModel['inputs'][number]): PlanBinding => ({ name: t.name, elemType: engineType(t.elemType, major), onnxType: t.elemType, dims: t.dims })
  return { inputs: model.inputs.map(one), outputs: model.outputs.map(one) }
}

function mib(bytes: number): string {
  return cppFloat(bytes / (1 << 20))
}

export async function buildEngine(run: Run): Promise<Engine> {
  const { log, o, env } = run
  const v = env.version
  const v10 = v.major >= 10
  if (v10) {
    log.trtInfo('[MemUsageChange] Init CUDA: CPU +1, GPU +0, now: CPU 32, GPU 458 (MiB)')
  } else {
    log.trtInfo('[MemUsageChange] Init CUDA: CPU +2, GPU +0, now: CPU 17, GPU 1021 (MiB)')
    log.trtInfo('[MemUsageChange] Init builder kernel library: CPU +1217, GPU +271, now: CPU 1310, GPU 1309 (MiB)')
  }
  const parseStart = performance.now()
  log.info('Start parsing network model.')
  const model = parse(run, parseStart)
  const profile = profileFor(run, model)

  // Precision as the builder will use it (weak typing flags, or the model's own types when strongly typed).
  const weakInt8 = !o.stronglyTyped && (o.int8 || o.best)
  const quantization: PlanRecord['quantization'] = model.qdq ? 'explicit' : weakInt8 && !o.calib ? 'dummy-ranges' : 'none'
  if (o.int8 && !o.fp16) log.info('FP32 and INT8 precisions have been specified - more performance might be enabled by additionally specifying --fp16 or --best')
  if (quantization === 'dummy-ranges') {
    // trtexec sets these ranges silently; the double says so, since the engine's outputs are meaningless.
    log.warn('The network has no Q/DQ nodes and no calibration cache was given: every tensor gets a dummy dynamic range (inputs [-2, 2], outputs [-4, 4]); INT8 results are for performance measurements only.')
  }
  if (model.qdq && o.calib) log.trtWarn("Calibrator won't be used in explicit quantization mode. Please insert Quantize/Dequantize layers to indicate which tensors to quantize/dequantize.")

  // The timing cache: what earlier builds timed is not timed again.
  const keys = model.nodes.map((n, i) => tacticKey([n.opType, i, JSON.stringify(profile), o.fp16, o.bf16, o.int8, o.best, o.stronglyTyped]))
  const cacheFile = o.noBuilderCache ? '' : o.timingCacheFile
  let known = new Set<string>()
  let cacheExisted = false
  if (cacheFile) {
    const got = readCache(cacheFile, fullVersion(v), env.gpu.uuid)
    if (got.ok) {
      cacheExisted = true
      known = new Set(got.cache.entries)
      if (v10) log.trtInfo(`Loaded ${got.bytes} bytes of timing cache from ${cacheFile}`)
      else log.info(`Loaded ${got.bytes} bytes of timing cache from ${cacheFile}`)
    } else if (v10) {
      log.trtWarn(`Could not read cache from: ${cacheFile}. A new cache will be generated and written.`)
    } else {
      log.warn(`Could not read timing cache from: ${cacheFile}. A new timing cache will be generated and written.`)
    }
  }
  const misses = keys.filter((k) => !known.has(k)).length
  if (v10) log.trtInfo('[MemUsageChange] Init builder kernel library: CPU +522, GPU +10, now: CPU 768, GPU 470 (MiB)')
  else log.trtInfo('Graph optimization time: 0.013082 seconds.')
  log.trtInfo(cacheFile ? 'Global timing cache in use. Profiling results in this builder pass will be stored.' : 'Local timing cache in use. Profiling results in this builder pass will not be stored.')
  if (atLeast(v, 10, 13)) log.trtInfo('Compiler backend is used during engine build.')

  const buildStart = performance.now()
  // Tactics found in the cache are not timed: a build whose every layer hits takes a quarter of the time.
  const seconds = env.buildSeconds * (keys.length ? 0.25 + 0.75 * (misses / keys.length) : 1)
  const fault = env.fault
  if (fault === 'oom' || fault === 'no-implementation' || fault === 'crash' || fault === 'abort' || fault === 'cuda') {
    await sleep(seconds * 500)
    if (fault === 'crash' || fault === 'abort') crash(run, fault)
    if (fault === 'cuda') {
      log.raw('Cuda failure at /_src/samples/common/sampleEngines.cpp:1342: an illegal memory access was encountered\n', 2)
      throw new Exit(1, null)
    }
    if (fault === 'oom') {
      const bytes = Math.max(env.gpu.memoryMiB, 1024) * 2 ** 21
      log.trtWarn(`Requested amount of GPU memory (${bytes} bytes) could not be allocated. There may not be enough free memory for allocation to succeed.`)
      chain(run,
        `Error[2]: [${v10 ? 'virtualMemoryBuffer.cpp::resizePhysical::154' : 'virtualMemoryBuffer.cpp::resizePhysical::145'}] Error Code 2: OutOfMemory (Requested size was ${bytes} bytes.)`,
        `Error[2]: [globWriter.cpp::makeResizableGpuMemory::424] Error Code 2: OutOfMemory (no further information)`,
        'Engine could not be created from network', 'Building engine failed', ...TAIL)
    }
    const names = model.nodes.map((n, i) => n.name || `(Unnamed Layer* ${i}) [${n.opType}]`)
    const foreign = `{ForeignNode[${names[0] ?? ''}...${names.at(-1) ?? ''}]}`
    chain(run,
      v10
        ? `Error[10]: IBuilder::buildSerializedNetwork: Error Code 10: Internal Error (Could not find any implementation for node ${foreign}.)`
        : `Error[10]: [optimizer.cpp::computeCosts::3873] Error Code 10: Internal Error (Could not find any implementation for node ${foreign}.)`,
      'Engine could not be created from network', 'Building engine failed', ...TAIL)
  }
  await sleep(seconds * 1000)

  const halfIO = !o.stronglyTyped && (o.fp16 || o.best || o.bf16)
  const layers = planLayers(model, halfIO)
  const { inputs, outputs } = bindings(model, v.major)
  const int8Effective = quantization !== 'none'
  const floatFactor = int8Effective && quantization === 'dummy-ranges' ? 0.25 : halfIO ? 0.5 : 1
  const size = (model.weightBytes - model.floatWeightBytes) + model.floatWeightBytes * floatFactor + 65536 + layers.length * 2048
  const activation = model.inputs.reduce((a, t) => a + t.dims.reduce((b, d) => b * (d > 0 ? d : 1), 4), 0) * 32
  log.trtInfo(`Detected ${inputs.length} inputs and ${outputs.length} output network tensors.`)
  log.trtInfo(`Total Host Persistent Memory: ${1024 + layers.length * 1136}${v10 ? ' bytes' : ''}`)
  log.trtInfo(`Total Device Persistent Memory: 0${v10 ? ' bytes' : ''}`)
  log.trtInfo(`${v10 ? 'Max' : 'Total'} Scratch Memory: ${v10 ? '4608 bytes' : '0'}`)
  if (!v10) log.trtInfo('[MemUsageStats] Peak memory usage of TRT CPU/GPU memory allocators: CPU 30 MiB, GPU 19 MiB')
  log.trtInfo(`[BlockAssignment] Started assigning block shifts. This will take ${layers.length} steps to complete.`)
  log.trtInfo(`[BlockAssignment] Algorithm ShiftNTopDown took 0.01442ms to assign ${Math.min(layers.length, 4)} blocks to ${layers.length} nodes requiring ${activation} bytes.`)
  log.trtInfo(`Total Activation Memory: ${activation}${v10 ? ' bytes' : ''}`)
  if (v10) {
    log.trtInfo(`Total Weights Memory: ${Math.round(size - 65536)} bytes`)
    if (atLeast(v, 10, 13)) log.trtInfo('Compiler backend is used during engine execution.')
    log.trtInfo(`Engine generation completed in ${cppFloat(since(buildStart))} seconds.`)
    log.trtInfo(`[MemUsageStats] Peak memory usage of TRT CPU/GPU memory allocators: CPU 0 MiB, GPU ${Math.ceil(size / (1 << 20))} MiB`)
  } else {
    log.trtInfo(`[MemUsageChange] TensorRT-managed allocation in building engine: CPU +${Math.ceil(size / (1 << 20))}, GPU +${Math.ceil(size / (1 << 20)) + 1}, now: CPU ${Math.ceil(size / (1 << 20))}, GPU ${Math.ceil(size / (1 << 20)) + 1} (MiB)`)
  }

  const record: PlanRecord = {
    schema: 'trtexec-double-plan@1',
    onnx: { path: resolve(model.path), sha256: model.sha256 },
    precision: { fp16: o.fp16, bf16: o.bf16, int8: o.int8, fp8: o.fp8, int4: o.int4, best: o.best, tf32: o.tf32 },
    stronglyTyped: o.stronglyTyped,
    quantization,
    profile,
    inputs,
    outputs,
    layers,
    profilingVerbosity: o.profilingVerbosity,
    versionCompatible: o.versionCompatible,
    hardwareCompatibilityLevel: o.hardwareCompatibilityLevel,
    gpu: { name: env.gpu.name, computeCapability: env.gpu.computeCapability, uuid: env.gpu.uuid },
    tensorrt: { version: v.text, major: v.major, minor: v.minor, patch: v.patch, build: v.build },
    weightBytes: model.weightBytes,
    builtAt: new Date().toISOString(),
  }
  const save = () => {
    if (!o.saveEngine) return
    try {
      writePlan(o.saveEngine, record, size)
    } catch {
      chain(run, v10 ? 'Cannot write to FileStreamWriter' : 'Saving engine to file failed.', 'Saving engine to file failed.', 'Engine set up failed')
    }
  }
  const builtIn = () => log.info(`Engine built in ${cppFloat(since(buildStart) + 0.0123)} sec.`)
  // 10.13+ streams the plan into --saveEngine during the build, so it reports the size before the time.
  if (atLeast(v, 10, 13)) {
    save()
    log.info(`Created engine with size: ${mib(size)} MiB`)
    builtIn()
  } else {
    builtIn()
    if (v10) log.info(`Created engine with size: ${mib(size)} MiB`)
  }
  if (cacheFile) {
    const bytes = writeCache(cacheFile, { tensorrt: fullVersion(v), gpu: env.gpu.uuid, entries: [...known, ...keys] })
    if (v10) {
      if (!cacheExisted) log.trtWarn(`Could not read cache from: ${cacheFile}. A new cache will be generated and written.`)
      log.trtInfo(`Serialized ${new Set([...known, ...keys]).size} timing cache entries`)
      log.trtInfo(`Saved ${bytes} bytes of timing cache to ${cacheFile}`)
    } else {
      log.info(`Saved ${bytes} bytes of timing cache to ${cacheFile}`)
    }
  }
  if (!atLeast(v, 10, 13)) save()
  log.trtInfo(`Loaded engine size: ${Math.floor(size / (1 << 20))} MiB`)
  if (!v10) log.trtInfo(`[MemUsageChange] TensorRT-managed allocation in engine deserialization: CPU +0, GPU +${Math.ceil(size / (1 << 20))}, now: CPU 0, GPU ${Math.ceil(size / (1 << 20))} (MiB)`)
  log.info(`Engine deserialized in ${cppFloat(0.0012 + size / 4e9)} sec.`)
  return { record, sizeBytes: size }
}
