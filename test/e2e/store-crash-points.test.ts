/**
 * Acceptance 5, exhaustively: the random-instant kills of store-crash.test.ts may miss a window that lasts
 * microseconds (between the rename of `<version>.tmp` and the swap of `current`, or between the swap and
 * the audit line). Here a writer process counts every filesystem call that changes or syncs the store and
 * SIGKILLs itself just before call K, for every K of a finalize, a promote, a prune and a rollback. So each
 * state a crash can leave at a syscall boundary is produced once and checked.
 *
 * The counting wraps node:fs and node:fs/promises in the writer process only (module.syncBuiltinESMExports
 * makes the ESM named imports of the built store see the wrappers); the store code is the real dist/ build.
 */
import { cpSync, existsSync, readdirSync, readlinkSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readAudit } from '../../src/publish/audit.js'
import { resolveChannel } from '../../src/publish/current.js'
import { lockPath } from '../../src/publish/lock.js'
import { readManifest } from '../../src/publish/manifest.js'
import { ModelStore } from '../../src/publish/store.js'
import { makeTemp, removeTemps, writeTree } from '../helpers/store-helpers.js'
import { writeLegacyAgent } from '../helpers/store-legacy.js'
import { runCrashWriter, writeCrashWriter } from '../helpers/crash-points.js'

afterAll(removeTemps)

const WRITER_BODY = `
const store = new ModelStore(root, { strict: true })
await store.finalize('a', 'v2', { metadata: { step: 'finalize' } })
if (process.argv[4] === 'finalize-only') {
  process.stdout.write(String(calls))
  process.exit(0)
}
await store.promote('a', 'v1', 'staging')
await store.prune('a', { keep: 1 })
await store.rollback('a')
process.stdout.write(String(calls))
`

let base: string
let script: string

/** v0 and v1 finalized, current -> v1, v2 staged with a nested tree. */
beforeAll(async () => {
  const dir = makeTemp('mf-points-')
  base = join(dir, 'base')
  script = join(dir, 'writer.mjs')
  writeCrashWriter(script, WRITER_BODY)
  const store = new ModelStore(base, { strict: true })
  for (const v of ['v0', 'v1']) {
    writeTree(await store.stage('a', v), { 'model.onnx': `weights ${v}`, 'tok/vocab.txt': 'a\nb\n' })
    await store.finalize('a', v)
  }
  writeTree(await store.stage('a', 'v2'), { 'model.onnx': 'weights v2', 'tok/vocab.txt': 'a\nb\nc\n', 'tok/deep/x.bin': 'x' })
})

const runWriter = (root: string, killAt: number, mode = 'all') => runCrashWriter(script, root, killAt, mode)

/** Runs the writer killed at every K from 1 to total, two at a time (the machine has two cores). */
async function killAtEveryCall(total: number, rootFor: (k: number) => string, mode: string): Promise<void> {
  for (let k = 1; k <= total; k += 2) {
    const ks = k + 1 <= total ? [k, k + 1] : [k]
    const runs = await Promise.all(ks.map((x) => runWriter(rootFor(x), x, mode)))
    runs.forEach((r, i) => expect(r.killed, `K=${ks[i]}`).toBe(true))
  }
}

