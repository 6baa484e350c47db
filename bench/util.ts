/** Shared helpers for benches: timing, peak RSS of a child process, and a scratch directory. */
import { spawnSync } from 'node:child_process'
import { mkdirSync, rmSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const benchDir = dirname(fileURLToPath(import.meta.url))
export const repoRoot = dirname(benchDir)

export function scratch(name: string): string {
  const dir = join(benchDir, '.work', name)
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(dir, { recursive: true })
  return dir
}

export interface Measured {
  seconds: number
  /** Peak resident set size of the child in MB (from GNU time). */
  peakRssMb: number
  stdout: string
  status: number | null
}

/** Runs a command under /usr/bin/time -v and returns wall time and the child's peak RSS. */
export function measure(cmd: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Measured {
  const started = process.hrtime.bigint()
  const r = spawnSync('/usr/bin/time', ['-f', '__RSS_KB=%M', cmd, ...args], {
    cwd: options.cwd,
    env: options.env ?? process.env,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  })
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  const m = /__RSS_KB=(\d+)/.exec(r.stderr ?? '')
  if (r.status !== 0) process.stderr.write(r.stderr ?? '')
  return { seconds, peakRssMb: m ? Number(m[1]) / 1024 : NaN, stdout: r.stdout ?? '', status: r.status }
}

/**
 * Writes back every dirty page before a timed run, so a run does not pay for the previous step's writes
 * (a freshly made 311 MB checkpoint, or the last run's output, throttles the next writer for seconds).
 */
export function settleDisk(): void {
  spawnSync('sync')
}

/** Median of several runs of fn (seconds). */
export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]!
}

export function report(name: string, value: number, baseline: number, goal: number, unit = 'ratio'): boolean {
  const ratio = value / baseline
  const ok = ratio <= goal
  console.log(`${name}: ${ratio.toFixed(3)} (${unit}; goal <= ${goal}) ${ok ? 'OK' : 'MISSED'}`)
  return ok
}
