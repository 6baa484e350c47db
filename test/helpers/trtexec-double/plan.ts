/**
 * The engine file the double writes for --saveEngine and reads for --loadEngine. It begins as a TensorRT
 * plan does (samples/common: the 32-bit tag 0x74727466, "ftrt" on disk, then the serialization version
 * word, and the builder's TensorRT major, minor, patch and build at bytes 24-27), so a reader that checks a
 * plan's header sees a plan. After the header comes a JSON record of what was built, then padding up to
 * about the size the weights would take at the built precision.
 *
 *   0  'ftrt'            4  serialization version (u32 LE, 0)
 *   8  record offset     12 record length (u32 LE each)
 *   16 "TRTDBL01"        24 major, minor, patch, build (u8 each)
 *   32 record (UTF-8 JSON), then padding
 */
import { readFileSync, writeFileSync } from 'node:fs'
import type { Range } from './options.js'
import type { Version } from './version.js'

export const PLAN_TAG = 0x74727466
const MARK = 'TRTDBL01'
const HEADER = 32

export interface PlanBinding {
  name: string
  /** ONNX TensorProto.DataType of the engine's binding (after TensorRT's narrowing). */
  elemType: number
  /** The model's own type, which onnxruntime is fed. */
  onnxType: number
  /** -1 where the profile decides. */
  dims: number[]
}

export interface PlanLayer {
  name: string
  /** The ONNX nodes fused into it. */
  nodes: string[]
  op: string
}

export interface PlanRecord {
  schema: 'trtexec-double-plan@1'
  onnx: { path: string; sha256: string }
  precision: { fp16: boolean; bf16: boolean; int8: boolean; fp8: boolean; int4: boolean; best: boolean; tf32: boolean }
  stronglyTyped: boolean
  /** 'explicit' for a Q/DQ network, 'dummy-ranges' for --int8 without calibration on one without. */
  quantization: 'none' | 'explicit' | 'dummy-ranges'
  profile: Record<string, Range>
  inputs: PlanBinding[]
  outputs: PlanBinding[]
  layers: PlanLayer[]
  profilingVerbosity: number
  versionCompatible: boolean
  hardwareCompatibilityLevel: string
  gpu: { name: string; computeCapability: string; uuid: string }
  tensorrt: { version: string; major: number; minor: number; patch: number; build: number }
  weightBytes: number
  builtAt: string
}

export function planBytes(record: PlanRecord, size: number): Buffer {
  const json = Buffer.from(JSON.stringify(record), 'utf8')
  const total = Math.max(HEADER + json.length, Math.round(size))
  const buf = Buffer.alloc(total)
  buf.writeUInt32LE(PLAN_TAG, 0)
  buf.writeUInt32LE(0, 4)
  buf.writeUInt32LE(HEADER, 8)
  buf.writeUInt32LE(json.length, 12)
  buf.write(MARK, 16, 'ascii')
  const t = record.tensorrt
  buf.writeUInt8(t.major, 24)
  buf.writeUInt8(t.minor, 25)
  buf.writeUInt8(t.patch, 26)
  buf.writeUInt8(t.build & 0xff, 27)
  json.copy(buf, HEADER)
  return buf
}

export function writePlan(path: string, record: PlanRecord, size: number): number {
  const bytes = planBytes(record, size)
  writeFileSync(path, bytes)
  return bytes.length
}

export type PlanRead =
  | { ok: true; record: PlanRecord; size: number; version: Pick<Version, 'major' | 'minor' | 'patch' | 'build'> }
  | { ok: false; why: 'magic' | 'record'; size: number }

/** Reads a plan file (the file must exist: the caller reports a missing one). */
export function readPlan(path: string): PlanRead {
  const buf = readFileSync(path)
  if (buf.length < HEADER || buf.readUInt32LE(0) !== PLAN_TAG) return { ok: false, why: 'magic', size: buf.length }
  const version = { major: buf.readUInt8(24), minor: buf.readUInt8(25), patch: buf.readUInt8(26), build: buf.readUInt8(27) }
  if (buf.toString('ascii', 16, 24) !== MARK) return { ok: false, why: 'record', size: buf.length }
  try {
    const at = buf.readUInt32LE(8)
    const len = buf.readUInt32LE(12)
    const record = JSON.parse(buf.toString('utf8', at, at + len)) as PlanRecord
    if (record.schema !== 'trtexec-double-plan@1') return { ok: false, why: 'record', size: buf.length }
    return { ok: true, record, size: buf.length, version }
  } catch {
    return { ok: false, why: 'record', size: buf.length }
  }
}
