import { existsSync, readdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { readAudit } from '../../src/publish/audit.js'
import { lockPath } from '../../src/publish/lock.js'
import { ModelStore } from '../../src/publish/store.js'
import { makeTemp, publish, removeTemps, snapshot, withLiveLockHolder } from '../helpers/store-helpers.js'

afterAll(removeTemps)

/** v1, v2, v3 of agent a; current -> v3, staging -> v1. */
async function storeWithChannels(): Promise<{ root: string; store: ModelStore }> {
  const root = makeTemp()
  const store = new ModelStore(root)
  for (const v of ['v1', 'v2', 'v3']) await publish(store, 'a', v)
  await store.promote('a', 'v1', 'staging')
  return { root, store }
}

describe('delete', () => {
  it('removes a version no channel points to, under the lock, audited, leaving nothing behind', async () => {
    const { root, store } = await storeWithChannels()
    const checksum = (await store.manifest('a', 'v2')).checksum
    const r = await store.delete('a', 'v2')
    expect(r).toEqual({ agent: 'a', version: 'v2', path: join(root, 'a', 'versions', 'v2'), dryRun: false, deleted: true, checksum })
    expect(await store.versions('a')).toEqual(['v1', 'v3'])
    // Renamed aside and deleted: no `.prune-` leftover, no lock.
    expect(readdirSync(join(root, 'a', 'versions')).sort()).toEqual(['v1', 'v3'])
    expect(existsSync(lockPath(root, 'a'))).toBe(false)
    expect(readAudit(root, 'a').at(-1)).toMatchObject({ op: 'delete', agent: 'a', version: 'v2', checksum })
    expect((await store.verify('a')).every((x) => x.ok)).toBe(true)
  })

  it('refuses a version current or another channel points to (exit 5 VERSION_IN_USE naming the channels)', async () => {
    const { root, store } = await storeWithChannels()
    const before = snapshot(root)
    await expect(store.delete('a', 'v3')).rejects.toMatchObject({ exitCode: 5, code: 'VERSION_IN_USE', message: 'Version v3 of agent a is in use: channel current points to it', details: { channels: ['current'] } })
    await expect(store.delete('a', 'v1')).rejects.toMatchObject({ exitCode: 5, code: 'VERSION_IN_USE', hint: expect.stringContaining('--channel staging') })
    expect(snapshot(root)).toEqual(before)
    await store.promote('a', 'v1', 'canary')
    await expect(store.delete('a', 'v1', { dryRun: true })).rejects.toMatchObject({ message: expect.stringContaining('channels canary, staging point to it') })
  })

  it('--dry-run checks the same and changes nothing', async () => {
    const { root, store } = await storeWithChannels()
    const before = snapshot(root)
    const r = await store.delete('a', 'v2', { dryRun: true })
    expect(r).toMatchObject({ version: 'v2', dryRun: true, deleted: false })
    expect(snapshot(root)).toEqual(before)
  })

  it('a missing version or agent is exit 6, a bad name exit 2; a staging directory is no version', async () => {
    const { store } = await storeWithChannels()
    await expect(store.delete('a', 'v9')).rejects.toMatchObject({ exitCode: 6, code: 'VERSION_NOT_FOUND' })
    await expect(store.delete('b', 'v1')).rejects.toMatchObject({ exitCode: 6, code: 'AGENT_NOT_FOUND' })
    await expect(store.delete('a', '../v1')).rejects.toMatchObject({ exitCode: 2, code: 'INVALID_NAME' })
    await store.stage('a', 'v4')
    await expect(store.delete('a', 'v4')).rejects.toMatchObject({ exitCode: 6, code: 'VERSION_NOT_FOUND' })
  })

  it('deletes a damaged version too (its manifest gone): that is how an operator gets rid of it', async () => {
    const { root, store } = await storeWithChannels()
    rmSync(join(root, 'a', 'versions', 'v2', 'manifest.json'))
    expect(await store.delete('a', 'v2')).toMatchObject({ deleted: true, checksum: null })
    expect(readAudit(root, 'a').at(-1)).not.toHaveProperty('checksum')
  })

  it('waits for no one: a live writer holding the lock makes it exit 5 LOCKED, and nothing is removed', async () => {
    const { root, store } = await storeWithChannels()
    await withLiveLockHolder(root, 'a', 'finalize', async () => {
      await expect(store.delete('a', 'v2')).rejects.toMatchObject({ exitCode: 5, code: 'LOCKED' })
      expect(await store.versions('a')).toEqual(['v1', 'v2', 'v3'])
    })
  })
})
