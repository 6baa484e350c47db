import { spawnSync } from 'node:child_process'
import { readdir, rm, writeFile, mkdir } from 'node:fs/promises'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { acquireLock } from '../../src/hub/lock.js'
import { ConflictError } from '../../src/lib/errors.js'
import { tempDir } from '../helpers/hub-fixtures.js'

let dir: string
beforeEach(async () => {
  dir = await tempDir('mf-lock-')
})
afterEach(async () => {
  await rm(dir, { recursive: true, force: true })
})

describe('per-blob lock', () => {
  it('excludes a second holder until released', async () => {
    const path = join(dir, 'locks', 'b.lock')
    const first = await acquireLock(path)
    let second = false
    const waiting = acquireLock(path, { pollMs: 10 }).then((l) => {
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
    const lock = await acquireLock(path, { timeoutMs: 2000 })
    await lock.release()
  })

  it('gives up with ConflictError (exit 5) when a live process holds it too long', async () => {
    await mkdir(dir, { recursive: true })
    const path = join(dir, 'b.lock')
    await writeFile(path, JSON.stringify({ pid: process.ppid, host: hostname(), token: 'live' }))
    const err = await acquireLock(path, { timeoutMs: 150, pollMs: 20 }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ConflictError)
    expect(err).toMatchObject({ exitCode: 5, code: 'LOCK_HELD', hint: expect.stringContaining('Another fetch') })
  })

  it("takes over at once the empty lock file huggingface_hub's filelock leaves behind after a download", async () => {
    const path = join(dir, 'b.lock')
    await writeFile(path, '')
    const started = Date.now()
    const lock = await acquireLock(path, { timeoutMs: 2000, pollMs: 20 })
    expect(Date.now() - started).toBeLessThan(1000)
    await lock.release()
    expect(await readdir(dir)).toEqual([])
  })
})
