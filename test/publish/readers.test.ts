import { chmodSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { ModelStore } from '../../src/publish/store.js'
import { makeTemp, publish, removeTemps } from '../helpers/store-helpers.js'

afterAll(removeTemps)

/** Every reader of the facade, each called so that a rejection or a throw both end up as a rejection. */
function readers(store: ModelStore, agent: string): [string, () => Promise<unknown>][] {
  return [
    ['agents', () => store.agents()],
    ['list', () => store.list()],
    ['list(agent)', () => store.list(agent)],
    ['versions', () => store.versions(agent)],
    ['versionInfos', () => store.versionInfos(agent)],
    ['channels', async () => store.channels(agent)],
    ['fingerprint', async () => store.fingerprint(agent)],
    ['current', async () => store.current(agent)],
    ['resolve', async () => store.resolve(agent)],
    ['manifest', () => store.manifest(agent)],
    ['verify', () => store.verify()],
    ['verify(agent)', () => store.verify(agent)],
  ]
}

describe('STRICT_MODEL_STORE and the readers', () => {
  it('strict: every reader fails with exit 6 on a missing store', async () => {
    const store = new ModelStore(join(makeTemp(), 'nope'), { strict: true })
    for (const [name, call] of readers(store, 'a')) {
      await expect(call(), name).rejects.toMatchObject({ exitCode: 6, code: 'STORE_NOT_FOUND' })
    }
  })

  it('strict: every reader of one agent fails with exit 6 on a missing agent', async () => {
    const root = makeTemp()
    await publish(new ModelStore(root), 'a', 'v1')
    const store = new ModelStore(root, { strict: true })
    for (const [name, call] of readers(store, 'ghost').filter(([n]) => !['agents', 'list', 'verify'].includes(n))) {
      await expect(call(), name).rejects.toMatchObject({ exitCode: 6, code: 'AGENT_NOT_FOUND' })
    }
    expect(await store.agents()).toEqual(['a'])
  })

  it('non-strict: a missing store or agent reads as empty where a reader can say "none"', async () => {
    const store = new ModelStore(join(makeTemp(), 'nope'), { strict: false })
    expect(await store.agents()).toEqual([])
    expect(await store.list()).toEqual([])
    expect(await store.versions('a')).toEqual([])
    expect(await store.versionInfos('a')).toEqual([])
    expect(store.channels('a')).toEqual({})
    expect(store.current('a')).toBeNull()
  })
})

describe('fingerprint: what an indexer can skip', () => {
  it('stays while nothing changes, and moves with every version, manifest and channel change', async () => {
    const root = makeTemp()
    const store = new ModelStore(root)
    await publish(store, 'a', 'v1')
    await publish(store, 'b', 'v1')
    const first = store.fingerprint('a')
    expect(store.fingerprint('a')).toBe(first)
    expect(store.fingerprint('b')).not.toBe(first) // b's manifest names b
    await store.list() // reading changes nothing
    expect(store.fingerprint('a')).toBe(first)

    await publish(store, 'a', 'v2', { 'model.onnx': 'v2' }, false)
    const staged = store.fingerprint('a')
    expect(staged).not.toBe(first)
    await store.promote('a', 'v2', 'staging')
    const promoted = store.fingerprint('a')
    expect(promoted).not.toBe(staged)

    // A manifest altered in place, then one that cannot be read: each is a change, and neither throws.
    const manifest = join(store.versionDir('a', 'v1'), 'manifest.json')
    chmodSync(store.versionDir('a', 'v1'), 0o755)
    chmodSync(manifest, 0o644)
    writeFileSync(manifest, readFileSync(manifest, 'utf8').replace('"note": "v1"', '"note": "v0"'))
    const edited = store.fingerprint('a')
    expect(edited).not.toBe(promoted)
    rmSync(manifest)
    expect(store.fingerprint('a')).not.toBe(edited)
    expect(store.fingerprint('b')).toBe(store.fingerprint('b'))
  })
})
