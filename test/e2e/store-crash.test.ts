/**
 * Acceptance 5: a writer killed with SIGKILL at random instants never leaves a broken store, and readers
 * racing a writer never see a missing or partial `current`. The writers are separate Node processes running
 * the built library (dist/), so kills land in every phase of stage, hash, manifest, rename, link swap,
 * audit, promote and prune.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { resolveChannel, resolveCurrent } from '../../src/publish/current.js'
import { lockPath } from '../../src/publish/lock.js'
import { readManifest } from '../../src/publish/manifest.js'
import { ModelStore } from '../../src/publish/store.js'
import { cli, makeTemp, removeTemps, repoRoot, writeTree } from '../helpers/store-helpers.js'

afterAll(removeTemps)

const WRITER = `
import { writeFileSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { ModelStore } from ${JSON.stringify(join(repoRoot, 'dist', 'publish', 'store.js'))}
const [root, tag, prune] = process.argv.slice(2)
const store = new ModelStore(root, { strict: false })
process.stdout.write('ready\\n')
for (let i = 0; ; i++) {
  const version = 'v' + tag + '-' + String(i).padStart(4, '0')
  const dir = await store.stage('a', version)
  mkdirSync(join(dir, 'tok'))
  for (let f = 0; f < 4; f++) writeFileSync(join(dir, f % 2 ? 'tok/part' + f : 'w' + f + '.bin'), Buffer.alloc(64 * 1024 * (f + 1), (i * 7 + f) & 0xff))
  const r = await store.finalize('a', version, { metadata: { i } })
  process.stdout.write('published ' + r.version + '\\n')
  if (prune === 'prune') {
    if (i % 3 === 2) await store.promote('a', version, 'staging')
    if (i % 4 === 3) await store.prune('a', { keep: 2 })
  }
}
`

function startWriter(root: string, tag: string, prune: boolean): { child: ChildProcess; ready: Promise<void>; published: () => number } {
  const script = join(root, '..', 'writer.mjs')
  if (!existsSync(script)) writeFileSync(script, WRITER)
  const child = spawn(process.execPath, [script, root, tag, prune ? 'prune' : ''], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  let onReady: () => void
  const ready = new Promise<void>((resolve) => (onReady = resolve))
  child.stdout!.on('data', (d) => {
    out += d
    if (out.includes('ready\n')) onReady()
  })
  child.stderr!.on('data', (d) => (err += d))
  child.on('exit', (code, signal) => {
    if (signal !== 'SIGKILL') throw new Error(`writer exited by itself (${code}): ${err}`)
  })
  return { child, ready, published: () => out.split('\n').filter((l) => l.startsWith('published')).length }
}

function kill(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    child.once('exit', () => resolve())
    child.kill('SIGKILL')
  })
}

/** The invariants that must hold after any crash. */
async function checkStore(root: string): Promise<void> {
  const current = resolveCurrent(root, 'a', { strict: false })
  const store = new ModelStore(root, { strict: false })
  const versionsDir = join(root, 'a', 'versions')
  for (const name of existsSync(versionsDir) ? readdirSync(versionsDir) : []) {
    if (name.endsWith('.tmp')) continue
    // No version directory without a valid manifest; and every version verifies.
    const parsed = await readManifest(join(versionsDir, name))
    expect(parsed.manifest.version).toBe(name)
    const [report] = await store.verify('a', name)
    expect(report!.problems).toEqual([])
  }
  if (current) {
    expect(current.layout).toBe('relative-link')
    expect(statSync(join(current.path, 'manifest.json')).isFile()).toBe(true)
  }
  // The writer's other channel obeys the same rules as current (it was checked through current before).
  const staging = resolveChannel(root, 'a', 'staging', { strict: false })
  if (staging) {
    expect(staging.layout).toBe('relative-link')
    expect((await store.verify('a', staging.version!))[0]!.ok).toBe(true)
  }
}

function cleanTree(root: string): void {
  const agentDir = join(root, 'a')
  expect(readdirSync(agentDir).filter((n) => n.endsWith('.tmp'))).toEqual([])
  expect(readdirSync(join(agentDir, 'versions')).filter((n) => n.endsWith('.tmp'))).toEqual([])
  expect(existsSync(lockPath(root, 'a'))).toBe(false)
}

describe('crash safety', () => {
  it('SIGKILL at random instants: current always verifies, no version without manifest, gc cleans up', async () => {
    const root = join(makeTemp('mf-crash-'), 'store')
    const deadline = Date.now() + 6_000
    let kills = 0
    let published = 0
    // What the kills left behind: proof that they landed inside operations, not only between them.
    const leftovers = { staging: 0, lock: 0 }
    while (Date.now() < deadline || kills < 12) {
      const w = startWriter(root, String(kills).padStart(3, '0'), true)
      await w.ready
      await new Promise((r) => setTimeout(r, Math.random() * 120))
      await kill(w.child)
      kills++
      published += w.published()
      const versionsDir = join(root, 'a', 'versions')
      if (existsSync(versionsDir) && readdirSync(versionsDir).some((n) => n.endsWith('.tmp'))) leftovers.staging++
      if (existsSync(lockPath(root, 'a'))) leftovers.lock++
      await checkStore(root)
      if (kills % 3 === 0) {
        await new ModelStore(root).gc({ olderThanMs: 0 })
        cleanTree(root)
      }
      if (kills >= 40) break
    }
    const gc = cli(['store', 'gc', '--older-than', '0', '--store', root])
    expect(gc.code, gc.stderr).toBe(0)
    cleanTree(root)
    await checkStore(root)
    expect(cli(['store', 'verify', '--store', root]).code).toBe(0)
    expect(kills).toBeGreaterThanOrEqual(12)
    // The kills must not all land before the first publish, or the test would prove little.
    expect(published).toBeGreaterThan(kills / 4)
    expect(leftovers.staging).toBeGreaterThan(0)
    expect(leftovers.lock).toBeGreaterThan(0)
    process.stderr.write(`crash test: ${kills} kills, ${published} versions published, leftovers ${JSON.stringify(leftovers)}\n`)
    const audit = readFileSync(join(root, '.modelforge', 'audit.jsonl'), 'utf8')
    expect(audit.split('\n').filter((l) => l.includes('"op":"finalize"')).length).toBeGreaterThan(0)
  }, 90_000)

  it('readers racing a writer never see a missing or partial current', async () => {
    const root = join(makeTemp('mf-race-'), 'store')
    const store = new ModelStore(root)
    writeTree(await store.stage('a', 'v0'), { 'w0.bin': 'first' })
    await store.finalize('a', 'v0')
    const w = startWriter(root, 'r', false)
    await w.ready
    let reads = 0
    const seen = new Set<string>()
    const until = Date.now() + 2500
    try {
      while (Date.now() < until) {
        const r = resolveCurrent(root, 'a', { strict: true })
        expect(r).not.toBeNull()
        const manifest = JSON.parse(readFileSync(join(r!.path, 'manifest.json'), 'utf8'))
        expect(manifest.version).toBe(r!.version)
        for (const f of manifest.files) expect(statSync(join(r!.path, f.path)).size).toBe(f.size)
        seen.add(r!.version!)
        reads++
        if (reads % 20 === 0) await new Promise((res) => setImmediate(res))
      }
    } finally {
      await kill(w.child)
    }
    expect(reads).toBeGreaterThan(100)
    expect(seen.size).toBeGreaterThanOrEqual(3)
  }, 30_000)
})
