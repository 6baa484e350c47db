/**
 * Killing a store writer just before its K-th filesystem call, for every K: the harness of the crash-point
 * tests. The script counts calls of node:fs and node:fs/promises (wrapped before the store is imported) and
 * sends itself SIGKILL at call K; run with K beyond the end it prints how many calls there were.
 */
import { spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { repoRoot } from './store-helpers.js'

const PRELUDE = `
import { createRequire, syncBuiltinESMExports } from 'node:module'
const require = createRequire(import.meta.url)
const fs = require('node:fs')
const fsp = require('node:fs/promises')
const [root, killAt] = [process.argv[2], Number(process.argv[3])]
let calls = 0
const wrap = (mod, name) => {
  const orig = mod[name]
  mod[name] = function (...args) {
    if (++calls === killAt) process.kill(process.pid, 'SIGKILL')
    return orig.apply(this, args)
  }
}
for (const n of ['rename', 'symlink', 'mkdir', 'rm', 'open', 'writeFile', 'unlink', 'link', 'chmod', 'chown']) wrap(fsp, n)
for (const n of ['openSync', 'writeSync', 'fsyncSync', 'closeSync', 'linkSync', 'unlinkSync', 'renameSync', 'mkdirSync', 'rmSync']) wrap(fs, n)
syncBuiltinESMExports()
const { ModelStore } = await import(${JSON.stringify(join(repoRoot, 'dist', 'publish', 'store.js'))})
`

/**
 * Writes the writer script to `path`: the counting prelude, then `body`, which has `root`, `ModelStore`,
 * `calls` and process.argv[4] (a mode) at hand and must end by printing `calls`.
 */
export function writeCrashWriter(path: string, body: string): string {
  writeFileSync(path, `${PRELUDE}\n${body}\n`)
  return path
}

/** Runs the writer against `root`, killed before call `killAt`; resolves whether it was killed, or its call count. */
export function runCrashWriter(script: string, root: string, killAt: number, mode = 'all'): Promise<{ killed: boolean; calls: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, root, String(killAt), mode], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (err += d))
    child.on('error', reject)
    child.on('close', (code, signal) => {
      if (signal === 'SIGKILL') resolve({ killed: true, calls: 0 })
      else if (code !== 0) reject(new Error(`writer failed (${code}): ${err}`))
      else resolve({ killed: false, calls: Number(out) })
    })
  })
}
