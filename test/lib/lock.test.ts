import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs'
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest'
import { acquireLock as acquireBlobLock } from '../../src/hub/lock.js'
import { ConflictError } from '../../src/lib/errors.js'
import { holderAlive, procStartTicks, removeStaleLockTemps, tryLock } from '../../src/lib/lock.js'
import { acquireLock, lockPath } from '../../src/publish/lock.js'
import type { WriterAgent } from '../../src/publish/store-context.js'
import { ModelStore } from '../../src/publish/store.js'
import { tempDir } from '../helpers/hub-fixtures.js'
import { makeTemp, removeTemps, snapshot, writeTree } from '../helpers/store-helpers.js'

afterAll(removeTemps)

function deadPid(): number {
  // A process that has exited and been reaped: its pid no longer exists.
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' })
  return Number(r.stdout)
}

function plantLock(root: string, agent: string, pid: number, host = hostname()): string {
  mkdirSync(join(root, '.modelforge', 'locks'), { recursive: true })
  const raw = JSON.stringify({ pid, host, started_at: '2026-11-23T10:00:00.000Z', agent, op: 'finalize', version: 'v9' }) + '\n'
  writeFileSync(lockPath(root, agent), raw)
  return raw
}

/** Runs `script` (ESM, through tsx) in `n` processes at once; each prints [start, end] lines of the intervals it held the lock. */
async function racing(n: number, script: string, arg: string): Promise<number[][]> {
  const runs = await Promise.all(Array.from({ length: n }, () => new Promise<number[][]>((resolve, reject) => {
    const c = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, arg], { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    c.stdout.on('data', (d) => (out += d))
    c.on('close', (code) => (code === 0 ? resolve(out.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l))) : reject(new Error(`exit ${code}`))))
  })))
  return runs.flat().sort((a, b) => a[0]! - b[0]!)
}

