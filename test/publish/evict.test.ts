/**
 * The node cache's bound (store prune --max-bytes, store.maxBytes after a pull): versions no channel points
 * to go, least recently used first, until the store holds the bound; what a channel points to never goes.
 */
import { afterAll, describe, expect, it } from 'vitest'
import { existsSync } from 'node:fs'
import { readAudit } from '../../src/publish/audit.js'
import { parseByteSize } from '../../src/publish/options.js'
import { ModelStore } from '../../src/publish/store.js'
import { cli, makeTemp, publish, removeTemps } from '../helpers/store-helpers.js'

afterAll(removeTemps)

const KB = 'x'.repeat(1000)

async function cache(): Promise<ModelStore> {
  const store = new ModelStore(makeTemp())
  for (const v of ['v1', 'v2', 'v3']) await publish(store, 'a', v, { 'model.onnx': `${v}${KB}` })
  await publish(store, 'b', 'v1', { 'model.onnx': `b${KB}` })
  // v1 served as canary after v2 was made: it was in use more recently than v2.
  await store.promote('a', 'v1', 'canary')
  await store.promote('a', 'v3', 'canary')
  return store
}

describe('evict', () => {
  it('removes the least recently used unpinned versions until the store fits, and audits each', async () => {
    const store = await cache()
    const r = await store.evict({ maxBytes: 3100 })
    expect(r.evicted.map((e) => `${e.agent}/${e.version}`)).toEqual(['a/v2'])
    expect(r).toMatchObject({ overBudget: false, dryRun: false })
    expect(r.bytesAfter).toBeLessThanOrEqual(3100)
    expect(r.bytesBefore - r.bytesAfter).toBe(1002)
    expect(existsSync(store.versionDir('a', 'v2'))).toBe(false)
    expect(await store.versions('a')).toEqual(['v1', 'v3'])
    expect(readAudit(store.root).filter((x) => x.op === 'evict')).toEqual([expect.objectContaining({ agent: 'a', removed: ['v2'], maxBytes: 3100 })])
  })

  it('never removes what a channel points to; a dry run changes nothing', async () => {
    const store = await cache()
    const dry = await store.evict({ maxBytes: 0, dryRun: true })
    expect(dry.evicted.map((e) => `${e.agent}/${e.version}`)).toEqual(['a/v2', 'a/v1'])
    expect(await store.versions('a')).toEqual(['v1', 'v2', 'v3'])
    const r = await store.evict({ maxBytes: 0 })
    expect(r.overBudget).toBe(true)
    expect(await store.versions('a')).toEqual(['v3'])
    expect(await store.versions('b')).toEqual(['v1'])
  })

  it('sizes: decimal and binary units; anything else is exit 2', () => {
    expect(parseByteSize('1000')).toBe(1000)
    expect(parseByteSize('50GB')).toBe(50e9)
    expect(parseByteSize('40GiB')).toBe(40 * 2 ** 30)
    expect(parseByteSize('1.5 mb')).toBe(1.5e6)
    for (const bad of ['', 'ten', '5XB', '-1MB']) expect(() => parseByteSize(bad), bad).toThrow(expect.objectContaining({ code: 'INVALID_SIZE', exitCode: 2 }))
  })

  it('the CLI: store prune --max-bytes bounds the whole store; an agent with it, or neither, is exit 2', async () => {
    const store = await cache()
    const r = cli(['store', 'prune', '--max-bytes', '3.1KB', '--store', store.root, '--json'])
    expect(r.code, r.stdout + r.stderr).toBe(0)
    expect(JSON.parse(r.stdout).result.evicted).toEqual([expect.objectContaining({ agent: 'a', version: 'v2' })])
    expect(cli(['store', 'prune', 'a', '--max-bytes', '1KB', '--store', store.root]).code).toBe(2)
    expect(cli(['store', 'prune', '--store', store.root]).code).toBe(2)
    expect(cli(['store', 'prune', '--max-bytes', 'lots', '--store', store.root]).code).toBe(2)
  })
})
