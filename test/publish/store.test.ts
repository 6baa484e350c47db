import { appendFileSync, existsSync, lstatSync, readlinkSync, rmSync } from 'node:fs'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { readAudit } from '../../src/publish/audit.js'
import { lockPath } from '../../src/publish/lock.js'
import { ModelStore } from '../../src/publish/store.js'
import { makeTemp, publish, removeTemps, writeTree } from '../helpers/store-helpers.js'

afterAll(removeTemps)

describe('ModelStore', () => {
  it('stages, finalizes and publishes with a relative current link, manifest@1 and an audit line', async () => {
    const root = makeTemp()
    const store = new ModelStore(root)
    expect(store.current('scout')).toBeNull()
    const staging = await store.stage('scout', 'v1')
    expect(staging).toBe(join(root, 'scout', 'versions', 'v1.tmp'))
    writeTree(staging, { 'model.onnx': 'abc', 'cfg/config.json': '{}' })
    const r = await store.finalize('scout', 'v1', { metadata: { accuracy: 0.9 }, manifest: { source: { repo: 'org/m', revision: 'main' } } })
    expect(r).toMatchObject({ agent: 'scout', version: 'v1', files: 2, bytes: 5, published: true, previous: null })
    expect(existsSync(staging)).toBe(false)
    expect(readlinkSync(join(root, 'scout', 'current'))).toBe('versions/v1')
    expect(store.current('scout')).toBe(join(root, 'scout', 'versions', 'v1'))
    const m = await store.manifest('scout')
    expect(m).toMatchObject({ version: 'v1', schema: 'modelforge/manifest@1', agent: 'scout', checksum_algorithm: 'sha256-files-v1', metadata: { accuracy: 0.9 }, source: { repo: 'org/m' } })
    expect(Object.keys(m).slice(0, 3)).toEqual(['version', 'checksum', 'metadata'])
    expect((m as { files: unknown[] }).files).toEqual([
      { path: 'cfg/config.json', size: 2, sha256: '44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a' },
      { path: 'model.onnx', size: 3, sha256: 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad' },
    ])
    expect(await store.agents()).toEqual(['scout'])
    expect(readAudit(root)).toMatchObject([{ op: 'finalize', agent: 'scout', version: 'v1', channel: 'current', previous: null, host: hostname(), pid: process.pid }])
    expect(existsSync(lockPath(root, 'scout'))).toBe(false)
  })

  it('--no-publish leaves current alone; versions are listed oldest first', async () => {
    const store = new ModelStore(makeTemp())
    await publish(store, 'a', 'v1')
    const r = await publish(store, 'a', 'v2', undefined, false)
    expect(r.published).toBe(false)
    expect(store.resolve('a')?.version).toBe('v1')
    expect(await store.versions('a')).toEqual(['v1', 'v2'])
  })

  it('withStaging removes the staging dir when fn throws and keeps it otherwise', async () => {
    const store = new ModelStore(makeTemp())
    await expect(store.withStaging('a', 'v1', async (dir) => {
      writeTree(dir, { x: '1' })
      throw new Error('export failed')
    })).rejects.toThrow('export failed')
    expect(existsSync(store.stagingDir('a', 'v1'))).toBe(false)
    const dir = await store.withStaging('a', 'v1', async (d) => d)
    expect(existsSync(dir)).toBe(true)
  })

  it('stage refuses an existing version or staging dir (exit 5)', async () => {
    const store = new ModelStore(makeTemp())
    await publish(store, 'a', 'v1')
    await expect(store.stage('a', 'v1')).rejects.toMatchObject({ exitCode: 5, code: 'VERSION_EXISTS' })
    await store.stage('a', 'v2')
    await expect(store.stage('a', 'v2')).rejects.toMatchObject({ exitCode: 5, code: 'STAGING_EXISTS' })
  })

  it('STRICT_MODEL_STORE turns missing store, agent and current into NotFoundError', async () => {
    const root = makeTemp()
    const strict = new ModelStore(join(root, 'nope'), { strict: true })
    expect(() => strict.current('a')).toThrow(expect.objectContaining({ exitCode: 6, code: 'STORE_NOT_FOUND' }))
    expect(new ModelStore(join(root, 'nope'), { strict: false }).current('a')).toBeNull()
    const store = new ModelStore(root, { strict: true })
    expect(() => store.current('a')).toThrow(expect.objectContaining({ code: 'AGENT_NOT_FOUND' }))
    await store.stage('a', 'v1')
    expect(() => store.current('a')).toThrow(expect.objectContaining({ code: 'NO_CURRENT' }))
  })

  it('a dangling current is an integrity error, not a silent null', async () => {
    const root = makeTemp()
    const store = new ModelStore(root)
    await publish(store, 'a', 'v1')
    rmSync(join(root, 'a', 'versions', 'v1'), { recursive: true })
    expect(() => store.current('a')).toThrow(expect.objectContaining({ exitCode: 4, code: 'CHANNEL_DANGLING' }))
    const reports = await store.verify('a')
    expect(reports.map((r) => r.problems[0]?.kind)).toEqual(['channel'])
  })

  it('a torn last audit line is skipped', async () => {
    const root = makeTemp()
    const store = new ModelStore(root)
    await publish(store, 'a', 'v1')
    appendFileSync(join(root, '.modelforge', 'audit.jsonl'), '{"op":"final')
    expect(readAudit(root)).toHaveLength(1)
    await publish(store, 'a', 'v2')
    expect(readAudit(root).map((r) => r.version)).toEqual(['v1', 'v2'])
    expect(lstatSync(join(root, 'a', 'current')).isSymbolicLink()).toBe(true)
  })
})
