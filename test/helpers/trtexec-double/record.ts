/**
 * TRTEXEC_DOUBLE_RECORD: one JSON line per run, {pid, argv, start, end} in epoch milliseconds, so a test
 * or a benchmark can tell the double's own time from its caller's. `start` is the process's start
 * (performance.timeOrigin, before node loaded anything), `end` the moment just before the process ends;
 * `exit` or `signal` says how it ended.
 */
import { appendFileSync } from 'node:fs'

let target: { file: string; argv: string[] } | undefined
let written = false

export function startRecord(file: string | undefined, argv: string[]): void {
  target = file ? { file, argv } : undefined
}

export function recordEnd(how: { exit?: number; signal?: string }): void {
  if (!target || written) return
  written = true
  const line = { pid: process.pid, argv: target.argv, start: performance.timeOrigin, end: performance.timeOrigin + performance.now(), ...how }
  appendFileSync(target.file, `${JSON.stringify(line)}\n`)
}
