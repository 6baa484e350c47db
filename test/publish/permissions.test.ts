/**
 * The modes of the store (permissions.ts, init.ts, lib/fs.ts shareLikeParent): what finalize makes a
 * version's files and directories, that it never chmods a file with other links, that a finalize killed
 * after making the tree read-only can run again, what verify warns about, how a store a group shares
 * gives new directories their parent's mode whatever the umask, and what store init changes. The
 * refusals of another account need real accounts: test/e2e/store-accounts.test.ts.
 */
import { chmodSync, chownSync, linkSync, lstatSync, mkdirSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { findGroup, userName } from '../../src/lib/accounts.js'
import { restoreWriteBits } from '../../src/publish/discard.js'
import { finalMode } from '../../src/publish/permissions.js'
import { ModelStore } from '../../src/publish/store.js'
import { makeTemp, publish, removeTemps, snapshot, writeTree } from '../helpers/store-helpers.js'
import { writeLegacyAgent } from '../helpers/store-legacy.js'

afterAll(removeTemps)

const mode = (p: string): number => lstatSync(p).mode & 0o7777
const asRoot = process.getuid?.() === 0

/** Runs fn under `mask`, the umask a trainer might have. */
async function withUmask<T>(mask: number, fn: () => Promise<T>): Promise<T> {
  const old = process.umask(mask)
  try {
    return await fn()
  } finally {
    process.umask(old)
  }
}

describe('finalize makes a version read-only', () => {
  it('files lose every write bit and keep their execute bits, directories are r-x, both readable as versions/ grants, whatever the writer chose', async () => {
    const root = makeTemp()
    const store = new ModelStore(root)
    const dir = await store.stage('a', 'v1')
    writeTree(dir, { 'model.onnx': 'w', 'run.sh': '#!/bin/sh\n', 'tok/vocab.txt': 'a\n', 'open.txt': 'o' })
    chmodSync(join(dir, 'model.onnx'), 0o600)
    chmodSync(join(dir, 'run.sh'), 0o750)
    chmodSync(join(dir, 'open.txt'), 0o666)
    chmodSync(join(dir, 'tok'), 0o700)
    chmodSync(join(root, 'a', 'versions'), 0o755)
    const r = await store.finalize('a', 'v1')
    expect([mode(r.path), mode(join(r.path, 'tok'))]).toEqual([0o555, 0o555])
    // run.sh keeps the execute bits it had (owner and group), and gets read for all.
    expect(['model.onnx', 'run.sh', 'open.txt', 'tok/vocab.txt', 'manifest.json'].map((f) => mode(join(r.path, f)))).toEqual([0o444, 0o554, 0o444, 0o444, 0o444])
    expect((await store.verify('a', 'v1'))[0]).toMatchObject({ ok: true })
    expect((await store.verify('a', 'v1'))[0]!.warnings).toBeUndefined()
  })

  it('a private versions/ (no bits for others) grants others nothing; an entry keeps the read bits it had; setuid goes, a directory keeps setgid', async () => {
    const root = makeTemp()
    const store = new ModelStore(root)
    const dir = await store.stage('a', 'v1')
    writeTree(dir, { 'secret.bin': 's', 'mine.txt': 'm', 'sub/x': 'x' })
    chmodSync(join(root, 'a', 'versions'), 0o750)
    chmodSync(join(dir, 'secret.bin'), 0o4700)
    chmodSync(join(dir, 'mine.txt'), 0o604)
    chmodSync(join(dir, 'sub'), 0o2770)
    const r = await store.finalize('a', 'v1')
    // The version directory itself was made 0755 by stage (umask 022): it keeps r-x for others, who
    // cannot pass versions/ anyway.
    expect([mode(join(r.path, 'secret.bin')), mode(join(r.path, 'mine.txt')), mode(join(r.path, 'sub')), mode(r.path)]).toEqual([0o540, 0o444, 0o2550, 0o555])
    expect(finalMode('file', 0o100644, 0o555)).toBe(0o444)
    expect(finalMode('directory', 0o42775, 0o555)).toBe(0o2555)
  })

  it('a file with other links is never chmod-ed: one that needs a change is replaced by a copy, one that needs none stays linked', async () => {
    const root = makeTemp()
    const store = new ModelStore(root)
    const outside = makeTemp('mf-outside-')
    writeTree(outside, { 'writable.bin': 'changes mode', 'ready.bin': 'already read-only' })
    chmodSync(join(outside, 'ready.bin'), 0o444)
    const before = snapshot(outside)
    const dir = await store.stage('a', 'v1')
    linkSync(join(outside, 'writable.bin'), join(dir, 'writable.bin'))
    linkSync(join(outside, 'ready.bin'), join(dir, 'ready.bin'))
    const r = await store.finalize('a', 'v1')
    expect(snapshot(outside)).toEqual(before)
    expect(statSync(join(outside, 'writable.bin')).nlink).toBe(1)
    expect(statSync(join(r.path, 'writable.bin')).ino).not.toBe(statSync(join(outside, 'writable.bin')).ino)
    expect(mode(join(r.path, 'writable.bin'))).toBe(0o444)
    expect(statSync(join(r.path, 'ready.bin')).ino).toBe(statSync(join(outside, 'ready.bin')).ino)
    expect((await store.verify('a', 'v1'))[0]).toMatchObject({ ok: true, files: 2 })
    expect(readdirSync(r.path).sort()).toEqual(['manifest.json', 'ready.bin', 'writable.bin'])
  })

  it('a finalize killed after making the tree read-only, or while copying a linked file, can be run again', async () => {
    const root = makeTemp()
    const store = new ModelStore(root)
    const dir = await store.stage('a', 'v1')
    writeTree(dir, { 'model.onnx': 'w', 'tok/vocab.txt': 'a\n', 'model.onnx.modelforge-copy-99999-0123abcd.tmp': 'half a copy' })
    for (const p of [join(dir, 'tok', 'vocab.txt'), join(dir, 'model.onnx'), join(dir, 'tok'), dir]) chmodSync(p, 0o555)
    const r = await store.finalize('a', 'v1')
    expect(r.files).toBe(2)
    expect(readdirSync(r.path).sort()).toEqual(['manifest.json', 'model.onnx', 'tok'])
    expect(mode(r.path)).toBe(0o555)
  })
})

describe('removal', () => {
  it('restoreWriteBits gives every directory of a tree its owner bits back, files keep theirs; prune, delete and gc remove read-only trees', async () => {
    const root = makeTemp()
    const store = new ModelStore(root)
    for (const v of ['v1', 'v2', 'v3']) await publish(store, 'a', v, { 'model.onnx': v, 'tok/deep/x': v })
    const v1 = store.versionDir('a', 'v1')
    await restoreWriteBits(v1)
    expect([mode(v1), mode(join(v1, 'tok')), mode(join(v1, 'tok', 'deep')), mode(join(v1, 'model.onnx'))]).toEqual([0o755, 0o755, 0o755, 0o444])
    await store.promote('a', 'v3')
    expect((await store.prune('a', { keep: 1 })).removed).toEqual(['v2', 'v1'])
    await publish(store, 'a', 'v4')
    await store.delete('a', 'v3')
    // What a finalize killed just before its rename leaves: a read-only staging directory.
    const staged = await store.stage('a', 'v5')
    writeTree(staged, { 'sub/x': 'x' })
    for (const p of [join(staged, 'sub', 'x'), join(staged, 'sub'), staged]) chmodSync(p, 0o555)
    expect((await store.gc({ olderThanMs: 0 })).removed.map((x) => x.kind)).toEqual(['staging'])
    expect(readdirSync(join(root, 'a', 'versions'))).toEqual(['v4'])
  })
})

describe('verify warns about modes and group', () => {
  it('a version made writable, or holding an entry of another group, is ok with warnings; a Python-made (writable) one too', async () => {
    const root = makeTemp()
    const store = new ModelStore(root)
    const r = await publish(store, 'a', 'v1', { 'model.onnx': 'w', 'tok/vocab.txt': 'a\n' })
    chmodSync(join(r.path, 'model.onnx'), 0o644)
    chmodSync(join(r.path, 'tok'), 0o755)
    let [report] = await store.verify('a', 'v1')
    expect(report).toMatchObject({ ok: true, problems: [] })
    expect(report!.warnings).toEqual([`writable: 2 entries (model.onnx, tok): a finalized version must be read-only, and \`chmod -R a-w ${r.path}\` makes it so again`])
    chmodSync(join(r.path, 'model.onnx'), 0o444)
    chmodSync(join(r.path, 'tok'), 0o555)
    if (asRoot) {
      chownSync(join(r.path, 'tok', 'vocab.txt'), -1, 65534)
      ;[report] = await store.verify('a', 'v1')
      const rootGroup = (await findGroup(String(statSync(root).gid)))!
      expect(report!.warnings).toEqual([`group: 1 entry (tok/vocab.txt) is of ${(await findGroup('65534'))?.name ?? 'gid 65534'} (gid 65534), not of the store's group ${rootGroup.name} (gid ${rootGroup.gid}): \`modelforge store init --store ${root}\` gives them the store's group`])
      chownSync(join(r.path, 'tok', 'vocab.txt'), -1, statSync(root).gid)
    }
    expect((await store.verify('a', 'v1'))[0]!.warnings).toBeUndefined()
    writeLegacyAgent(root, 'py', [{ version: 'v1', files: { 'model.onnx': 'x' } }], 'absolute-link')
    const [legacy] = await store.verify('py', 'v1')
    expect(legacy).toMatchObject({ ok: true })
    expect(legacy!.warnings?.[0]).toMatch(/^writable: 3 entries \(\., manifest\.json, model\.onnx\)/)
  })
})

describe('a store a group shares (its root setgid)', () => {
  it('directories the store creates get their parent mode whatever the umask: agent, versions/, staging, .modelforge, locks; the audit log group rw', async () => {
    const root = makeTemp()
    chmodSync(root, 0o2775)
    const store = new ModelStore(root)
    const r = await withUmask(0o077, async () => {
      const dir = await store.stage('a', 'v1')
      expect(mode(dir)).toBe(0o2775)
      writeTree(dir, { 'model.onnx': 'w', 'tok/vocab.txt': 'a\n' })
      return store.finalize('a', 'v1')
    })
    for (const p of [join(root, 'a'), join(root, 'a', 'versions'), join(root, '.modelforge'), join(root, '.modelforge', 'locks')]) expect(mode(p), p).toBe(0o2775)
    expect(mode(join(root, '.modelforge', 'audit.jsonl'))).toBe(0o664)
    // The trainer's umask gave its files and tok/ nothing for group and others: the version still reads.
    expect([mode(r.path), mode(join(r.path, 'tok')), mode(join(r.path, 'model.onnx'))]).toEqual([0o2555, 0o2555, 0o444])
  })

  it('a store no group shares keeps the umask\'s modes, as before', async () => {
    const root = makeTemp()
    chmodSync(root, 0o755)
    const store = new ModelStore(root)
    const dir = await withUmask(0o077, () => store.stage('a', 'v1'))
    expect([mode(join(root, 'a')), mode(join(root, 'a', 'versions')), mode(dir)]).toEqual([0o700, 0o700, 0o700])
  })
})

describe('store init', () => {
  const group = 'nogroup'

  it.skipIf(!asRoot)('creates a root for a group: setgid and group rwx on its directories, the audit log group rw; a second run changes nothing', async () => {
    const nogroup = (await findGroup(group))!
    const root = join(makeTemp(), 'store')
    const store = new ModelStore(root)
    const first = await store.init({ group })
    expect(first).toMatchObject({ root, group: { gid: nogroup.gid, name: group }, created: true, skipped: [] })
    expect(first.changed.map((c) => `${c.change} ${c.path.slice(root.length) || '/'} ${c.from ?? ''}->${c.to}`)).toEqual([
      'created / ->0755', 'group / root (gid 0)->nogroup (gid 65534)', 'mode / 0755->2775',
      'created /.modelforge ->2775', 'created /.modelforge/locks ->2775', 'created /.modelforge/audit.jsonl ->0664',
    ])
    for (const p of [root, join(root, '.modelforge'), join(root, '.modelforge', 'locks'), join(root, '.modelforge', 'audit.jsonl')]) expect(statSync(p).gid, p).toBe(nogroup.gid)
    const before = snapshot(root)
    expect((await store.init({ group })).changed).toEqual([])
    expect((await store.init()).changed).toEqual([])
    expect((await store.init({ group: String(nogroup.gid) })).changed).toEqual([])
    expect(snapshot(root)).toEqual(before)
  })

  it.skipIf(!asRoot)('adopts a store: its own directories get group and mode; what the agents hold only the group (versions stay read-only); a linked file is left alone', async () => {
    const root = makeTemp()
    const store = new ModelStore(root)
    await publish(store, 'a', 'v1', { 'model.onnx': 'w', 'tok/vocab.txt': 'a\n' })
    const src = makeTemp('mf-src-')
    writeTree(src, { 'linked.bin': 'shared inode' })
    chmodSync(join(src, 'linked.bin'), 0o444)
    const imported = await store.import('a', 'v2', src, { link: true })
    expect(imported.linked).toBe(1)
    writeTree(await store.stage('a', 'v3'), { 'half.bin': 'h' })
    symlinkSync('versions/v1', join(root, 'a', 'stable'))
    const r = await store.init({ group })
    const nogroup = (await findGroup(group))!
    expect(r.skipped).toEqual([{ path: join(imported.path, 'linked.bin'), reason: 'it has 2 links: its group is also that of its names outside the store' }])
    const groups = r.changed.filter((c) => c.entries !== undefined).map((c) => `${c.path.slice(root.length)} ${c.entries}`)
    expect(groups).toEqual(['/a/versions/v1 5', '/a/versions/v2 2', '/a/versions/v3.tmp 2'])
    // Owner and other bits stay: the root is a 0700 temporary directory.
    for (const [p, m] of [[root, 0o2770], [join(root, 'a'), 0o2775], [join(root, 'a', 'versions'), 0o2775]] as const) expect([mode(p), statSync(p).gid], p).toEqual([m, nogroup.gid])
    expect([mode(join(root, 'a', 'versions', 'v1')), mode(join(root, 'a', 'versions', 'v1', 'model.onnx'))]).toEqual([0o555, 0o444])
    expect(statSync(join(root, 'a', 'versions', 'v1', 'tok', 'vocab.txt')).gid).toBe(nogroup.gid)
    expect(statSync(join(src, 'linked.bin')).gid).toBe(0)
    // verify: every version is of the store's group now, but the linked file, which it names.
    const warnings = (await store.verify()).flatMap((x) => x.warnings ?? [])
    expect(warnings).toEqual([expect.stringMatching(/^group: 1 entry \(linked\.bin\) is of root \(gid 0\)/)])
    expect((await store.init({ group })).changed).toEqual([])
  })

  it('a group the system does not know is exit 2 naming it, and nothing is created; a root that is a file is exit 2', async () => {
    const root = join(makeTemp(), 'store')
    await expect(new ModelStore(root).init({ group: 'mf-no-such-group' })).rejects.toMatchObject({ exitCode: 2, code: 'GROUP_NOT_FOUND', message: 'There is no group mf-no-such-group on this system' })
    expect(() => statSync(root)).toThrow()
    mkdirSync(join(root, '..'), { recursive: true })
    writeFileSync(root, 'x')
    await expect(new ModelStore(root).init()).rejects.toMatchObject({ exitCode: 2, code: 'STORE_NOT_DIRECTORY' })
  })

  it('accounts: groups by name and number, user names, none for an unknown uid', async () => {
    expect(await findGroup('root')).toEqual({ gid: 0, name: 'root' })
    expect(await findGroup('0')).toEqual({ gid: 0, name: 'root' })
    expect(await findGroup('mf-no-such-group')).toBeNull()
    expect(await userName(0)).toBe('root')
    expect(await userName(65533)).toBeNull()
  })
})