/** What must hold after a crash at any instant, before and after `store gc --older-than 0`. */
async function checkAfterCrash(root: string, killAt: number): Promise<string> {
  const store = new ModelStore(root, { strict: true })
  const versionsDir = join(root, 'a', 'versions')
  // Every version directory holds a valid manifest and verifies; none is half-removed.
  for (const name of readdirSync(versionsDir).filter((n) => !n.endsWith('.tmp'))) {
    expect((await readManifest(join(versionsDir, name))).manifest.version).toBe(name)
    const [report] = await store.verify('a', name)
    expect(report!.problems, `K=${killAt} ${name}`).toEqual([])
    // No instant shows a writable version under its name: finalize makes it read-only before the rename,
    // prune and delete make it writable only after renaming it aside.
    expect(report!.warnings, `K=${killAt} ${name}`).toBeUndefined()
  }
  // current always resolves, through the relative link, to a version that verifies; v1 and v2 are never
  // lost once a channel named them.
  const current = resolveChannel(root, 'a', 'current', { strict: true })!
  expect(current.layout).toBe('relative-link')
  expect(['v1', 'v2'], `K=${killAt}`).toContain(current.version)
  const staging = resolveChannel(root, 'a', 'staging', { strict: false })
  if (staging) expect(staging.version).toBe('v1')
  // The audit line comes after the swap it records, never before: once the log records finalize v2 (and
  // nothing later has moved current: the rollback's own swap may precede its line), current is v2.
  const ops = readAudit(root, 'a')
  if (ops.some((r) => r.op === 'rollback')) expect(current.version, `K=${killAt}`).toBe('v1')
  else if (ops.some((r) => r.op === 'finalize' && r.version === 'v2') && !ops.some((r) => r.op === 'prune')) expect(current.version, `K=${killAt}`).toBe('v2')
  // A finalize killed after it wrote its manifest can be run again (on a copy: the checks below go on
  // from the crashed state): its own manifest.json is recognised and rewritten.
  if (existsSync(join(versionsDir, 'v2.tmp'))) {
    const again = cpBase(`${root.split('/').pop()}-again`, root)
    const r = await new ModelStore(again, { strict: true }).finalize('a', 'v2')
    expect(r.files, `K=${killAt}: finalize again`).toBe(3)
    expect((await new ModelStore(again).verify('a', 'v2'))[0]!.problems, `K=${killAt}: finalize again`).toEqual([])
    expect((await new ModelStore(again).verify('a', 'v2'))[0]!.warnings, `K=${killAt}: finalize again`).toBeUndefined()
  }
  // gc restores a clean tree: no staging or prune leftovers, no temporary links, no lock.
  await store.gc({ olderThanMs: 0 })
  expect(readdirSync(join(root, 'a')).filter((n) => n.endsWith('.tmp'))).toEqual([])
  expect(readdirSync(versionsDir).filter((n) => n.endsWith('.tmp'))).toEqual([])
  expect(readdirSync(join(root, '.modelforge', 'locks'))).toEqual([])
  expect(existsSync(lockPath(root, 'a'))).toBe(false)
  expect((await store.verify()).filter((r) => !r.ok), `K=${killAt}`).toEqual([])
  // The store stays writable (the dead writer's lock was taken over), and rollback from a crash after the
  // swap goes back to the version current named before.
  writeTree(await store.stage('a', 'v9'), { 'model.onnx': 'after the crash' })
  const after = await store.finalize('a', 'v9')
  expect(after.previous, `K=${killAt}`).toBe(current.version)
  expect((await store.rollback('a')).version, `K=${killAt}: rollback after the crash`).toBe(current.version)
  return current.version!
}

describe('a crash at every filesystem call', () => {
  it('of finalize, promote, prune and rollback leaves a store that verifies and gc cleans', async () => {
    const total = (await runWriter(cpBase('count'), Number.MAX_SAFE_INTEGER, 'all')).calls
    expect(total).toBeGreaterThan(30)
    const roots = Array.from({ length: total + 1 }, (_, k) => (k ? cpBase(`k${k}`) : ''))
    await killAtEveryCall(total, (k) => roots[k]!, 'all')
    const seen = new Set<string>()
    for (let k = 1; k <= total; k++) seen.add(await checkAfterCrash(roots[k]!, k))
    // The kills landed both before and after the link swap.
    expect([...seen].sort()).toEqual(['v1', 'v2'])
  }, 120_000)
})

describe('a crash at every filesystem call of the first publish into a Python-made agent', () => {
  it('never leaves readers without current: the real current directory is moved aside, then linked', async () => {
    const legacyBase = join(base, '..', 'legacy-base')
    writeLegacyAgent(legacyBase, 'a', [
      { version: 'v0', files: { 'model.onnx': 'zero' } },
      { version: 'v1', files: { 'model.onnx': 'one', 'tok/vocab.txt': 'a\n' } },
    ], 'directory')
    writeTree(await new ModelStore(legacyBase).stage('a', 'v2'), { 'model.onnx': 'two' })
    const total = (await runWriter(cpBase('legacy-count', legacyBase), Number.MAX_SAFE_INTEGER, 'finalize-only')).calls
    const roots = Array.from({ length: total + 1 }, (_, k) => (k ? cpBase(`legacy-k${k}`, legacyBase) : ''))
    await killAtEveryCall(total, (k) => roots[k]!, 'finalize-only')
    const layouts = new Set<string>()
    for (let k = 1; k <= total; k++) {
      const root = roots[k]!
      const current = resolveChannel(root, 'a', 'current', { strict: true })!
      layouts.add(`${current.layout}:${current.version}`)
      expect(existsSync(join(current.path, 'manifest.json')), `K=${k}`).toBe(true)
      expect(current.layout === 'directory' ? 'v1' : 'v2', `K=${k}`).toBe(current.version)
      const store = new ModelStore(root, { strict: true })
      await store.gc({ olderThanMs: 0 })
      expect((await store.verify()).filter((r) => !r.ok), `K=${k}`).toEqual([])
      writeTree(await store.stage('a', 'v9'), { 'model.onnx': 'nine' })
      expect((await store.finalize('a', 'v9')).previous, `K=${k}`).toBe(current.version)
      expect(readlinkSync(join(root, 'a', 'current'))).toBe('versions/v9')
    }
    expect([...layouts].sort()).toEqual(['directory:v1', 'relative-link:v2'])
  }, 60_000)
})

function cpBase(name: string, from = base): string {
  const root = join(from, '..', name)
  cpSync(from, root, { recursive: true, verbatimSymlinks: true })
  return root
}
