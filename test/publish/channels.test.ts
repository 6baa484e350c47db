import { cpSync, mkdirSync, readlinkSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { readAudit } from '../../src/publish/audit.js'
import { ModelStore } from '../../src/publish/store.js'
import { makeTemp, publish, removeTemps, snapshot } from '../helpers/store-helpers.js'

afterAll(removeTemps)

describe('promote and rollback', () => {
  it('promote moves channels, rollback walks back through the audit log, both audited', async () => {
    const root = makeTemp()
    const store = new ModelStore(root)
    for (const v of ['v1', 'v2', 'v3']) await publish(store, 'a', v)
    expect(await store.promote('a', 'v2', 'staging')).toEqual({ agent: 'a', channel: 'staging', version: 'v2', previous: null })
    expect(readlinkSync(join(root, 'a', 'staging'))).toBe('versions/v2')
    expect(store.channels('a')).toEqual({ current: 'v3', staging: 'v2' })
    expect(await store.rollback('a')).toMatchObject({ version: 'v2', previous: 'v3' })
    expect(await store.rollback('a')).toMatchObject({ version: 'v1', previous: 'v2' })
    await expect(store.rollback('a')).rejects.toMatchObject({ exitCode: 6, code: 'NO_PREVIOUS' })
    await store.promote('a', 'v3')
    expect(await store.rollback('a')).toMatchObject({ version: 'v1', previous: 'v3' })
    const ops = readAudit(root, 'a').map((r) => `${r.op}:${r.channel}:${r.previous}->${r.version}`)
    expect(ops).toEqual([
      'finalize:current:null->v1', 'finalize:current:v1->v2', 'finalize:current:v2->v3', 'promote:staging:null->v2',
      'rollback:current:v3->v2', 'rollback:current:v2->v1', 'promote:current:v1->v3', 'rollback:current:v3->v1',
    ])
    await expect(store.promote('a', 'v9')).rejects.toMatchObject({ exitCode: 6, code: 'VERSION_NOT_FOUND' })
  })

  it('rollback refuses when the previous version was pruned', async () => {
    const store = new ModelStore(makeTemp())
    for (const v of ['v1', 'v2']) await publish(store, 'a', v)
    await store.prune('a', { keep: 0 })
    await expect(store.rollback('a')).rejects.toMatchObject({ exitCode: 6, code: 'PREVIOUS_GONE' })
  })

  it('a channel other than current must be a link: a plain directory or file there is an integrity error', async () => {
    const root = makeTemp()
    const store = new ModelStore(root)
    await publish(store, 'a', 'v1')
    mkdirSync(join(root, 'a', 'notes'))
    writeFileSync(join(root, 'a', 'stable'), 'x')
    expect(() => store.resolve('a', 'notes')).toThrow(expect.objectContaining({ exitCode: 4, code: 'CHANNEL_INVALID', message: `${join(root, 'a', 'notes')} is not a symlink` }))
    expect(() => store.resolve('a', 'stable')).toThrow(expect.objectContaining({ code: 'CHANNEL_INVALID' }))
    expect(store.channels('a')).toEqual({ current: 'v1' })
    // promote never renames over or moves them
    const before = snapshot(root)
    await expect(store.promote('a', 'v1', 'notes')).rejects.toMatchObject({ exitCode: 4, code: 'CHANNEL_INVALID' })
    await expect(store.promote('a', 'v1', 'stable')).rejects.toMatchObject({ exitCode: 4, code: 'CHANNEL_INVALID' })
    expect(snapshot(root)).toEqual(before)
  })

  it('promote refuses a version that fails verification (exit 4, naming each problem); the channel is unchanged', async () => {
    const root = makeTemp()
    const store = new ModelStore(root)
    await publish(store, 'a', 'v1')
    const v2 = await publish(store, 'a', 'v2', { 'model.onnx': 'two', 'labels.json': '[]' }, false)
    writeFileSync(join(v2.path, 'model.onnx'), 'tw0')
    unlinkSync(join(v2.path, 'labels.json'))
    const before = snapshot(root)
    for (const channel of ['current', 'staging']) {
      await expect(store.promote('a', 'v2', channel)).rejects.toMatchObject({
        exitCode: 4,
        code: 'VERIFY_FAILED',
        message: expect.stringMatching(new RegExp(`${channel} of a was not moved to v2, which fails verification: missing: labels\\.json; modified: model\\.onnx`)),
        details: { reports: [{ version: 'v2', ok: false }] },
      })
    }
    expect(snapshot(root)).toEqual(before)
    // A version copied in from another agent verifies file by file, but this agent never published it.
    const b = await publish(store, 'b', 'v3')
    cpSync(b.path, join(root, 'a', 'versions', 'v3'), { recursive: true })
    await expect(store.promote('a', 'v3')).rejects.toMatchObject({ exitCode: 4, code: 'VERIFY_FAILED', message: expect.stringContaining('manifest names agent b, directory is under a') })
    rmSync(join(root, 'a', 'versions', 'v3'), { recursive: true })
    expect(store.current('a')).toBe(join(root, 'a', 'versions', 'v1'))
  })

  it('rollback goes to the newest intact earlier version, skipping gone and damaged ones and saying so', async () => {
    const root = makeTemp()
    const store = new ModelStore(root)
    for (const v of ['v1', 'v2', 'v3', 'v4']) await publish(store, 'a', v)
    rmSync(join(root, 'a', 'versions', 'v3'), { recursive: true })
    writeFileSync(join(root, 'a', 'versions', 'v2', 'model.onnx'), 'changed')
    const r = await store.rollback('a')
    expect(r).toEqual({
      agent: 'a', channel: 'current', version: 'v1', previous: 'v4',
      skipped: [{ version: 'v3', reason: 'gone' }, { version: 'v2', reason: 'fails verification: modified: model.onnx' }],
    })
    expect(readlinkSync(join(root, 'a', 'current'))).toBe('versions/v1')
    expect(readAudit(root, 'a').at(-1)).toMatchObject({ op: 'rollback', version: 'v1', previous: 'v4', skipped: ['v3', 'v2'] })
    // The skipped versions are behind it now: nothing earlier is left.
    await expect(store.rollback('a')).rejects.toMatchObject({ exitCode: 6, code: 'NO_PREVIOUS' })
  })

  it('rollback from a dangling or foreign current points it at an intact version the log names', async () => {
    const root = makeTemp()
    const store = new ModelStore(root)
    for (const v of ['v1', 'v2']) await publish(store, 'a', v)
    await publish(store, 'b', 'v1')
    // current dangles: the version it names was removed by hand.
    rmSync(join(root, 'a', 'versions', 'v2'), { recursive: true })
    expect(await store.rollback('a')).toEqual({ agent: 'a', channel: 'current', version: 'v1', previous: null, skipped: [{ version: 'v2', reason: 'gone' }] })
    // current leads into another agent: the last version the log names, if intact, is where it goes back.
    await publish(store, 'a', 'v3')
    unlinkSync(join(root, 'a', 'current'))
    symlinkSync('../b/versions/v1', join(root, 'a', 'current'))
    expect(await store.rollback('a')).toEqual({ agent: 'a', channel: 'current', version: 'v3', previous: null })
    expect(store.current('a')).toBe(join(root, 'a', 'versions', 'v3'))
  })

  it('rollback with no intact earlier version refuses (exit 4 when one is damaged, 6 when all are gone), current unchanged', async () => {
    const root = makeTemp()
    const store = new ModelStore(root)
    for (const v of ['v1', 'v2', 'v3']) await publish(store, 'a', v)
    writeFileSync(join(root, 'a', 'versions', 'v2', 'model.onnx'), 'changed')
    rmSync(join(root, 'a', 'versions', 'v1'), { recursive: true })
    const before = snapshot(root)
    await expect(store.rollback('a')).rejects.toMatchObject({
      exitCode: 4, code: 'VERIFY_FAILED', message: expect.stringMatching(/No earlier current version of agent a is intact: v2 fails verification: modified: model\.onnx; v1 is gone/),
    })
    expect(snapshot(root)).toEqual(before)
    rmSync(join(root, 'a', 'versions', 'v2'), { recursive: true })
    await expect(store.rollback('a')).rejects.toMatchObject({ exitCode: 6, code: 'PREVIOUS_GONE', message: expect.stringContaining('v2 is gone; v1 is gone') })
  })
})
