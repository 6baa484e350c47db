/**
 * Acceptance: trainers and agents in separate Unix accounts, with real accounts (docs/store.md, "Trainers
 * and agents in separate accounts"). A group is created for the test; `store init --group` sets the store
 * up; a trainer (uid 65534, the group as its only group, umask 077) stages, writes and finalizes; a second
 * trainer of the group (uid 65533) publishes into the same agent; an agent outside the group (uid 65532)
 * reads `store current` and the files; nobody but root writes into a finalized version; prune, gc and
 * delete remove versions as their owner and refuse the other trainer, naming the owner, with nothing
 * changed. Creating groups and switching uids needs root and groupadd: skipped otherwise.
 */
import { spawnSync } from 'node:child_process'
import { chmodSync, existsSync, lstatSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cli, envelope, makeTemp, removeTemps, snapshot, type CliResult } from '../helpers/store-helpers.js'

// groupadd and groupdel live in sbin, which a CI shell's PATH may leave out.
const adminEnv = { ...process.env, PATH: [process.env.PATH, '/usr/local/sbin', '/usr/sbin', '/sbin'].filter(Boolean).join(':') }
const canManageGroups = process.getuid?.() === 0 && spawnSync('groupadd', ['--help'], { env: adminEnv }).status === 0
const group = `mf-trainers-${Math.random().toString(36).slice(2, 8)}`
let gid = -1
let madeGroup = false

interface Account { uid: number; gid: number }
const TRAINER = { uid: 65534, gid: -1 }
const OTHER_TRAINER = { uid: 65533, gid: -1 }
const AGENT = { uid: 65532, gid: 65532 }

let parent: string
let root: string
let home: string

beforeAll(() => {
  if (!canManageGroups) return
  const add = spawnSync('groupadd', [group], { encoding: 'utf8', env: adminEnv })
  expect(add.status, add.stderr).toBe(0)
  madeGroup = true
  gid = Number(spawnSync('getent', ['group', group], { encoding: 'utf8', env: adminEnv }).stdout.split(':')[2])
  TRAINER.gid = gid
  OTHER_TRAINER.gid = gid
  // Every account must reach the store: the temporary directories are root's and 0700.
  parent = makeTemp('mf-accounts-')
  chmodSync(parent, 0o755)
  root = join(parent, 'store')
  // oclif reads its data directory under HOME; every account gets one it may write.
  home = makeTemp('mf-home-')
  chmodSync(home, 0o1777)
})

afterAll(() => {
  removeTemps()
  if (madeGroup) spawnSync('groupdel', [group], { env: adminEnv })
})

/** The CLI as `account`, with a umask (the child inherits this process's). */
function as(account: Account, args: string[], umask = 0o022): CliResult {
  const old = process.umask(umask)
  try {
    // An account made as a bare uid has no passwd entry and, as a service would run it, no $SHELL.
    return cli([...args, '--store', root], { uid: account.uid, gid: account.gid, env: { HOME: home, SHELL: undefined } })
  } finally {
    process.umask(old)
  }
}

