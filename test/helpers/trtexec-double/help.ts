/**
 * `trtexec --help` for the version played: the 8.6.0 help for 8.x, the 10.16.1 help for 10.x (both real
 * output, fixtures/trtexec-help), and for 11.x the 10.16.1 help without the weak-typing and INT8-calibration
 * options 11.0 removed, with the options 11.x added. Read from disk only when asked for, so `--help` stays
 * the fastest thing the double does.
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { Version } from './version.js'

const FIXTURES = fileURLToPath(new URL('../../../fixtures/trtexec-help/', import.meta.url))

/** The help body as trtexec prints it after the RUNNING line. */
export function helpText(v: Version): string {
  if (v.major < 10) return cleanCookbook(readFileSync(`${FIXTURES}trtexec-8.6.0-help.txt`, 'utf8'))
  const h1016 = dropBanner(readFileSync(`${FIXTURES}trtexec-10.16.1-help.txt`, 'utf8'))
  return v.major >= 11 ? help11(h1016) : h1016
}

function dropBanner(text: string): string {
  return text.split('\n').filter((l) => !l.startsWith('&&&& ')).join('\n')
}

/**
 * The 8.6.0 file is the cookbook's annotated copy: a title line of theirs, `■■` before the options they
 * mark (trtexec prints two spaces there), and the RUNNING/PASSED lines of the run that made it.
 */
function cleanCookbook(text: string): string {
  const lines = dropBanner(text).split('\n')
  const start = lines.findIndex((l) => l.startsWith('=== '))
  return lines.slice(start).map((l) => l.replace(/^■■/, '  ')).join('\n')
}

// Removed in 11.0: the whole entry goes (its continuation lines with it).
const REMOVED_11 = ['--fp16', '--bf16', '--int8', '--fp8', '--int4', '--best', '--precisionConstraints', '--layerPrecisions',
  '--layerOutputTypes', '--calib', '--calibProfile', '--restricted', '--weightless']
// Removed in 11.0 too, but the note that follows them is about --minShapes/--optShapes/--maxShapes: only their own line goes.
const REMOVED_11_LINE = ['--minShapesCalib', '--optShapesCalib', '--maxShapesCalib']

const pad = (flag: string, width: number) => `  ${flag.padEnd(width)}`

const BUILD_11 = [
  `${pad('--tuneBuildRoutes', 33)}Try the build routes TensorRT offers and keep the one that meets the accuracy requirement`,
  `${pad('--setBuildRoute=route', 33)}Build with the given build route (see --helpBuildRoute)`,
  `${pad('--helpBuildRoute', 33)}Print the build routes this TensorRT offers`,
  `${pad('--tuningCacheFile=<file>', 33)}Save/load the results of build-route tuning`,
  `${pad('--continue', 33)}Continue an interrupted build-route tuning from --tuningCacheFile`,
]
const INFERENCE_11 = [
  `${pad('--includeDataTransfers', 26)}Include DMA transfers to and from the device in the measurements (default = disabled)`,
  `${pad('--noSpinWait', 26)}Synchronize on GPU events by blocking instead of spinning (default = spin-wait)`,
  `${pad('--noCudaGraph', 26)}Do not capture the engine execution in a CUDA graph (default = use CUDA graphs)`,
  `${pad('--loadRefOutputs=spec', 26)}Load reference outputs to check the engine's outputs against (name:file[,name:file])`,
  `${pad('--refPair=N', 26)}Compare with the N-th pair of loaded inputs and reference outputs (default = 0)`,
  `${pad('--accuracyAlgorithm=alg', 26)}Accuracy metric: alg ::= "l0"|"l1"|"l2"|"lInf"|"cos" (default = lInf)`,
  `${pad('--atol=N', 26)}Absolute tolerance of the accuracy check (default = 1e-5)`,
  `${pad('--rtol=N', 26)}Relative tolerance of the accuracy check (default = 1e-5)`,
  `${pad('--accuracyThreshold=N', 26)}Fraction of elements that must meet the tolerances (default = 1)`,
]

function help11(text: string): string {
  const out: string[] = []
  let skipping = false
  for (const line of text.split('\n')) {
    const m = /^ {2}(--[A-Za-z0-9]+)/.exec(line)
    if (m) {
      skipping = REMOVED_11.includes(m[1]!)
      if (REMOVED_11_LINE.includes(m[1]!)) continue
    } else if (!/^ {3,}/.test(line)) {
      skipping = false
    }
    if (skipping) continue
    if (line.startsWith('  --stronglyTyped ')) {
      out.push(`${pad('--stronglyTyped', 33)}[Deprecated] Networks are always strongly typed; this flag is a no-op.`)
      skipping = true
      continue
    }
    if (line.startsWith('  --noDataTransfers ')) {
      out.push(`${pad('--noDataTransfers', 26)}[Deprecated] Data transfers are disabled by default; see --includeDataTransfers.`)
      skipping = true
      continue
    }
    if (line === '=== Inference Options ===') out.splice(out.length - 1, 0, ...BUILD_11)
    if (line === '=== Reporting Options ===') out.splice(out.length - 1, 0, ...INFERENCE_11)
    out.push(line)
  }
  return out.join('\n')
}
