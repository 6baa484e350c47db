/**
 * TensorRT's version as trtexec prints it on its first and last lines:
 *   &&&& RUNNING TensorRT.trtexec [TensorRT v101601] [b11] # trtexec --onnx=model.onnx
 * The number packs the version: TensorRT 8.x as major*1000 + minor*100 + patch (8601 is 8.6.1), 10.x and
 * later as major*10000 + minor*100 + patch (101601 is 10.16.1). The [bNN] build tag appears from 10.4.
 */
import type { TrtVersion } from './types.js'

const BANNER = /^&&&& (RUNNING|PASSED|FAILED|WAIVED) TensorRT\.trtexec \[TensorRT v(\d+)\](?: \[b(\d+)\])? #\s?(.*)$/

export interface Banner {
  kind: 'RUNNING' | 'PASSED' | 'FAILED' | 'WAIVED'
  version: TrtVersion
  /** The argv trtexec echoes after `#`. */
  commandLine: string
}

/** The banner on one line of output, or undefined when the line is not one. */
export function parseBanner(line: string): Banner | undefined {
  const m = BANNER.exec(line.trimEnd())
  if (!m) return undefined
  const version = versionFromEncoded(Number(m[2]), m[3] === undefined ? undefined : Number(m[3]))
  return { kind: m[1] as Banner['kind'], version, commandLine: m[4] }
}

/** The version a banner number stands for; 5 digits or more is the 10.x encoding. */
export function versionFromEncoded(encoded: number, build?: number): TrtVersion {
  const [major, rest] = encoded >= 10000 ? [Math.floor(encoded / 10000), encoded % 10000] : [Math.floor(encoded / 1000), encoded % 1000]
  const minor = Math.floor(rest / 100)
  const patch = rest % 100
  return { major, minor, patch, ...(build === undefined ? {} : { build }), encoded, text: `${major}.${minor}.${patch}` }
}

/** "10.16.1" (or "10.16") as a version; the encoding is the one that version's trtexec prints. */
export function parseVersionText(text: string): TrtVersion | undefined {
  const m = /^(\d+)\.(\d+)(?:\.(\d+))?$/.exec(text.trim())
  if (!m) return undefined
  const [major, minor, patch] = [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)]
  const encoded = major >= 10 ? major * 10000 + minor * 100 + patch : major * 1000 + minor * 100 + patch
  return { major, minor, patch, encoded, text: `${major}.${minor}.${patch}` }
}

/** Whether `v` is `major.minor.patch` or later. */
export function atLeast(v: TrtVersion, major: number, minor = 0, patch = 0): boolean {
  if (v.major !== major) return v.major > major
  if (v.minor !== minor) return v.minor > minor
  return v.patch >= patch
}
