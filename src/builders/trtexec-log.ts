/**
 * What a trtexec log says: the TensorRT version and the command line (from the `&&&&` banner), the device
 * block, the precision of the options dump, parse and build times, the engine size, warnings and errors,
 * the performance summary, PASSED or FAILED, and, for a run that did not pass, why (trtexec-failure.ts).
 * It reads every format from TensorRT 8.0 to 10.16 (fixtures/trtexec-logs) and the older summary of 7.x,
 * and never throws: a log cut short or not a log at all gives what it holds.
 */
import { constants } from 'node:os'
import { classifyFailure } from './trtexec-failure.js'
import { scanTrtexecLog, type LogLine } from './trtexec-lines.js'
import { parsePerfSummary } from './trtexec-perf.js'
import { parseVersionText, versionFromEncoded } from './trtexec-version.js'
import type { DeviceInfo, ParsedLog, TrtVersion } from './types.js'

/** How trtexec ended, as lib/exec.ts run() reports it (exitCode -1 when killed). */
export interface TrtexecExit {
  exitCode?: number | null
  signal?: string | null
}

const NUM = String.raw`[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?`

/** The first capture of `re` in the [I] messages, as a number. */
function firstNumber(info: readonly string[], re: RegExp): number | undefined {
  for (const text of info) {
    const m = re.exec(text)
    if (m) {
      const n = Number(m[1])
      if (Number.isFinite(n)) return n
    }
  }
  return undefined
}

function firstText(info: readonly string[], re: RegExp): string | undefined {
  for (const text of info) {
    const m = re.exec(text)
    if (m) return m[1].trim()
  }
  return undefined
}

/** `=== Device Information ===` (8.x: name, compute capability, memory; 10.x also the UUID). */
function deviceOf(info: readonly string[]): DeviceInfo | undefined {
  const name = firstText(info, /^Selected Device: (.+)$/)
  if (!name) return undefined
  const device: DeviceInfo = { name, source: 'trtexec' }
  const cc = firstText(info, /^Compute Capability: (\d+\.\d+)$/)
  if (cc) device.computeCapability = cc
  const memory = firstNumber(info, /^Device Global Memory: (\d+) MiB$/)
  if (memory !== undefined) device.memoryMiB = memory
  const uuid = firstText(info, /^Selected Device UUID: (\S+)$/)
  if (uuid) device.uuid = uuid
  return device
}

/** `[I] TensorRT version: 10.9.0` (8.0 printed the banner number there: `8003`), for a log without banner. */
function versionLine(info: readonly string[]): TrtVersion | undefined {
  const text = firstText(info, /^TensorRT version: (\S+)$/)
  if (!text) return undefined
  return /^\d+$/.test(text) ? versionFromEncoded(Number(text)) : parseVersionText(text)
}

/**
 * The engine's size. `Created engine with size` (a build) and `Loaded engine with size` (--loadEngine) are
 * trtexec's, in MiB with decimals; a log with neither (most --loadEngine runs, 8.x builds) still has
 * TensorRT's own `[TRT] Loaded engine size: 12 MiB`, rounded to whole MiB (`MB` in 8.0).
 */
function engineSizeOf(info: readonly string[]): { created?: number; size?: number } {
  const created = firstNumber(info, new RegExp(`^Created engine with size: (${NUM}) MiB`))
  const size = created ?? firstNumber(info, new RegExp(`^Loaded engine with size: (${NUM}) MiB`)) ?? firstNumber(info, /^\[TRT\] Loaded engine size: (\d+) Mi?B$/)
  return { created, size }
}

/** The signal that ended trtexec: given, or an exit code of 128+N (a shell in between reports it so). */
function signalOf(exit: TrtexecExit): string | undefined {
  if (exit.signal) return exit.signal
  const code = exit.exitCode
  if (typeof code !== 'number' || code <= 128 || code >= 128 + 65) return undefined
  return Object.entries(constants.signals).find(([, n]) => n === code - 128)?.[0]
}

function textsOf(lines: readonly LogLine[], ...levels: LogLine['level'][]): string[] {
  return lines.filter((l) => levels.includes(l.level)).map((l) => l.text)
}

/**
 * Reads a trtexec log (stdout and stderr interleaved, as lib/exec.ts run() gives them in `all`). With `exit`,
 * a run that did not pass gets `failure`: a signal, a non-zero exit, FAILED, or (when the exit is not given
 * or not 0) a log without its closing PASSED/FAILED line.
 */
export function parseTrtexecLog(log: string, exit: TrtexecExit = {}): ParsedLog {
  const { banners, lines } = scanTrtexecLog(typeof log === 'string' ? log : '')
  const info = textsOf(lines, 'I')
  const parsed: ParsedLog = { warnings: textsOf(lines, 'W'), errors: textsOf(lines, 'E', 'F'), status: 'unknown' }

  const first = banners[0]
  const version = first?.version ?? versionLine(info)
  if (version) parsed.version = version
  if (first) parsed.commandLine = first.commandLine
  const closing = banners.filter((b) => b.kind === 'PASSED' || b.kind === 'FAILED').at(-1)
  if (closing) parsed.status = closing.kind === 'PASSED' ? 'passed' : 'failed'

  const device = deviceOf(info)
  if (device) parsed.device = device
  const precision = firstText(info, /^Precision: (.+)$/)
  if (precision) parsed.precision = precision
  const parseTime = firstNumber(info, new RegExp(`^Finished parsing network model\\. Parse time: (${NUM})`))
  if (parseTime !== undefined) parsed.parseTimeS = parseTime
  const buildTime = firstNumber(info, new RegExp(`^Engine built in (${NUM}) sec`))
  if (buildTime !== undefined) parsed.buildTimeS = buildTime
  const engine = engineSizeOf(info)
  if (engine.size !== undefined) parsed.engineSizeMiB = engine.size
  const perf = parsePerfSummary(info)
  if (perf) parsed.perf = perf

  const signal = signalOf(exit)
  const exitCode = typeof exit.exitCode === 'number' ? exit.exitCode : undefined
  const passed = !signal && (parsed.status === 'passed' ? exitCode === undefined || exitCode === 0 : parsed.status === 'unknown' && exitCode === 0)
  if (!passed) {
    parsed.failure = classifyFailure({
      lines,
      status: parsed.status,
      ...(exitCode === undefined ? {} : { exitCode }),
      ...(signal ? { signal } : {}),
      ...(version ? { version } : {}),
      ...(engine.created === undefined ? {} : { createdEngineMiB: engine.created }),
    })
  }
  return parsed
}
