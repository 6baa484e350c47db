import { spawnSync } from 'node:child_process'
import { cpSync, existsSync, renameSync, rmSync, statSync, symlinkSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, describe, expect, it } from 'vitest'
import { readAudit } from '../../src/publish/audit.js'
import { ModelStore } from '../../src/publish/store.js'
import { makeTemp, publish, removeTemps, snapshot, writeTree, withLiveLockHolder } from '../helpers/store-helpers.js'

afterAll(removeTemps)

describe('prune and gc', () => {
  it('prune keeps the newest N and every channel target, dry-run changes nothing, prune is audited', async () => {
    const root = makeTemp()
    const store = new ModelStore(root)
    for (const v of ['v1', 'v2', 'v3', 'v4', 'v5']) await publish(store, 'a', v)
    await store.promote('a', 'v1', 'stable')
    await store.promote('a', 'v2')
    const before = snapshot(root)
    const dry = await store.prune('a', { keep: 1, dryRun: true })
    expect(dry).toMatchObject({ dryRun: true, removed: ['v4', 'v3'], kept: ['v5', 'v2', 'v1'], protected: ['v1', 'v2'] })
    expect(snapshot(root)).toEqual(before)
    const r = await store.prune('a', { keep: 1 })
    expect(r.removed).toEqual(['v4', 'v3'])
    expect(await store.versions('a')).toEqual(['v1', 'v2', 'v5'])
    expect(store.current('a')).toBe(join(root, 'a', 'versions', 'v2'))
    expect(readAudit(root, 'a').at(-1)).toMatchObject({ op: 'prune', removed: ['v4', 'v3'] })
    // Any valid channel name is a channel, even one shaped like a moved-aside Python directory.
    await store.promote('a', 'v5', 'current.legacy-1')
    expect((await store.prune('a', { keep: 0 })).removed).toEqual([])
    unlinkSync(join(root, 'a', 'current.legacy-1'))
    expect((await store.prune('a', { keep: 0 })).removed).toEqual(['v5'])
    expect(await store.versions('a')).toEqual(['v1', 'v2'])
    await expect(store.prune('a', { keep: -1 })).rejects.toMatchObject({ exitCode: 2 })
  })

  it('prune judges versions by their manifests: a directory without a valid one is never counted, never removed, and reported', async () => {
    const root = makeTemp()
    const store = new ModelStore(root)
    for (const v of ['v1', 'v2', 'v3']) await publish(store, 'a', v)
    // Made after v3, so the newest by directory time: one without a manifest, one copied from v2 by hand.
    writeTree(join(root, 'a', 'versions', 'v9'), { 'model.onnx': 'who made me?' })
    cpSync(join(root, 'a', 'versions', 'v2'), join(root, 'a', 'versions', 'v8'), { recursive: true })
    const infos = await store.versionInfos('a')
    expect(infos.find((i) => i.version === 'v8')?.manifestError).toBe('manifest names version v2, directory is v8')
    const r = await store.prune('a', { keep: 2 })
    expect(r).toMatchObject({ removed: ['v1'], kept: ['v3', 'v2'], protected: ['v3'] })
    expect(r.unrecognised).toEqual([
      { version: 'v8', problem: 'manifest names version v2, directory is v8' },
      { version: 'v9', problem: expect.stringContaining('has no manifest.json') },
    ])
    expect((await store.prune('a', { keep: 0 })).removed).toEqual(['v2'])
    expect(existsSync(join(root, 'a', 'versions', 'v9'))).toBe(true)
    expect(existsSync(join(root, 'a', 'versions', 'v8'))).toBe(true)
  })

  it('prune with a dangling or foreign channel goes on, but never removes the last intact version', async () => {
    const root = makeTemp()
    const store = new ModelStore(root)
    for (const v of ['v1', 'v2', 'v3']) await publish(store, 'a', v)
    await publish(store, 'b', 'v1')
    rmSync(join(root, 'a', 'versions', 'v3'), { recursive: true })
    const dry = await store.prune('a', { keep: 0, dryRun: true })
    expect(dry).toMatchObject({ removed: ['v1'], kept: ['v2'], protected: [], lastIntact: 'v2' })
    expect(dry.brokenChannels).toEqual([{ channel: 'current', problem: expect.stringContaining('which does not exist') }])
    expect((await store.prune('a', { keep: 0 })).removed).toEqual(['v1'])
    expect(await store.versions('a')).toEqual(['v2'])
    // A link into another agent protects nothing here, least of all this agent's own v1.
    unlinkSync(join(root, 'a', 'current'))
    symlinkSync('../b/versions/v1', join(root, 'a', 'current'))
    await publish(store, 'a', 'v4', undefined, false)
    const r = await store.prune('a', { keep: 0 })
    expect(r).toMatchObject({ removed: ['v2'], kept: ['v4'], lastIntact: 'v4', brokenChannels: [{ channel: 'current', problem: expect.stringContaining('outside') }] })
    // The one kept for safety is verified: a damaged newer version does not take its place.
    await publish(store, 'a', 'v5', undefined, false)
    writeFileSync(join(root, 'a', 'versions', 'v5', 'model.onnx'), 'damaged')
    expect(await store.prune('a', { keep: 0, dryRun: true })).toMatchObject({ removed: ['v5'], kept: ['v4'], lastIntact: 'v4' })
    // With a channel at an intact version the rule asks for nothing more.
    await store.promote('a', 'v4', 'stable')
    expect((await store.prune('a', { keep: 0 })).lastIntact).toBeUndefined()
  })

  it('gc removes temp links and staging dirs in which nothing changed for longer than the limit, 0 removes all', async () => {
    const root = makeTemp()
    const store = new ModelStore(root)
    await publish(store, 'a', 'v1')
    const old = await store.stage('a', 'v3')
    writeTree(old, { 'm.onnx': 'x' })
    symlinkSync('versions/v1', join(root, 'a', '.link-current-123-abcd.tmp'))
    // Ages are judged by ctime, which no tool can set back: real time has to pass.
    await sleep(1200)
    const fresh = await store.stage('a', 'v2')
    writeTree(fresh, { 'm.onnx': 'x' })
    const r = await store.gc({ olderThanMs: 1000 })
    expect(r.removed.map((x) => x.kind).sort()).toEqual(['staging', 'temp-link'])
    expect(existsSync(old)).toBe(false)
    expect(existsSync(fresh)).toBe(true)
    expect((await store.gc({ olderThan: '1h' })).removed).toEqual([])
    const all = await store.gc({ olderThan: 0 })
    expect(all.removed).toEqual([{ path: fresh, kind: 'staging' }])
    expect(snapshot(join(root, 'a'))).toEqual(['dir  755', 'link current -> versions/v1', 'dir versions 755', expect.stringMatching(/^dir versions\/v1 /), expect.stringMatching(/^file versions\/v1\/manifest.json/), expect.stringMatching(/^file versions\/v1\/model.onnx/)])
    expect(readAudit(root, 'a').filter((x) => x.op === 'gc')).toHaveLength(2)
  })

  it('gc judges a staging dir by when it changed (ctime), not by the old mtimes of a tree copied or moved in', async () => {
    const root = makeTemp()
    const store = new ModelStore(root)
    const past = new Date(Date.now() - 48 * 3600 * 1000)
    // An export made two days ago, copied in as `cp -a` does: every mtime old, the staging dir's own too.
    const src = makeTemp()
    writeTree(src, { 'model.onnx': 'x', 'tok/vocab.txt': 'a\n' })
    for (const p of [join(src, 'tok', 'vocab.txt'), join(src, 'tok'), join(src, 'model.onnx'), src]) utimesSync(p, past, past)
    const copied = await store.stage('a', 'v1')
    expect(spawnSync('cp', ['-a', `${src}/.`, copied]).status).toBe(0)
    expect(statSync(copied).mtimeMs).toBeLessThan(Date.now() - 47 * 3600 * 1000)
    // One moved into place whole (`rmdir "$dir" && mv export "$dir"`): mv keeps the mtimes of what it moves.
    const moved = await store.stage('a', 'v2')
    const old = join(root, 'export')
    writeTree(old, { 'model.onnx': 'y' })
    utimesSync(join(old, 'model.onnx'), past, past)
    utimesSync(old, past, past)
    rmSync(moved, { recursive: true })
    renameSync(old, moved)
    expect(statSync(moved).mtimeMs).toBeLessThan(Date.now() - 47 * 3600 * 1000)
    const r = await store.gc()
    expect(r.removed).toEqual([])
    expect(existsSync(copied) && existsSync(moved)).toBe(true)
  })

  it('gc removes what a prune killed mid-delete left, whatever its age; versions never list it', async () => {
    const root = makeTemp()
    const store = new ModelStore(root)
    await publish(store, 'a', 'v1')
    await publish(store, 'a', 'v2')
    // The state a prune killed between its rename and the end of its rm leaves: old files, renamed aside.
    const doomed = join(root, 'a', 'versions', '.prune-v1-0123abcd.tmp')
    renameSync(join(root, 'a', 'versions', 'v1'), doomed)
    const past = new Date(Date.now() - 48 * 3600 * 1000)
    utimesSync(join(doomed, 'model.onnx'), past, past)
    expect(await store.versions('a')).toEqual(['v2'])
    // A staging dir a shell writer is still filling (a fresh file deep inside an old directory) is kept.
    const filling = await store.stage('a', 'v3')
    writeTree(filling, { 'sub/part.bin': 'x' })
    utimesSync(filling, past, past)
    utimesSync(join(filling, 'sub'), past, past)
    const r = await store.gc()
    expect(r.removed).toEqual([{ path: doomed, kind: 'pruned' }])
    expect(existsSync(filling)).toBe(true)
    expect((await store.verify()).every((x) => x.ok)).toBe(true)
  })

  it('gc skips an agent whose lock a live process holds', async () => {
    const root = makeTemp()
    const store = new ModelStore(root)
    await store.stage('a', 'v1')
    await withLiveLockHolder(root, 'a', 'finalize', async (pid) => {
      const r = await store.gc({ olderThanMs: 0 })
      expect(r.removed).toEqual([])
      expect(r.skipped[0]!.reason).toContain(`process ${pid} on host ${hostname()}`)
      expect(existsSync(store.stagingDir('a', 'v1'))).toBe(true)
    })
  })
})
