import { mkdirSync, symlinkSync, unlinkSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { resolveChannel } from '../../src/publish/current.js'
import { ModelStore } from '../../src/publish/store.js'
import { makeTemp, publish, removeTemps } from '../helpers/store-helpers.js'
import { writeLegacyAgent } from '../helpers/store-legacy.js'

afterAll(removeTemps)

/** A store with agents a (v1, v2) and b (v1), and a second store holding agent a (v1). */
async function stores(): Promise<{ root: string; other: string; store: ModelStore }> {
  const root = makeTemp()
  const other = makeTemp()
  const store = new ModelStore(root)
  await publish(store, 'a', 'v1')
  await publish(store, 'a', 'v2')
  await publish(store, 'b', 'v1')
  await publish(new ModelStore(other), 'a', 'v1')
  return { root, other, store }
}

function relink(root: string, agent: string, channel: string, target: string): void {
  const p = join(root, agent, channel)
  try {
    unlinkSync(p)
  } catch {
    // not there yet
  }
  symlinkSync(target, p)
}

describe('a channel link that resolves outside its agent\'s versions/', () => {
  it.each([
    ['a relative link into another store', (root: string, other: string) => `../../${other.split('/').pop()}/a/versions/v1`],
    ['a relative link into another agent', () => '../b/versions/v1'],
    ['an absolute link elsewhere', () => '/etc'],
    ['an absolute link into another agent of another store', (_root: string, other: string) => join(other, 'b', 'versions', 'v1')],
    ['a link into a version', () => 'versions/v1/model.onnx'],
    ['a link to a staging directory', () => 'versions/v3.tmp'],
    ['a link to the agent directory itself', () => '.'],
  ])('%s is an integrity failure (exit 4, CHANNEL_OUTSIDE) for readers and verify', async (_what, target) => {
    const { root, other, store } = await stores()
    await publish(new ModelStore(other), 'b', 'v1')
    mkdirSync(join(root, 'a', 'versions', 'v3.tmp'))
    const t = target(root, other)
    relink(root, 'a', 'current', t)
    expect(() => resolveChannel(root, 'a', 'current', { strict: false })).toThrow(expect.objectContaining({ exitCode: 4, code: 'CHANNEL_OUTSIDE' }))
    expect(() => store.current('a')).toThrow(expect.objectContaining({ code: 'CHANNEL_OUTSIDE', message: expect.stringContaining(t) }))
    expect(store.channels('a')).toEqual({ current: null })
    const reports = (await store.verify('a')).filter((r) => !r.ok)
    expect(reports).toMatchObject([{ agent: 'a', version: null, path: join(root, 'a', 'current'), problems: [{ kind: 'channel', message: expect.stringContaining('outside') }] }])
  })

  it('a version entry that is itself a link elsewhere is outside too', async () => {
    const { root, store } = await stores()
    symlinkSync(join(root, 'b', 'versions', 'v1'), join(root, 'a', 'versions', 'v9'))
    relink(root, 'a', 'staging', 'versions/v9')
    expect(() => store.resolve('a', 'staging')).toThrow(expect.objectContaining({ code: 'CHANNEL_OUTSIDE' }))
  })

  it('a link to a missing version of its own agent stays CHANNEL_DANGLING', async () => {
    const { root, store } = await stores()
    relink(root, 'a', 'current', 'versions/v7')
    expect(() => store.current('a')).toThrow(expect.objectContaining({ code: 'CHANNEL_DANGLING' }))
    // An absolute link shaped like this agent's own version (a moved Python store) whose version is gone
    // here is dangling, even when the original still exists: another store's files are never read.
    const other = makeTemp()
    await publish(new ModelStore(other), 'a', 'v5')
    relink(root, 'a', 'current', join(other, 'a', 'versions', 'v5'))
    expect(() => store.current('a')).toThrow(expect.objectContaining({ code: 'CHANNEL_DANGLING' }))
  })

  it('an absolute link naming this agent\'s versions/<v> under another root (a moved or copied store) reads its own version', async () => {
    const { root, other, store } = await stores()
    relink(root, 'a', 'current', join(other, 'a', 'versions', 'v1'))
    expect(store.resolve('a')).toMatchObject({ version: 'v1', path: join(root, 'a', 'versions', 'v1'), layout: 'absolute-link' })
    relink(root, 'a', 'current', join(root, 'a', 'versions', 'v2'))
    expect(store.resolve('a')).toMatchObject({ version: 'v2', path: join(root, 'a', 'versions', 'v2'), layout: 'absolute-link' })
    // Python-made real `current` directories stay readable.
    const legacy = makeTemp()
    writeLegacyAgent(legacy, 'm', [{ version: 'v1', files: { 'model.onnx': 'one' } }], 'directory')
    expect(resolveChannel(legacy, 'm')).toMatchObject({ version: 'v1', layout: 'directory' })
  })
})
