/**
 * DEBUG=modelforge* logging through the `debug` package (the one oclif already uses, so DEBUG=* shows
 * both). One namespace per kind of side effect: modelforge:exec (every spawn), modelforge:http (every
 * request), modelforge:store (every store write). Off unless DEBUG names it; never on stdout.
 */
import createDebug from 'debug'

export type DebugArea = 'exec' | 'http' | 'store' | 'hub' | 'registry' | 'oci'

const loggers = new Map<DebugArea, createDebug.Debugger>()

export function debugLog(area: DebugArea): createDebug.Debugger {
  let log = loggers.get(area)
  if (!log) {
    log = createDebug(`modelforge:${area}`)
    loggers.set(area, log)
  }
  return log
}
