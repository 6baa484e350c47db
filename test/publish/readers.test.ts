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
