/**
 * Runs the built CLI (`node bin/run.js ...`, dist/ from `npx tsc -p tsconfig.build.json`) asynchronously, so
 * that a mock Hub living in the test process keeps serving while the child runs.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url))
export const runJs = fileURLToPath(new URL('../../bin/run.js', import.meta.url))

export interface CliResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
  json?: { status: number; result?: Record<string, unknown>; error?: { code: string; message: string; hint?: string } }
}

export function assertBuilt(): void {
  if (!existsSync(new URL('../../dist/commands/fetch.js', import.meta.url))) {
    throw new Error('dist/ is missing: run `npx tsc -p tsconfig.build.json` (npm test does it) before the e2e tests')
  }
}

/** A clean environment: no HF_* or MODELFORGE_* from the developer's shell leaks into the child. */
export function cliEnv(extra: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) if (!/^(HF_|HUGGINGFACE_|MODELFORGE_|TRANSFORMERS_)/.test(k)) env[k] = v
  return { ...env, CI: '1', NO_COLOR: '1', ...extra }
}

export function startCli(args: string[], env: NodeJS.ProcessEnv): { child: ChildProcess; done: Promise<CliResult> } {
  const child = spawn(process.execPath, [runJs, ...args], { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()))
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()))
  const done = new Promise<CliResult>((resolve) => {
    child.on('close', (code, signal) => {
      let json: CliResult['json']
      try {
        json = JSON.parse(stdout)
      } catch {
        json = undefined
      }
      resolve({ code, signal, stdout, stderr, json })
    })
  })
  return { child, done }
}

export function runCli(args: string[], env: NodeJS.ProcessEnv): Promise<CliResult> {
  return startCli(args, env).done
}