describe('store writer lock (publish/lock.ts)', () => {
  it('a second writer gets ConflictError (exit 5) naming pid and host', () => {
    const root = makeTemp()
    const held = acquireLock(root, 'a' as WriterAgent, { op: 'finalize', version: 'v1' })
    expect(JSON.parse(readFileSync(held.path, 'utf8'))).toMatchObject({ pid: process.pid, host: hostname(), op: 'finalize', version: 'v1' })
    // Our own pid is alive, so a second acquisition conflicts.
    expect(() => acquireLock(root, 'a' as WriterAgent, { op: 'promote' })).toThrow(expect.objectContaining({
      exitCode: 5, code: 'LOCKED', message: expect.stringContaining(`process ${process.pid} on host ${hostname()}`),
    }))
    acquireLock(root, 'b' as WriterAgent, { op: 'promote' }).release()
    held.release()
    expect(existsSync(held.path)).toBe(false)
    acquireLock(root, 'a' as WriterAgent, { op: 'promote' }).release()
  })

  it('finalize by a second writer is refused while another process holds the lock, store unchanged', async () => {
    const root = makeTemp()
    const store = new ModelStore(root)
    writeTree(await store.stage('a', 'v1'), { m: 'x' })
    const holder = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)'])
    try {
      plantLock(root, 'a', holder.pid!)
      const before = snapshot(root)
      await expect(store.finalize('a', 'v1')).rejects.toMatchObject({ exitCode: 5, message: expect.stringContaining(`process ${holder.pid} on host ${hostname()}`) })
      expect(snapshot(root)).toEqual(before)
    } finally {
      holder.kill('SIGKILL')
    }
  })

  it('takes over the lock of a dead holder on this host', async () => {
    const root = makeTemp()
    const store = new ModelStore(root)
    writeTree(await store.stage('a', 'v1'), { m: 'x' })
    plantLock(root, 'a', deadPid())
    await store.finalize('a', 'v1')
    expect(store.resolve('a')?.version).toBe('v1')
    expect(existsSync(lockPath(root, 'a'))).toBe(false)
  })

  it('a reused pid is not the holder: a live process that started at another time, even this one', async () => {
    const root = makeTemp()
    const store = new ModelStore(root)
    writeTree(await store.stage('a', 'v1'), { m: 'x' })
    const mine = procStartTicks(process.pid)
    expect(mine).toMatch(/^\d+$/)
    // A lock left by an earlier incarnation of this very pid (a restarted container): taken over.
    const raw = JSON.stringify({ pid: process.pid, host: hostname(), started_at: '2026-11-23T10:00:00.000Z', agent: 'a', op: 'finalize', proc_start: String(Number(mine) - 1) })
    mkdirSync(join(root, '.modelforge', 'locks'), { recursive: true })
    writeFileSync(lockPath(root, 'a'), raw)
    await store.finalize('a', 'v1')
    expect(store.resolve('a')?.version).toBe('v1')
    // The same pid with its own start time is the live holder: refused.
    const held = acquireLock(root, 'a' as WriterAgent, { op: 'promote' })
    expect(JSON.parse(readFileSync(held.path, 'utf8')).proc_start).toBe(mine)
    expect(() => acquireLock(root, 'a' as WriterAgent, { op: 'promote' })).toThrow(expect.objectContaining({ exitCode: 5 }))
    held.release()
  })

  it('treats a holder on another host as alive', () => {
    const root = makeTemp()
    plantLock(root, 'a', deadPid(), 'some-other-host')
    expect(() => acquireLock(root, 'a' as WriterAgent, { op: 'gc' })).toThrow(/on host some-other-host/)
  })

  it('many processes racing for a dead holder\'s lock: never two holders at once', async () => {
    const root = makeTemp()
    plantLock(root, 'a', deadPid())
    const script = `
      import { acquireLock } from ${JSON.stringify(join(process.cwd(), 'src/publish/lock.ts'))}
      for (let i = 0; i < 40; i++) {
        try {
          const l = acquireLock(process.argv[1], 'a', { op: 'test' })
          const start = performance.timeOrigin + performance.now()
          await new Promise((r) => setTimeout(r, 5))
          const end = performance.timeOrigin + performance.now()
          l.release()
          console.log(JSON.stringify([start, end]))
        } catch (e) { if (e.code !== 'LOCKED') throw e }
        await new Promise((r) => setTimeout(r, 1))
      }`
    const intervals = await racing(3, script, root)
    expect(intervals.length).toBeGreaterThan(3)
    for (let i = 1; i < intervals.length; i++) expect(intervals[i]![0]!).toBeGreaterThanOrEqual(intervals[i - 1]![1]!)
    expect(existsSync(lockPath(root, 'a'))).toBe(false)
  })
})

describe('per-blob lock (hub/lock.ts)', () => {
  let dir: string
  beforeEach(async () => {
    dir = await tempDir('mf-lock-')
  })
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('excludes a second holder until released', async () => {
    const path = join(dir, 'locks', 'b.lock')
    const first = await acquireBlobLock(path)
    let second = false
    const waiting = acquireBlobLock(path, { pollMs: 10 }).then((l) => {
      second = true
      return l
    })
    await new Promise((r) => setTimeout(r, 100))
    expect(second).toBe(false)
    await first.release()
    await (await waiting).release()
    expect(second).toBe(true)
    expect(await readdir(join(dir, 'locks'))).toEqual([])
  })

  it('breaks the lock of a dead process (a fetch killed with SIGKILL)', async () => {
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' })
    const path = join(dir, 'b.lock')
    await writeFile(path, JSON.stringify({ pid: Number(dead.stdout), host: hostname(), token: 'old' }))
    const lock = await acquireBlobLock(path, { timeoutMs: 2000 })
    await lock.release()
  })

  it('gives up with ConflictError (exit 5) when a live process holds it too long', async () => {
    await mkdir(dir, { recursive: true })
    const path = join(dir, 'b.lock')
    await writeFile(path, JSON.stringify({ pid: process.ppid, host: hostname(), token: 'live' }))
    const err = await acquireBlobLock(path, { timeoutMs: 150, pollMs: 20 }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ConflictError)
    expect(err).toMatchObject({ exitCode: 5, code: 'LOCK_HELD', hint: expect.stringContaining('Another fetch') })
  })

  it("takes over at once the empty lock file huggingface_hub's filelock leaves behind after a download", async () => {
    const path = join(dir, 'b.lock')
    await writeFile(path, '')
    const started = Date.now()
    const lock = await acquireBlobLock(path, { timeoutMs: 2000, pollMs: 20 })
    expect(Date.now() - started).toBeLessThan(1000)
    await lock.release()
    expect(await readdir(dir)).toEqual([])
  })
})

