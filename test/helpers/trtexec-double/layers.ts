/**
 * The engine's layers, as TensorRT's engine inspector reports them (--dumpLayerInfo, --exportLayerInfo):
 * one layer per ONNX node, a convolution or matrix multiply fused with the activation or bias add that alone
 * consumes its output ("Conv_0 + Relu_1"), Q/DQ pairs on weights folded into their consumer, and reformat
 * layers at the network's float inputs and outputs when the engine computes in half precision.
 *
 * The JSON follows what TensorRT writes: {"Layers": [names], "Bindings": [...]} unless the engine was built
 * with --profilingVerbosity=detailed, then one object per layer (Name, LayerType, Inputs, Outputs with
 * Dimensions and Format/Datatype, TacticName, TacticValue, StreamId, Metadata), in TensorRT's own layout.
 */
import { createHash } from 'node:crypto'
import { DataType } from '../../../src/onnx/proto.js'
import type { NodeProto } from '../../../src/onnx/proto.js'
import type { OnnxModel } from './model.js'
import type { PlanLayer, PlanRecord } from './plan.js'

const FUSES_INTO = new Set(['Conv', 'ConvTranspose', 'Gemm', 'MatMul'])
const ACTIVATIONS = new Set(['Relu', 'Sigmoid', 'Tanh', 'Clip', 'LeakyRelu', 'Add', 'Gelu'])
const QDQ = new Set(['QuantizeLinear', 'DequantizeLinear'])

export function planLayers(model: OnnxModel, halfIO: boolean): PlanLayer[] {
  const inits = new Set((model.proto.graph?.initializer ?? []).map((t) => t.name))
  const consumers = new Map<string, number>()
  for (const n of model.nodes) for (const i of n.input ?? []) consumers.set(i, (consumers.get(i) ?? 0) + 1)
  const name = (n: NodeProto, i: number) => n.name || `(Unnamed Layer* ${i}) [${n.opType}]`
  const layers: PlanLayer[] = []
  const used = new Set<number>()
  for (const [i, n] of model.nodes.entries()) {
    if (used.has(i)) continue
    // Constants become weights; Q/DQ on weights fold into the layer that reads them.
    if (n.opType === 'Constant') continue
    if (QDQ.has(n.opType) && (n.input ?? []).slice(0, 1).every((x) => inits.has(x))) continue
    const out = n.output?.[0]
    const next = model.nodes[i + 1]
    if (FUSES_INTO.has(n.opType) && next && out && consumers.get(out) === 1 && ACTIVATIONS.has(next.opType) && (next.input ?? []).includes(out)) {
      used.add(i + 1)
      layers.push({ name: `${name(n, i)} + ${name(next, i + 1)}`, nodes: [name(n, i), name(next, i + 1)], op: n.opType })
      continue
    }
    layers.push({ name: name(n, i), nodes: [name(n, i)], op: n.opType })
  }
  if (halfIO && layers.length) {
    const first = layers[0]!.name
    const last = layers.at(-1)!.name
    if (model.inputs.some((t) => t.elemType === DataType.FLOAT)) layers.unshift({ name: `Reformatting CopyNode for Input Tensor 0 to ${first}`, nodes: [], op: 'Reformat' })
    if (model.outputs.some((t) => t.elemType === DataType.FLOAT)) layers.push({ name: `Reformatting CopyNode for Output Tensor 0 to ${last}`, nodes: [], op: 'Reformat' })
  }
  return layers
}

function layerType(op: string, major: number): string {
  if (op === 'Conv') return 'CaskConvolution'
  if (op === 'ConvTranspose') return 'CaskDeconvolution'
  if (/Pool$/.test(op)) return 'CaskPooling'
  if (op === 'MatMul' || op === 'Gemm') return major >= 10 ? 'CaskGemmMatrixMultiply' : 'CaskGemmConvolution'
  if (op === 'Softmax') return 'CaskSoftMaxV2'
  if (['Reshape', 'Flatten', 'Transpose', 'Squeeze', 'Unsqueeze'].includes(op)) return 'Shuffle'
  if (op.startsWith('Reduce')) return 'Reduce'
  if (op === 'LayerNormalization') return 'Normalization'
  if (op === 'Reformat') return 'Reformat'
  if (op === 'QuantizeLinear' || op === 'DequantizeLinear') return 'Scale'
  if (['Gather', 'Slice', 'Concat', 'Cast', 'Shape', 'Expand', 'Where', 'TopK', 'Pad', 'Resize', 'Identity'].includes(op)) return op === 'Identity' ? 'NoOp' : op
  return 'PointWiseV2'
}

function datatype(elemType: number, major: number, half: boolean): string {
  const t = half && elemType === DataType.FLOAT ? DataType.FLOAT16 : elemType
  const names10: Record<number, string> = {
    [DataType.FLOAT]: 'Float', [DataType.FLOAT16]: 'Half', [DataType.BFLOAT16]: 'BFloat16', [DataType.INT8]: 'Int8',
    [DataType.INT32]: 'Int32', [DataType.INT64]: 'Int64', [DataType.BOOL]: 'Bool', [DataType.UINT8]: 'UInt8',
  }
  const names8: Record<number, string> = {
    [DataType.FLOAT]: 'Row major linear FP32', [DataType.FLOAT16]: 'Row major linear FP16 format', [DataType.INT8]: 'Row major linear Int8 format',
    [DataType.INT32]: 'Row major linear Int32', [DataType.INT64]: 'Row major linear Int32', [DataType.BOOL]: 'Row major linear Bool',
  }
  return (major >= 10 ? names10 : names8)[t] ?? (major >= 10 ? 'Float' : 'Row major linear FP32')
}

