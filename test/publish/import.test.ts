/**
 * store.import(): a directory or files become a finalized, published version in one call, the source is
 * never changed (not by --link either), and a failure at any step leaves no version and no staging
 * directory.
 */
import { spawn, spawnSync } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, readdirSync, readlinkSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import type { ProgressEvent } from '../../src/lib/progress.js'
import { readAudit } from '../../src/publish/audit.js'
import { lockPath } from '../../src/publish/lock.js'
import { ModelStore } from '../../src/publish/store.js'
import { tmpfs, unmountAll } from '../helpers/mounts.js'
import { makeTemp, publish, removeTemps, snapshot, writeTree, withLiveLockHolder } from '../helpers/store-helpers.js'

afterAll(() => {
  unmountAll()
  removeTemps()
})

/** The checksum of docs/store.md's recipe, with coreutils, over a version directory. */
function sha256sumRecipe(dir: string): string {
  const pipeline = `cd "$1" && find . -type f ! -path ./manifest.json | sed 's#^\\./##' | LC_ALL=C sort | xargs -d '\\n' sha256sum | sha256sum`
  const out = spawnSync('bash', ['-c', pipeline, 'bash', dir], { encoding: 'utf8' })
  expect(out.status, out.stderr).toBe(0)
  return out.stdout.split(' ')[0]!
}

/** A source tree with nested directories, names whose orders differ, and files of unusual modes. */
function sourceTree(): string {
  const dir = makeTemp('mf-src-')
  writeTree(dir, { 'model.onnx': 'weights', 'B.txt': 'upper', 'a.txt': 'lower', 'tok/vocab.txt': 'a\nb\n', 'tok/deep/x.bin': new Uint8Array([0, 1, 255]), 'with space.json': '{}', 'empty': '' })
  chmodSync(join(dir, 'model.onnx'), 0o640)
  chmodSync(join(dir, 'tok', 'vocab.txt'), 0o755)
  return dir
}

/** A store whose agent scout has v1 published. */
async function storeWithV1(root = makeTemp()): Promise<{ root: string; store: ModelStore }> {
  const store = new ModelStore(root)
  await publish(store, 'scout', 'v1')
  return { root, store }
}

/** Nothing of version `v` exists: neither the version nor its staging directory. */
function expectNoTrace(root: string, v: string): void {
  const versions = readdirSync(join(root, 'scout', 'versions'))
  expect(versions.filter((n) => n === v || n.startsWith(`${v}.`) || n.startsWith(`.prune-${v}-`))).toEqual([])
}