describe('one lock mechanism for the store and the hub (lib/lock.ts)', () => {
  const mine = (): string => procStartTicks(process.pid)!

  it('hub: a lock left by an earlier incarnation of a reused pid is taken at once, not after the whole timeout', async () => {
    const dir = makeTemp()
    const path = join(dir, 'b.lock')
    // A restarted container: the crashed fetch and this one have the same pid, but not the same start time.
    writeFileSync(path, JSON.stringify({ pid: process.pid, host: hostname(), proc_start: String(Number(mine()) - 1), token: 'old' }))
    const started = Date.now()
    const lock = await acquireBlobLock(path, { timeoutMs: 60_000, pollMs: 20 })
    expect(Date.now() - started).toBeLessThan(1000)
    await lock.release()
    expect(readdirSync(dir)).toEqual([])
  })

  it('hub: its records carry the start time and a token, as the store\'s do; the same pid with its own start time is live', async () => {
    const dir = makeTemp()
    const path = join(dir, 'b.lock')
    const lock = await acquireBlobLock(path)
    const record = JSON.parse(readFileSync(path, 'utf8'))
    expect(record).toEqual({ pid: process.pid, host: hostname(), proc_start: mine(), token: expect.stringMatching(/^[0-9a-f]{16}$/) })
    expect(holderAlive(record)).toBe(true)
    await expect(acquireBlobLock(path, { timeoutMs: 50, pollMs: 10 })).rejects.toMatchObject({ code: 'LOCK_HELD', message: expect.stringContaining(`held by pid ${process.pid} on ${hostname()}`) })
    await lock.release()
    const store = acquireLock(makeTemp(), 'a' as WriterAgent, { op: 'promote' })
    expect(store.info).toMatchObject({ pid: process.pid, proc_start: mine(), token: expect.stringMatching(/^[0-9a-f]{16}$/) })
    store.release()
  })

  it('store and hub: release() leaves alone a lock that is no longer this holder\'s (taken over meanwhile)', async () => {
    const root = makeTemp()
    const storeLock = acquireLock(root, 'a' as WriterAgent, { op: 'finalize', version: 'v1' })
    const other = JSON.stringify({ pid: process.ppid, host: hostname(), token: 'other' })
    writeFileSync(storeLock.path, other)
    storeLock.release()
    expect(readFileSync(storeLock.path, 'utf8')).toBe(other)

    const path = join(makeTemp(), 'b.lock')
    const blobLock = await acquireBlobLock(path)
    writeFileSync(path, other)
    await blobLock.release()
    expect(readFileSync(path, 'utf8')).toBe(other)
  })

  it('store and hub: a takeover mutex left by a process killed inside a takeover does not block either', async () => {
    const root = makeTemp()
    const dead = deadPid()
    plantLock(root, 'a', dead)
    writeFileSync(`${lockPath(root, 'a')}.takeover`, JSON.stringify({ pid: dead, host: hostname() }))
    acquireLock(root, 'a' as WriterAgent, { op: 'gc' }).release()
    expect(readdirSync(join(root, '.modelforge', 'locks'))).toEqual([])

    const dir = makeTemp()
    const path = join(dir, 'b.lock')
    writeFileSync(path, JSON.stringify({ pid: dead, host: hostname(), token: 'old' }))
    writeFileSync(`${path}.takeover`, JSON.stringify({ pid: dead, host: hostname() }))
    await (await acquireBlobLock(path, { timeoutMs: 2000, pollMs: 10 })).release()
    expect(readdirSync(dir)).toEqual([])
  })

  it('an empty lock file: free at once for the hub (filelock\'s leftover), a lock being written for the store until it is old', () => {
    const root = makeTemp()
    mkdirSync(join(root, '.modelforge', 'locks'), { recursive: true })
    writeFileSync(lockPath(root, 'a'), '')
    expect(() => acquireLock(root, 'a' as WriterAgent, { op: 'gc' })).toThrow(expect.objectContaining({ code: 'LOCKED', message: 'Agent a is locked by a process that is writing the lock file' }))
    expect(tryLock(lockPath(root, 'a'), { emptyIsFree: true }).lock).toBeDefined()
  })

  it('store and hub: an unreadable lock file is taken over once older than 30 s', async () => {
    const root = makeTemp()
    const old = new Date(Date.now() - 60_000)
    mkdirSync(join(root, '.modelforge', 'locks'), { recursive: true })
    writeFileSync(lockPath(root, 'a'), 'not json')
    utimesSync(lockPath(root, 'a'), old, old)
    acquireLock(root, 'a' as WriterAgent, { op: 'gc' }).release()

    const path = join(makeTemp(), 'b.lock')
    writeFileSync(path, 'not json')
    await expect(acquireBlobLock(path, { timeoutMs: 50, pollMs: 10 })).rejects.toMatchObject({ code: 'LOCK_HELD' })
    utimesSync(path, old, old)
    await (await acquireBlobLock(path, { timeoutMs: 50, pollMs: 10 })).release()
  })

  it('removeStaleLockTemps (store gc) removes the temporary records of dead processes and keeps live ones', async () => {
    const root = makeTemp()
    const dir = join(root, '.modelforge', 'locks')
    mkdirSync(dir, { recursive: true })
    const dead = deadPid()
    const leftovers = [`a.lock-${dead}-0123abcd.tmp`, `a.lock.takeover-${dead}-89abcdef.tmp`]
    const live = `b.lock-${process.pid}-0123abcd.tmp`
    for (const n of [...leftovers, live]) writeFileSync(join(dir, n), '{}')
    expect(removeStaleLockTemps(dir).sort()).toEqual(leftovers.map((n) => join(dir, n)).sort())
    expect(readdirSync(dir)).toEqual([live])
    writeFileSync(join(dir, leftovers[0]!), '{}')
    const r = await new ModelStore(root).gc()
    expect(r.removed).toEqual([{ path: join(dir, leftovers[0]!), kind: 'lock-temp' }])
  })

  it('hub: many processes waiting for a dead holder\'s lock never hold it at once (the takeover mutex, not rename-aside)', async () => {
    const dir = makeTemp()
    const path = join(dir, 'b.lock')
    writeFileSync(path, JSON.stringify({ pid: deadPid(), host: hostname(), token: 'old' }))
    const script = `
      import { acquireLock } from ${JSON.stringify(join(process.cwd(), 'src/hub/lock.ts'))}
      for (let i = 0; i < 25; i++) {
        const l = await acquireLock(process.argv[1], { pollMs: 1, timeoutMs: 60000 })
        const start = performance.timeOrigin + performance.now()
        await new Promise((r) => setTimeout(r, 2))
        const end = performance.timeOrigin + performance.now()
        await l.release()
        console.log(JSON.stringify([start, end]))
      }`
    const intervals = await racing(3, script, path)
    expect(intervals).toHaveLength(75)
    for (let i = 1; i < intervals.length; i++) expect(intervals[i]![0]!).toBeGreaterThanOrEqual(intervals[i - 1]![1]!)
    expect(readdirSync(dir)).toEqual([])
  })
})