function tactic(layer: PlanLayer, sm: number, prec: string): { name: string; value: string } {
  const h = createHash('sha256').update(`${layer.name}|${sm}|${prec}`).digest('hex')
  const kernel = layer.op === 'Conv' ? `sm${sm}_xmma_fprop_implicit_gemm_${prec}_nchwkcrs_nchw_tilesize64x64x64_stage4_warpsize2x2x1_g1`
    : layer.op === 'MatMul' || layer.op === 'Gemm' ? `sm${sm}_xmma_gemm_${prec}_tn_n_tilesize128x128x32_stage3_warpsize2x2x1`
      : /Pool$/.test(layer.op) ? `sm50_xmma_pooling_${prec}NCHW_kMAX`
        : `__myl_${layer.op}_0x${h.slice(0, 32)}`
  return { name: kernel, value: `0x${h.slice(32, 48)}` }
}

export interface TensorFacts { dims: number[]; elemType: number }

/** --exportLayerInfo's JSON, byte-compatible with what TensorRT's inspector writes. */
export function layerInfoJson(record: PlanRecord, model: OnnxModel | undefined, facts: Map<string, TensorFacts>, major: number, sm: number): string {
  const bindings = [...record.inputs, ...record.outputs].map((b) => b.name)
  const bindingsText = `"Bindings": [${bindings.map((b) => JSON.stringify(b)).join('\n,')}\n]}`
  if (record.profilingVerbosity !== 2) {
    return `{"Layers": [${record.layers.map((l) => JSON.stringify(l.name)).join('\n,')}\n],\n${bindingsText}\n`
  }
  const half = record.precision.fp16 || record.precision.best
  const prec = half ? 'f16f16_f16f16_f16' : 'f32f32_f32f32_f32'
  const byName = new Map((model?.nodes ?? []).map((n, i) => [n.name || `(Unnamed Layer* ${i}) [${n.opType}]`, n]))
  const ioOf = (layer: PlanLayer) => {
    const nodes = layer.nodes.map((n) => byName.get(n)).filter((n): n is NodeProto => !!n)
    const produced = new Set(nodes.flatMap((n) => n.output ?? []))
    const inits = new Set((model?.proto.graph?.initializer ?? []).map((t) => t.name))
    const ins = nodes.flatMap((n) => n.input ?? []).filter((x) => x && !produced.has(x) && !inits.has(x))
    const outs = nodes.at(-1)?.output ?? []
    return { ins: [...new Set(ins)], outs }
  }
  const tensor = (name: string, location = true) => {
    const f = facts.get(name)
    const lines = [`    "Name": ${JSON.stringify(name)}`]
    if (location) lines.push('    "Location": "Device"')
    lines.push(`    "Dimensions": [${(f?.dims ?? []).join(',')}]`, `    "Format/Datatype": ${JSON.stringify(datatype(f?.elemType ?? DataType.FLOAT, major, half))}`)
    return `  {\n${lines.join(',\n')}\n  }`
  }
  const objects = record.layers.map((layer) => {
    let { ins, outs } = ioOf(layer)
    if (layer.op === 'Reformat') {
      const input = layer.name.includes('Input Tensor')
      const t = input ? record.inputs[0]!.name : record.outputs[0]!.name
      ins = [t]
      outs = [`Reformatted ${input ? 'Input' : 'Output'} Tensor 0 to ${layer.name.replace(/^Reformatting CopyNode for (Input|Output) Tensor 0 to /, '')}`]
      facts.set(outs[0]!, facts.get(t) ?? { dims: [], elemType: DataType.FLOAT })
    }
    const t = tactic(layer, sm, prec)
    const fields = [
      `  "Name": ${JSON.stringify(layer.name)}`,
      `  "LayerType": ${JSON.stringify(layerType(layer.op, major))}`,
      `  "Inputs": [\n${ins.map((x) => tensor(x)).join(',\n')}]`,
      `  "Outputs": [\n${outs.map((x) => tensor(x)).join(',\n')}]`,
      ...(layer.op === 'Conv' ? ['  "ParameterType": "Convolution"'] : /Pool$/.test(layer.op) ? ['  "ParameterType": "Pooling"'] : []),
      `  "TacticName": ${JSON.stringify(t.name)}`,
      `  "TacticValue": ${JSON.stringify(t.value)}`,
      ...(major >= 10 ? ['  "StreamId": 0', `  "Metadata": ${JSON.stringify(layer.nodes.map((n) => `[ONNX Layer: ${n}]`).join('\u001e'))}`] : []),
    ]
    return `{\n${fields.join(',\n')}\n}`
  })
  return `{"Layers": [${objects.join(',')}],\n${bindingsText}\n`
}

/** --dumpLayerInfo's one-line form of a layer. */
export function layerInfoLine(layer: PlanLayer, major: number): string {
  return `Name: ${layer.name}, LayerType: ${layerType(layer.op, major)}`
}
