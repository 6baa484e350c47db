/**
 * For tests: where the trtexec double is, and a way to run it and keep stdout, stderr and both interleaved
 * in the order they arrived (as lib/exec.ts's `all` does for the real tool).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'

export const TRTEXEC_DOUBLE = fileURLToPath(new URL('./trtexec', import.meta.url))

export interface DoubleResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
  all: string
}

/** The double's own variables are dropped from the inherited environment; `env` sets them. */
export function doubleEnv(env: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const base: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('TRTEXEC_DOUBLE_')) base[k] = v
  return { ...base, ...env }
}

export function startDouble(args: string[], options: { env?: Record<string, string | undefined>; cwd?: string } = {}): { child: ChildProcess; done: Promise<DoubleResult> } {
  const child = spawn(TRTEXEC_DOUBLE, args, { cwd: options.cwd, env: doubleEnv(options.env), stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  let all = ''
  child.stdout!.on('data', (d: Buffer) => { stdout += d; all += d })
  child.stderr!.on('data', (d: Buffer) => { stderr += d; all += d })
  const done = new Promise<DoubleResult>((resolve, reject) => {
    child.on('error', reject)
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr, all }))
  })
  return { child, done }
}

export function runDouble(args: string[], options: { env?: Record<string, string | undefined>; cwd?: string } = {}): Promise<DoubleResult> {
  return startDouble(args, options).done
}