describe('import', () => {
  it('a directory becomes the version tree: it verifies, its checksum is the sha256sum recipe, current moves, the source is unchanged', async () => {
    const { root, store } = await storeWithV1()
    const src = sourceTree()
    const before = snapshot(src)
    const r = await store.import('scout', 'v2', src, { metadata: { dataset: 'news' } })
    expect(r).toMatchObject({ agent: 'scout', version: 'v2', files: 7, published: true, channel: 'current', previous: 'v1', sources: [src], linked: 0 })
    expect(r.reflinked + r.copied).toBe(7)
    expect(r.checksum).toBe(sha256sumRecipe(r.path))
    expect((await store.verify('scout', 'v2'))[0]!.problems).toEqual([])
    expect(readlinkSync(join(root, 'scout', 'current'))).toBe('versions/v2')
    expect(await store.manifest('scout')).toMatchObject({ version: 'v2', metadata: { dataset: 'news' } })
    // Copies keep the execute bits, as cp does; finalize took every write bit away and gave the read bits
    // versions/ grants (0755 here: everyone), so 0755 and 0640 are 0555 and 0444 in the version.
    expect(statSync(join(r.path, 'tok', 'vocab.txt')).mode & 0o777).toBe(0o555)
    expect(statSync(join(r.path, 'model.onnx')).mode & 0o777).toBe(0o444)
    expect(snapshot(src)).toEqual(before)
    expect(existsSync(store.stagingDir('scout', 'v2'))).toBe(false)
    expect(readAudit(root, 'scout').at(-1)).toMatchObject({ op: 'finalize', version: 'v2', channel: 'current', previous: 'v1' })
  })

  it('files become files at the top level (a link among them is followed); --no-publish leaves current alone', async () => {
    const { store } = await storeWithV1()
    const a = sourceTree()
    const b = makeTemp('mf-src-')
    writeTree(b, { 'config.json': '{"x": 1}' })
    symlinkSync(join(a, 'model.onnx'), join(b, 'model.onnx'))
    const r = await store.import('scout', 'v2', [join(b, 'model.onnx'), join(b, 'config.json'), join(a, 'tok', 'vocab.txt')], { publish: false })
    expect(r).toMatchObject({ files: 3, published: false, channel: null })
    expect((await store.manifest('scout', 'v2') as { files: { path: string }[] }).files.map((f) => f.path)).toEqual(['config.json', 'model.onnx', 'vocab.txt'])
    expect(r.checksum).toBe(sha256sumRecipe(r.path))
    expect(statSync(join(r.path, 'model.onnx')).isFile()).toBe(true)
    expect(store.resolve('scout')?.version).toBe('v1')
    expect((await store.verify('scout', 'v2'))[0]!.ok).toBe(true)
  })

  it('--channel publishes to that channel instead of current: finalized unpublished, then promoted', async () => {
    const { root, store } = await storeWithV1()
    const r = await store.import('scout', 'v2', sourceTree(), { channel: 'staging' })
    expect(r).toMatchObject({ published: true, channel: 'staging', previous: null })
    expect(readlinkSync(join(root, 'scout', 'staging'))).toBe('versions/v2')
    expect(store.resolve('scout')?.version).toBe('v1')
    expect(readAudit(root, 'scout').slice(-2)).toMatchObject([{ op: 'finalize', version: 'v2' }, { op: 'promote', channel: 'staging', version: 'v2', previous: null }])
    expect(readAudit(root, 'scout').at(-2)).not.toHaveProperty('channel')
    await expect(store.import('scout', 'v3', sourceTree(), { channel: 'staging', publish: false })).rejects.toMatchObject({ exitCode: 2, code: 'USAGE' })
    await expect(store.import('scout', 'v3', sourceTree(), { channel: 'a/b' })).rejects.toMatchObject({ exitCode: 2, code: 'INVALID_NAME' })
  })

  it('--link hard-links on the same filesystem, and the source keeps its bytes and modes', async () => {
    const { root, store } = await storeWithV1()
    const src = sourceTree()
    // Only a file already as read-only as a version's files is linked (a hard link's mode is the source's):
    // the source is made so first, as docs/store.md tells operators to.
    expect(spawnSync('chmod', ['-R', 'a=rX', src]).status).toBe(0)
    const before = snapshot(src)
    const r = await store.import('scout', 'v2', src, { link: true })
    expect(r).toMatchObject({ files: 7, linked: 7, reflinked: 0, copied: 0 })
    // One inode: the version's file is the source's.
    expect(statSync(join(r.path, 'model.onnx')).ino).toBe(statSync(join(src, 'model.onnx')).ino)
    expect(statSync(join(src, 'model.onnx')).nlink).toBe(2)
    expect(r.checksum).toBe(sha256sumRecipe(r.path))
    // finalize read and fsynced the shared inodes, nothing more: no chmod, no write.
    expect(snapshot(src)).toEqual(before)
    expect((await store.verify('scout', 'v2'))[0]!.ok).toBe(true)
    // Removing the version again (once current no longer points to it) leaves the source as it was.
    await expect(store.delete('scout', 'v2')).rejects.toMatchObject({ code: 'VERSION_IN_USE' })
    await store.promote('scout', 'v1')
    await store.delete('scout', 'v2')
    expect(snapshot(src)).toEqual(before)
    expect(statSync(join(src, 'model.onnx')).nlink).toBe(1)
    expectNoTrace(root, 'v2')
  })

  it('--link copies the files that are writable (a link would have to be chmod-ed, which would change the source)', async () => {
    const { store } = await storeWithV1()
    const src = sourceTree()
    chmodSync(join(src, 'a.txt'), 0o444)
    const before = snapshot(src)
    const r = await store.import('scout', 'v2', src, { link: true })
    // a.txt alone is read-only already: linked; the six others copied, then made read-only in the version.
    expect(r).toMatchObject({ files: 7, linked: 1 })
    expect(r.reflinked + r.copied).toBe(6)
    expect(statSync(join(r.path, 'a.txt')).ino).toBe(statSync(join(src, 'a.txt')).ino)
    expect(statSync(join(r.path, 'model.onnx')).ino).not.toBe(statSync(join(src, 'model.onnx')).ino)
    expect(statSync(join(r.path, 'model.onnx')).mode & 0o777).toBe(0o444)
    expect(snapshot(src)).toEqual(before)
    expect((await store.verify('scout', 'v2'))[0]).toMatchObject({ ok: true, problems: [] })
    expect((await store.verify('scout', 'v2'))[0]!.warnings).toBeUndefined()
  })

  const second = tmpfs('4m')
  it.skipIf(!second)('--link across filesystems (a tmpfs store, the source elsewhere) falls back to copies', async () => {
    const { store } = await storeWithV1(join(second!, 'store'))
    const src = sourceTree()
    const before = snapshot(src)
    const r = await store.import('scout', 'v2', src, { link: true })
    expect(r).toMatchObject({ files: 7, linked: 0 })
    expect(r.reflinked + r.copied).toBe(7)
    expect(r.checksum).toBe(sha256sumRecipe(r.path))
    expect(snapshot(src)).toEqual(before)
  })

  it('refuses before any copy: a symlink, a fifo or a top-level manifest.json in the source (exit 4), and the store is unchanged', async () => {
    const { root, store } = await storeWithV1()
    const before = snapshot(root)
    const withLink = sourceTree()
    symlinkSync('model.onnx', join(withLink, 'tok', 'alias.onnx'))
    await expect(store.import('scout', 'v2', withLink)).rejects.toMatchObject({ exitCode: 4, code: 'UNSUPPORTED_FILE_TYPE', message: `The source ${withLink} holds a symlink (tok/alias.onnx); only regular files and directories can be published` })
    const withFifo = sourceTree()
    expect(spawnSync('mkfifo', [join(withFifo, 'pipe')]).status).toBe(0)
    await expect(store.import('scout', 'v2', withFifo)).rejects.toMatchObject({ exitCode: 4, code: 'UNSUPPORTED_FILE_TYPE' })
    await expect(store.import('scout', 'v2', join(withFifo, 'pipe'))).rejects.toMatchObject({ exitCode: 4, code: 'UNSUPPORTED_FILE_TYPE', message: expect.stringContaining('a fifo (pipe)') })
    const withManifest = sourceTree()
    writeFileSync(join(withManifest, 'manifest.json'), '{}')
    await expect(store.import('scout', 'v2', withManifest)).rejects.toMatchObject({ exitCode: 4, code: 'MANIFEST_RESERVED' })
    expect(snapshot(root)).toEqual(before)
  })

  it('refuses a bad source list: two files of one name, a directory with other sources (exit 2), a missing source (exit 6)', async () => {
    const { root, store } = await storeWithV1()
    const before = snapshot(root)
    const a = sourceTree()
    const b = sourceTree()
    await expect(store.import('scout', 'v2', [join(a, 'model.onnx'), join(b, 'model.onnx')])).rejects.toMatchObject({ exitCode: 2, code: 'DUPLICATE_FILE_NAME', details: { name: 'model.onnx' } })
    await expect(store.import('scout', 'v2', [a, join(b, 'model.onnx')])).rejects.toMatchObject({ exitCode: 2, code: 'IMPORT_SOURCES' })
    await expect(store.import('scout', 'v2', [])).rejects.toMatchObject({ exitCode: 2, code: 'IMPORT_SOURCES' })
    await expect(store.import('scout', 'v2', join(a, 'nope'))).rejects.toMatchObject({ exitCode: 6, code: 'PATH_NOT_FOUND', message: expect.stringContaining(join(a, 'nope')) })
    await expect(store.import('scout', 'v1', a)).rejects.toMatchObject({ exitCode: 5, code: 'VERSION_EXISTS' })
    expect(snapshot(root)).toEqual(before)
  })

  it('a failure half-way (finalize finds the lock held by a live writer) leaves no version and no staging directory', async () => {
    const { root, store } = await storeWithV1()
    await withLiveLockHolder(root, 'scout', 'promote', async () => {
      await expect(store.import('scout', 'v2', sourceTree())).rejects.toMatchObject({ exitCode: 5, code: 'LOCKED' })
    })
    expectNoTrace(root, 'v2')
    expect(existsSync(store.stagingDir('scout', 'v2'))).toBe(false)
    expect(store.resolve('scout')?.version).toBe('v1')
  })

  it('a publish that fails after finalize (a plain file named current, a directory named like the channel) is undone: the version is removed again, audited', async () => {
    const { root, store } = await storeWithV1()
    const agentDir = join(root, 'scout')
    mkdirSync(join(agentDir, 'staging'))
    const err = await store.import('scout', 'v2', sourceTree(), { channel: 'staging' }).catch((e: unknown) => e)
    expect(err).toMatchObject({ exitCode: 4, code: 'CHANNEL_INVALID', details: { finalized: false, published: false } })
    expect((err as Error).message).toMatch(/^Publishing scout\/v2 to staging failed, so the import was undone \(the version it had finalized was removed again\): /)
    expectNoTrace(root, 'v2')
    expect(readAudit(root, 'scout').slice(-2)).toMatchObject([{ op: 'finalize', version: 'v2' }, { op: 'delete', version: 'v2', reason: 'import failed: CHANNEL_INVALID' }])
    // current as a plain file: finalize's own publish fails after its rename; the same undo follows.
    const { root: root2, store: store2 } = await storeWithV1()
    unlinkSync(join(root2, 'scout', 'current'))
    writeFileSync(join(root2, 'scout', 'current'), 'not a link')
    await expect(store2.import('scout', 'v2', sourceTree())).rejects.toMatchObject({ exitCode: 4, code: 'CHANNEL_INVALID', details: { finalized: false } })
    expectNoTrace(root2, 'v2')
    expect(await store2.versions('scout')).toEqual(['v1'])
  })

  it('an undo that cannot remove the version says so: it stands, unpublished, and the hint says how to finish or remove it', async () => {
    const { root, store } = await storeWithV1()
    const holder = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'])
    try {
      // Right after finalize, a live writer takes the lock and keeps it: the promote and the undo both wait, then give up.
      const takeLock = (e: ProgressEvent): void => {
        if (e.type === 'end' && e.step === 'finalize') writeFileSync(lockPath(root, 'scout'), JSON.stringify({ pid: holder.pid, host: hostname(), started_at: new Date().toISOString(), agent: 'scout', op: 'gc' }))
      }
      const err = await store.import('scout', 'v2', sourceTree(), { channel: 'staging', progress: takeLock }).catch((e: unknown) => e)
      expect(err).toMatchObject({ exitCode: 5, code: 'LOCKED', details: { finalized: true, published: false } })
      expect((err as Error).message).toMatch(/^scout\/v2 was finalized, but publishing it to staging failed \(Agent scout is locked by process \d+ .*\), and removing it again failed too/)
      expect((err as { hint: string }).hint).toBe('Publish it with `modelforge store promote scout v2 --channel staging`, or remove it with `modelforge store delete scout v2`.')
    } finally {
      holder.kill('SIGKILL')
    }
    expect((await store.verify('scout', 'v2'))[0]!.ok).toBe(true)
    expect(store.resolve('scout', 'staging')).toBeNull()
  }, 30_000)

  it('a version another writer points a channel at meanwhile is not removed by the undo', async () => {
    const { root, store } = await storeWithV1()
    mkdirSync(join(root, 'scout', 'staging'))
    const promoteElsewhere = (e: ProgressEvent): void => {
      if (e.type === 'end' && e.step === 'finalize') symlinkSync('versions/v2', join(root, 'scout', 'canary'))
    }
    const err = await store.import('scout', 'v2', sourceTree(), { channel: 'staging', progress: promoteElsewhere }).catch((e: unknown) => e)
    expect(err).toMatchObject({ exitCode: 4, code: 'CHANNEL_INVALID', details: { finalized: true, published: false, channels: ['canary'] } })
    expect((err as Error).message).toMatch(/^Publishing scout\/v2 to staging failed: .* is not a symlink, .*; the version stays, as canary points to it$/)
    expect((await store.verify('scout', 'v2'))[0]!.ok).toBe(true)
  })

  it('reports the copy in bytes, then finalize hashes', async () => {
    const { store } = await storeWithV1()
    const src = makeTemp('mf-src-')
    writeTree(src, { 'big.bin': Buffer.alloc(3 * 1024 * 1024 + 5, 7), 'small.txt': 'x' })
    const events: ProgressEvent[] = []
    await store.import('scout', 'v2', src, { progress: (e) => events.push(e) })
    const total = 3 * 1024 * 1024 + 6
    const bytes = events.filter((e) => e.type === 'bytes' && e.step === 'copy') as { done: number; total: number }[]
    expect(bytes.every((e) => e.total === total)).toBe(true)
    expect(bytes.map((e) => e.done)).toEqual([...bytes.map((e) => e.done)].sort((x, y) => x - y))
    expect(bytes.at(-1)!.done).toBe(total)
    expect(events.filter((e) => e.type === 'plan').map((e) => (e as { steps: { id: string }[] }).steps[0]!.id)).toEqual(['copy', 'finalize'])
    expect(events.find((e) => e.type === 'end' && e.step === 'copy')).toMatchObject({ title: expect.stringMatching(/^Placed 2 files \(3\.0 MiB\): 2 (copied|cloned \(reflink\))$/) })
  })
})