/** A shell script as `account` ($1... are args). */
function sh(account: Account, script: string, ...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('sh', ['-c', script, 'sh', ...args], { uid: account.uid, gid: account.gid, encoding: 'utf8', env: { PATH: process.env.PATH, HOME: home } })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

/** What `account` gets trying to create or overwrite `file`: 'ok' or the errno code. */
function tryWrite(account: Account, file: string): string {
  const script = `try { require('fs').writeFileSync(${JSON.stringify(file)}, 'x'); console.log('ok') } catch (e) { console.log(e.code) }`
  return spawnSync(process.execPath, ['-e', script], { uid: account.uid, gid: account.gid, encoding: 'utf8' }).stdout.trim()
}

/** Stages `version` as the trainer (umask 077), writes its files as the trainer, finalizes it. */
function publishAs(account: Account, version: string): void {
  const staged = as(account, ['store', 'stage', 'scout', version], 0o077)
  expect(staged.code, staged.stderr).toBe(0)
  const dir = staged.stdout.trim()
  // The stage's mode does not depend on the trainer's umask: the group may write there.
  expect([lstatSync(dir).mode & 0o7777, lstatSync(dir).gid]).toEqual([0o2775, gid])
  const write = sh(account, 'umask 077 && mkdir "$1/tok" && printf "weights of %s" "$2" > "$1/model.onnx" && printf "a\\nb\\n" > "$1/tok/vocab.txt"', dir, version)
  expect(write.status, write.stderr).toBe(0)
  const fin = as(account, ['store', 'finalize', 'scout', version], 0o077)
  expect(fin.code, fin.stderr).toBe(0)
}

const versionDir = (v: string): string => join(root, 'scout', 'versions', v)
const mode = (p: string): number => lstatSync(p).mode & 0o7777

describe.skipIf(!canManageGroups)('trainers and agents in separate accounts', () => {
  it('store init --group: the store directories carry the group, setgid and group rwx; an unknown group is exit 2', () => {
    const none = cli(['store', 'init', '--group', 'mf-no-such-group', '--store', root])
    expect(none.code).toBe(2)
    expect(none.stderr).toMatch(/^Error: There is no group mf-no-such-group on this system\nHint: /)
    expect(existsSync(root)).toBe(false)
    const r = cli(['store', 'init', '--group', group, '--store', root, '--json'])
    expect(r.code, r.stderr).toBe(0)
    expect(envelope(r).result).toMatchObject({ root, created: true, group: { gid, name: group } })
    for (const p of [root, join(root, '.modelforge'), join(root, '.modelforge', 'locks')]) expect([mode(p), statSync(p).gid], p).toEqual([0o2775, gid])
    expect([mode(join(root, '.modelforge', 'audit.jsonl')), statSync(join(root, '.modelforge', 'audit.jsonl')).gid]).toEqual([0o664, gid])
    expect(envelope(cli(['store', 'init', '--group', group, '--store', root, '--json'])).result.changed).toEqual([])
  })

  it('a trainer stages and finalizes with umask 077; the version is read-only, of the group, and the trainer\'s', () => {
    for (const v of ['v1', 'v2', 'v3']) publishAs(TRAINER, v)
    for (const p of [join(root, 'scout'), join(root, 'scout', 'versions')]) expect([mode(p), statSync(p).gid], p).toEqual([0o2775, gid])
    const v1 = versionDir('v1')
    expect([mode(v1), mode(join(v1, 'tok')), mode(join(v1, 'model.onnx')), mode(join(v1, 'tok', 'vocab.txt')), mode(join(v1, 'manifest.json'))]).toEqual([0o2555, 0o2555, 0o444, 0o444, 0o444])
    for (const p of [v1, join(v1, 'tok'), join(v1, 'model.onnx'), join(v1, 'manifest.json')]) expect([statSync(p).uid, statSync(p).gid], p).toEqual([TRAINER.uid, gid])
  })

  it('a second trainer of the group publishes into the same agent (the staging area, the lock and the audit log are the group\'s)', () => {
    publishAs(OTHER_TRAINER, 'v4')
    expect(statSync(versionDir('v4')).uid).toBe(OTHER_TRAINER.uid)
    const users = readFileSync(join(root, '.modelforge', 'audit.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((x) => x.op === 'finalize').map((x) => x.user)
    expect(users).toEqual(['nobody', 'nobody', 'nobody', String(OTHER_TRAINER.uid)])
  })

  it('an agent outside the group reads store current and the files, verifies, and cannot write', () => {
    const current = as(AGENT, ['store', 'current', 'scout'])
    expect(current).toMatchObject({ code: 0, stdout: `${versionDir('v4')}\n` })
    const read = sh(AGENT, 'cat "$1/model.onnx" "$1/tok/vocab.txt"', current.stdout.trim())
    expect(read).toMatchObject({ status: 0, stdout: 'weights of v4a\nb\n' })
    const verify = as(AGENT, ['store', 'verify'])
    expect(verify.code, verify.stderr).toBe(0)
    expect(verify.stderr).not.toMatch(/Warning/)
    expect(as(AGENT, ['store', 'stage', 'scout', 'v9']).code).toBe(7)
  })

  it('nobody but root writes into a finalized version: not its owner, not the group', () => {
    for (const who of [TRAINER, OTHER_TRAINER]) {
      expect(tryWrite(who, join(versionDir('v1'), 'new.txt'))).toBe('EACCES')
      expect(tryWrite(who, join(versionDir('v1'), 'model.onnx'))).toBe('EACCES')
      expect(tryWrite(who, join(versionDir('v1'), 'tok', 'new.txt'))).toBe('EACCES')
    }
    expect(tryWrite({ uid: 0, gid: 0 }, join(versionDir('v1'), 'new.txt'))).toBe('ok')
    const verify = cli(['store', 'verify', 'scout', 'v1', '--store', root])
    expect(verify.code).toBe(4)
    expect(verify.stderr).toMatch(/extra file: new\.txt/)
    rmSync(join(versionDir('v1'), 'new.txt'))
    expect(cli(['store', 'verify', '--store', root]).code).toBe(0)
  })

  it('prune, gc and delete refuse another account, naming the version, its owner and who tried; nothing changes', () => {
    // What an interrupted prune of v1 would leave: the version renamed aside, still read-only, the trainer's.
    renameSync(versionDir('v1'), versionDir('.prune-v1-0123abcd.tmp'))
    // A stale staging directory of the trainer, with a directory only the trainer may write to.
    const staged = as(TRAINER, ['store', 'stage', 'scout', 'v5']).stdout.trim()
    expect(sh(TRAINER, 'umask 022 && mkdir "$1/sub" && echo x > "$1/sub/x"', staged).status).toBe(0)
    const before = snapshot(root)
    const del = as(OTHER_TRAINER, ['store', 'delete', 'scout', 'v2', '--json'])
    expect(del.code).toBe(7)
    expect(envelope(del).error).toMatchObject({
      code: 'PERMISSION_DENIED',
      message: `Cannot delete scout/v2: it belongs to uid 65534 (nobody), and this is uid ${OTHER_TRAINER.uid}; a finalized version is read-only, and only its owner or root may make it writable again to remove it`,
      hint: 'Run `modelforge store delete` as uid 65534 (nobody) or as root. Nothing was changed.',
      details: { agent: 'scout', version: 'v2', owner: { uid: 65534, user: 'nobody' }, by: { uid: OTHER_TRAINER.uid } },
    })
    const dry = as(OTHER_TRAINER, ['store', 'delete', 'scout', 'v2', '--dry-run'])
    expect(dry.code).toBe(7)
    const prune = as(OTHER_TRAINER, ['store', 'prune', 'scout', '--keep', '1'])
    expect(prune.code).toBe(7)
    expect(prune.stderr).toMatch(/^Error: Cannot prune scout\/v3: it belongs to uid 65534 \(nobody\), and this is uid 65533; /m)
    const gc = as(OTHER_TRAINER, ['store', 'gc', '--older-than', '0'])
    expect(gc.code).toBe(7)
    expect(gc.stderr).toMatch(/^Error: Cannot gc scout\/versions\/\.prune-v1-0123abcd\.tmp \(what an interrupted prune or delete left\): it belongs to uid 65534 \(nobody\), and this is uid 65533; /m)
    expect(snapshot(root)).toEqual(before)
    // Without the leftover, the staging directory is what it refuses: one of its directories is the trainer's alone.
    renameSync(versionDir('.prune-v1-0123abcd.tmp'), versionDir('v1'))
    const gcStaging = as(OTHER_TRAINER, ['store', 'gc', '--older-than', '0'])
    expect(gcStaging.code).toBe(7)
    expect(gcStaging.stderr).toMatch(/^Error: Cannot gc the staging directory scout\/versions\/v5\.tmp: it \(its directory sub\) belongs to uid 65534 \(nobody\), and this is uid 65533; only its owner or root may remove what it holds/m)
    renameSync(versionDir('v1'), versionDir('.prune-v1-0123abcd.tmp'))
    expect(snapshot(root)).toEqual(before)
  })

  it('the owner removes them: gc (a read-only leftover and its staging directory), delete, prune', () => {
    const gc = as(TRAINER, ['store', 'gc', '--older-than', '0', '--json'])
    expect(gc.code, gc.stdout).toBe(0)
    expect(envelope(gc).result.removed.map((x: { kind: string }) => x.kind).sort()).toEqual(['pruned', 'staging'])
    expect(as(TRAINER, ['store', 'delete', 'scout', 'v2']).code).toBe(0)
    const prune = as(TRAINER, ['store', 'prune', 'scout', '--keep', '1', '--json'])
    expect(prune.code, prune.stdout).toBe(0)
    expect(envelope(prune).result).toMatchObject({ removed: ['v3'], kept: ['v4'] })
    expect(readdirSync(join(root, 'scout', 'versions'))).toEqual(['v4'])
  })

  it('a finalize killed after making its tree read-only is run again by the trainer; import --link links a read-only source', () => {
    const staged = as(TRAINER, ['store', 'stage', 'scout', 'v6']).stdout.trim()
    // The state a finalize killed between makeReadOnly and its rename leaves: every write bit gone.
    expect(sh(TRAINER, 'echo w > "$1/model.onnx" && mkdir "$1/tok" && echo a > "$1/tok/v" && chmod -R a-w "$1"', staged).status).toBe(0)
    const fin = as(TRAINER, ['store', 'finalize', 'scout', 'v6'])
    expect(fin.code, fin.stderr).toBe(0)
    const src = join(home, `src-${process.pid}`)
    expect(sh(TRAINER, 'mkdir "$1" && echo linked > "$1/model.onnx" && chmod -R a=rX "$1"', src).status).toBe(0)
    const imported = as(TRAINER, ['store', 'import', 'scout', 'v7', src, '--link', '--json'])
    expect(imported.code, imported.stdout).toBe(0)
    expect(envelope(imported).result).toMatchObject({ files: 1, linked: 1 })
    const verify = cli(['store', 'verify', '--store', root])
    expect(verify.code, verify.stderr).toBe(0)
    expect(verify.stderr).not.toMatch(/Warning/)
    // And a version made writable again by its owner is reported, as a warning.
    chmodSync(join(versionDir('v6'), 'model.onnx'), 0o644)
    const warned = cli(['store', 'verify', '--store', root])
    expect(warned.code).toBe(0)
    expect(warned.stderr).toMatch(/^Warning: scout\/v6: writable: 1 entry \(model\.onnx\): a finalized version must be read-only/m)
  })
})
