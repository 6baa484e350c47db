import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { acquireLock, lockPath, procStartTicks } from '../../src/publish/lock.js'
import { ModelStore } from '../../src/publish/store.js'
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

describe('writer lock', () => {
  it('a second writer gets ConflictError (exit 5) naming pid and host', () => {
    const root = makeTemp()
    const held = acquireLock(root, 'a', { op: 'finalize', version: 'v1' })
    expect(JSON.parse(readFileSync(held.path, 'utf8'))).toMatchObject({ pid: process.pid, host: hostname(), op: 'finalize', version: 'v1' })
    // Our own pid is alive, so a second acquisition conflicts.
    expect(() => acquireLock(root, 'a', { op: 'promote' })).toThrow(expect.objectContaining({
      exitCode: 5, code: 'LOCKED', message: expect.stringContaining(`process ${process.pid} on host ${hostname()}`),
    }))
    acquireLock(root, 'b', { op: 'promote' }).release()
    held.release()
    expect(existsSync(held.path)).toBe(false)
    acquireLock(root, 'a', { op: 'promote' }).release()
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
    const held = acquireLock(root, 'a', { op: 'promote' })
    expect(JSON.parse(readFileSync(held.path, 'utf8')).proc_start).toBe(mine)
    expect(() => acquireLock(root, 'a', { op: 'promote' })).toThrow(expect.objectContaining({ exitCode: 5 }))
    held.release()
  })

  it('treats a holder on another host as alive', () => {
    const root = makeTemp()
    plantLock(root, 'a', deadPid(), 'some-other-host')
    expect(() => acquireLock(root, 'a', { op: 'gc' })).toThrow(/on host some-other-host/)
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
    const runs = await Promise.all(Array.from({ length: 3 }, () => new Promise<number[][]>((resolve, reject) => {
      const c = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, root], { stdio: ['ignore', 'pipe', 'inherit'] })
      let out = ''
      c.stdout.on('data', (d) => (out += d))
      c.on('close', (code) => (code === 0 ? resolve(out.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l))) : reject(new Error(`exit ${code}`))))
    })))
    const intervals = runs.flat().sort((a, b) => a[0]! - b[0]!)
    expect(intervals.length).toBeGreaterThan(3)
    for (let i = 1; i < intervals.length; i++) expect(intervals[i]![0]!).toBeGreaterThanOrEqual(intervals[i - 1]![1]!)
    expect(existsSync(lockPath(root, 'a'))).toBe(false)
  })
})
