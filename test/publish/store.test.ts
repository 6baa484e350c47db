import { spawn } from 'node:child_process'
import { appendFileSync, cpSync, existsSync, mkdirSync, lstatSync, readFileSync, readlinkSync, renameSync, rmSync, symlinkSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { readAudit } from '../../src/publish/audit.js'
import { lockPath } from '../../src/publish/lock.js'
import { assertVerified, currentHistory, ModelStore } from '../../src/publish/store.js'
import { makeTemp, removeTemps, snapshot, writeTree } from '../helpers/store-helpers.js'

afterAll(removeTemps)

async function publish(store: ModelStore, agent: string, version: string, files: Record<string, string> = { 'model.onnx': version }, publishIt = true) {
  const dir = await store.stage(agent, version)
  writeTree(dir, files)
  return store.finalize(agent, version, { publish: publishIt, metadata: { note: version } })
}

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

  it('verify names modified, missing and extra files and a tampered manifest', async () => {
    const store = new ModelStore(makeTemp())
    const r = await publish(store, 'a', 'v1', { 'model.onnx': 'weights', 'labels.json': '[]', 'vocab.txt': 'a\nb\n' })
    expect((await store.verify()).every((x) => x.ok)).toBe(true)
    writeFileSync(join(r.path, 'model.onnx'), 'weighte')
    unlinkSync(join(r.path, 'labels.json'))
    writeFileSync(join(r.path, 'new.bin'), 'x')
    const [report] = await store.verify('a', 'v1')
    expect(report!.ok).toBe(false)
    expect(report!.problems.map((p) => `${p.kind} ${p.path}`)).toEqual(['missing labels.json', 'modified model.onnx', 'extra new.bin'])
    expect(() => assertVerified([report!])).toThrow(/a\/v1: .*missing: labels\.json.*modified: model\.onnx.*extra file: new\.bin/)
    const manifestPath = join(r.path, 'manifest.json')
    const m = JSON.parse(readFileSync(manifestPath, 'utf8'))
    m.files = m.files.filter((f: { path: string }) => f.path !== 'labels.json')
    writeFileSync(manifestPath, JSON.stringify(m))
    const [again] = await store.verify('a', 'v1')
    expect(again!.problems.map((p) => p.kind)).toContain('checksum')
    // A version copied from another agent is intact file by file but was not published by this agent.
    const other = await publish(store, 'b', 'v1')
    cpSync(other.path, join(store.root, 'a', 'versions', 'v9'), { recursive: true })
    const m9 = JSON.parse(readFileSync(join(store.root, 'a', 'versions', 'v9', 'manifest.json'), 'utf8'))
    m9.version = 'v9'
    writeFileSync(join(store.root, 'a', 'versions', 'v9', 'manifest.json'), JSON.stringify(m9))
    const [copied] = await store.verify('a', 'v9')
    expect(copied!.problems).toEqual([{ kind: 'manifest', path: 'manifest.json', message: 'manifest names agent b, directory is under a' }])
  })

  it('verify names exactly the file whose one byte changed, for every file at every depth', async () => {
    const store = new ModelStore(makeTemp())
    const files = { 'model.onnx': 'weights', 'cfg/config.json': '{"a": 1}', 'tok/sub/vocab.txt': 'a\nb\n', 'z.bin': 'zz' }
    const r = await publish(store, 'a', 'v1', files)
    for (const rel of Object.keys(files)) {
      const p = join(r.path, rel)
      const original = readFileSync(p)
      const changed = Buffer.from(original)
      changed[changed.length - 1] = changed[changed.length - 1]! ^ 0x20
      writeFileSync(p, changed)
      const [report] = await store.verify('a', 'v1')
      expect(report!.problems, rel).toEqual([{ kind: 'modified', path: rel, message: `modified: ${rel}` }])
      writeFileSync(p, original)
    }
    expect((await store.verify('a', 'v1'))[0]!.ok).toBe(true)
  })

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

  it('currentHistory undoes rollbacks', () => {
    const f = (version: string) => ({ op: 'finalize', channel: 'current', version })
    expect(currentHistory([f('v1'), f('v2'), f('v3'), { op: 'rollback', channel: 'current', version: 'v2' }])).toEqual(['v1', 'v2'])
    expect(currentHistory([f('v1'), f('v2'), { op: 'promote', channel: 'staging', version: 'v1' }])).toEqual(['v1', 'v2'])
    // A crash between a link swap and its audit line loses the line; the next record's `previous` (read from
    // the link) brings the lost version back, so rollback returns to what current really named before.
    const g = (previous: string | null, version: string, op = 'finalize') => ({ op, channel: 'current', version, previous })
    expect(currentHistory([g(null, 'v1'), g('v1', 'v2'), g('v3', 'v4')])).toEqual(['v1', 'v2', 'v3', 'v4'])
    expect(currentHistory([g(null, 'v1'), g('v1', 'v2'), g('v1', 'v3'), g('v3', 'v1', 'rollback')])).toEqual(['v1', 'v2', 'v1'])
  })

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

  it('rollback refuses when the previous version was pruned', async () => {
    const store = new ModelStore(makeTemp())
    for (const v of ['v1', 'v2']) await publish(store, 'a', v)
    await store.prune('a', { keep: 0 })
    await expect(store.rollback('a')).rejects.toMatchObject({ exitCode: 6, code: 'PREVIOUS_GONE' })
  })

  it('gc removes temp links and staging dirs older than the limit, 0 removes all', async () => {
    const root = makeTemp()
    const store = new ModelStore(root)
    await publish(store, 'a', 'v1')
    const fresh = await store.stage('a', 'v2')
    writeTree(fresh, { 'm.onnx': 'x' })
    const old = await store.stage('a', 'v3')
    writeTree(old, { 'm.onnx': 'x' })
    const past = new Date(Date.now() - 48 * 3600 * 1000)
    utimesSync(join(old, 'm.onnx'), past, past)
    utimesSync(old, past, past)
    symlinkSync('versions/v1', join(root, 'a', '.link-current-123-abcd.tmp'))
    const r = await store.gc()
    expect(r.removed.map((x) => x.kind).sort()).toEqual(['staging', 'temp-link'])
    expect(existsSync(old)).toBe(false)
    expect(existsSync(fresh)).toBe(true)
    expect((await store.gc({ olderThan: '1h' })).removed).toEqual([])
    const all = await store.gc({ olderThan: 0 })
    expect(all.removed).toEqual([{ path: fresh, kind: 'staging' }])
    expect(snapshot(join(root, 'a'))).toEqual(['dir  755', 'link current -> versions/v1', 'dir versions 755', expect.stringMatching(/^dir versions\/v1 /), expect.stringMatching(/^file versions\/v1\/manifest.json/), expect.stringMatching(/^file versions\/v1\/model.onnx/)])
    expect(readAudit(root, 'a').filter((x) => x.op === 'gc')).toHaveLength(2)
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
    const holder = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)'])
    try {
      mkdirSync(join(root, '.modelforge', 'locks'), { recursive: true })
      writeFileSync(lockPath(root, 'a'), JSON.stringify({ pid: holder.pid, host: hostname(), started_at: new Date().toISOString(), agent: 'a', op: 'finalize', version: 'v1' }))
      const r = await store.gc({ olderThanMs: 0 })
      expect(r.removed).toEqual([])
      expect(r.skipped[0]!.reason).toContain(`process ${holder.pid} on host ${hostname()}`)
      expect(existsSync(store.stagingDir('a', 'v1'))).toBe(true)
    } finally {
      holder.kill('SIGKILL')
    }
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
