/** Helpers for the store tests: temp dirs, trees, a full snapshot of a store, and running the CLI. */
import { spawnSync, type SpawnSyncOptions } from 'node:child_process'
import { createHash } from 'node:crypto'
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { ModelStore } from '../../src/publish/store.js'

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')
export const runJs = join(repoRoot, 'bin', 'run.js')

const made: string[] = []

/** A fresh directory under the OS temp dir; removeTemps() deletes all of them. */
export function makeTemp(prefix = 'mf-store-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  made.push(dir)
  return dir
}

export function removeTemps(): void {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true })
}

/** Writes files: { 'a/b.txt': 'text' | Buffer }. */
export function writeTree(dir: string, files: Record<string, string | Uint8Array>): void {
  for (const [rel, content] of Object.entries(files)) {
    const p = join(dir, rel)
    mkdirSync(dirname(p), { recursive: true })
    writeFileSync(p, content)
  }
}

/** Stages `files` as agent/version and finalizes it (published as current unless publishIt is false). */
export async function publish(store: ModelStore, agent: string, version: string, files: Record<string, string> = { 'model.onnx': version }, publishIt = true) {
  const dir = await store.stage(agent, version)
  writeTree(dir, files)
  return store.finalize(agent, version, { publish: publishIt, metadata: { note: version } })
}

/**
 * Everything under `root` as sorted lines: type, relative path, mode, link target or content hash. Two equal
 * snapshots mean nothing was created, removed, renamed or changed.
 */
export function snapshot(root: string): string[] {
  const out: string[] = []
  const visit = (abs: string, rel: string): void => {
    let st
    try {
      st = lstatSync(abs)
    } catch {
      out.push(`absent ${rel}`)
      return
    }
    const mode = (st.mode & 0o7777).toString(8)
    if (st.isSymbolicLink()) out.push(`link ${rel} -> ${readlinkSync(abs)}`)
    else if (st.isDirectory()) {
      out.push(`dir ${rel} ${mode}`)
      for (const n of readdirSync(abs).sort()) visit(join(abs, n), rel ? `${rel}/${n}` : n)
    } else if (st.isFile()) {
      const sha = createHash('sha256').update(readFileSync(abs)).digest('hex')
      out.push(`file ${rel} ${mode} ${st.size} ${sha}`)
    } else out.push(`special ${rel} ${mode}`)
  }
  visit(root, '')
  return out
}

export interface CliResult {
  code: number | null
  stdout: string
  stderr: string
}

/** Runs `node bin/run.js ...args` (needs dist/: `npx tsc -p tsconfig.build.json`). */
export function cli(args: string[], options: { env?: Record<string, string | undefined>; cwd?: string; uid?: number; gid?: number } = {}): CliResult {
  const env = { ...process.env, NO_COLOR: '1', CI: '1', STRICT_MODEL_STORE: undefined, MODEL_STORE_ROOT: undefined, ...options.env }
  const spawnOptions: SpawnSyncOptions = { cwd: options.cwd ?? repoRoot, env, encoding: 'utf8', timeout: 120_000 }
  if (options.uid !== undefined) spawnOptions.uid = options.uid
  if (options.gid !== undefined) spawnOptions.gid = options.gid
  const r = spawnSync(process.execPath, [runJs, ...args], spawnOptions)
  return { code: r.status, stdout: String(r.stdout), stderr: String(r.stderr) }
}

/** Parses the --json envelope (stdout must hold exactly one JSON object). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- test assertions index freely into results
export function envelope(r: CliResult): { status: number; result?: any; error?: { code: string; message: string; hint?: string; details?: any } } {
  return JSON.parse(r.stdout)
}

/**
 * Runs fn while a live process (a sleeping child) holds the writer lock of `agent`, as a finalize in
 * another process would; the holder is killed afterwards whatever fn does.
 */
export async function withLiveLockHolder<T>(root: string, agent: string, op: string, fn: (holderPid: number) => Promise<T>): Promise<T> {
  const { spawn } = await import('node:child_process')
  const { hostname } = await import('node:os')
  const { lockPath } = await import('../../src/publish/lock.js')
  const holder = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)'])
  try {
    mkdirSync(join(root, '.modelforge', 'locks'), { recursive: true })
    writeFileSync(lockPath(root, agent), JSON.stringify({ pid: holder.pid, host: hostname(), started_at: new Date().toISOString(), agent, op }))
    return await fn(holder.pid!)
  } finally {
    holder.kill('SIGKILL')
  }
}
