/**
 * Acceptance 6: every bad input gets a clear message, its exit code, and leaves the store unchanged.
 * Runs the real CLI (bin/run.js against dist/).
 */
import { spawnSync } from 'node:child_process'
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ModelStore } from '../../src/publish/store.js'
import { parseDuration, parseMetadata } from '../../src/publish/options.js'
import { cli, envelope, makeTemp, removeTemps, snapshot, writeTree } from '../helpers/store-helpers.js'

afterAll(removeTemps)

let root: string
let store: ModelStore

beforeAll(async () => {
  root = makeTemp()
  store = new ModelStore(root)
  writeTree(await store.stage('scout', 'v1'), { 'model.onnx': 'one', 'labels.json': '["a"]' })
  await store.finalize('scout', 'v1')
  await store.stage('scout', 'v2')
})

/** Runs the CLI and checks exit code, message, hint, --json envelope and that nothing changed. */
function refused(args: string[], exit: number, message: RegExp, options: { env?: Record<string, string>; json?: boolean } = {}): void {
  const before = snapshot(root)
  const dash = args.indexOf('--')
  const withStore = dash < 0 ? [...args, '--store', root] : [...args.slice(0, dash), '--store', root, ...args.slice(dash)]
  const human = cli(withStore, options)
  expect(human.code, human.stderr).toBe(exit)
  expect(human.stderr).toMatch(message)
  expect(human.stderr).toMatch(/\nHint: \S/)
  expect(human.stdout).toBe('')
  if (options.json) {
    const json = cli(dash < 0 ? [...withStore, '--json'] : [...args.slice(0, dash), '--store', root, '--json', ...args.slice(dash)], options)
    expect(json.code).toBe(exit)
    const env = envelope(json)
    expect(env.status).toBe(exit)
    expect(env.error!.message).toMatch(message)
    expect(env.error!.hint).toBeTruthy()
  }
  expect(snapshot(root)).toEqual(before)
}

/**
 * The same check in-process through the library (the CLI maps every error the same way, which the CLI
 * cases above show once per exit code); keeps this file fast on two shared cores.
 */
async function refusedLib(fn: () => Promise<unknown>, exit: number, message: RegExp): Promise<void> {
  const before = snapshot(root)
  await expect(fn()).rejects.toMatchObject({ exitCode: exit, message: expect.stringMatching(message), hint: expect.stringMatching(/\S/) })
  expect(snapshot(root)).toEqual(before)
}

describe('bad names (exit 2)', () => {
  it.each([
    ['..', /Invalid agent name "\.\.": "\.\." is reserved/],
    ['a/b', /path separator/],
    ['.hidden', /starts with "\."/],
    ['v1.tmp', /ends in "\.tmp"/],
    ['', /it is empty/],
    ['x'.repeat(129), /129 characters long/],
  ])('agent %j', async (name, why) => {
    await refusedLib(() => store.stage(name, 'v9'), 2, why)
    await refusedLib(() => store.finalize(name, 'v9'), 2, why)
    await refusedLib(() => store.promote(name, 'v1'), 2, why)
  })

  it('through the CLI, with the --json envelope', () => {
    refused(['store', 'stage', '../x', 'v9'], 2, /Invalid agent name "\.\.\/x": it contains a path separator/, { json: true })
    // Nothing escaped the store either (the snapshot only sees inside it).
    expect(existsSync(join(root, '..', 'x'))).toBe(false)
    refused(['store', 'stage', 'scout', '../../y'], 2, /Invalid version name "\.\.\/\.\.\/y": it contains a path separator/)
    expect(existsSync(join(root, 'y'))).toBe(false)
  })

  it.each([
    ['..', /"\.\." is reserved/],
    ['../../etc', /path separator/],
    ['.v1', /starts with "\."/],
    ['v2.tmp', /ends in "\.tmp"/],
    ['current', /"current" is reserved/],
    ['', /it is empty/],
    ['v'.repeat(200), /200 characters long/],
  ])('version %j', async (name, why) => {
    await refusedLib(() => store.stage('scout', name), 2, why)
    await refusedLib(() => store.finalize('scout', name), 2, why)
    await refusedLib(() => store.promote('scout', name), 2, why)
  })

  it('a leading dash (after --, so it is not a flag)', async () => {
    refused(['store', 'stage', '--', '-rf', 'v9'], 2, /Invalid agent name "-rf": it starts with "-"/)
    return refusedLib(() => store.stage('scout', '-v9'), 2, /Invalid version name "-v9": it starts with "-"/)
  })
})

describe('bad staged trees (exit 4)', () => {
  it('through the CLI, with the --json envelope', async () => {
    const dir = await store.stage('scout', 'cli1')
    writeTree(dir, { 'model.onnx': 'x' })
    symlinkSync('/etc/passwd', join(dir, 'passwd'))
    refused(['store', 'finalize', 'scout', 'cli1'], 4, /only regular files and directories can be published/, { json: true })
  })

  it.each([
    ['a symlink pointing inside', (dir: string) => symlinkSync('model.onnx', join(dir, 'alias.onnx')), /a symlink \(alias\.onnx\)/],
    ['a symlink pointing outside', (dir: string) => symlinkSync('/etc/passwd', join(dir, 'passwd')), /a symlink \(passwd\)/],
    ['a symlinked directory', (dir: string) => symlinkSync('/etc', join(dir, 'etc')), /a symlink \(etc\)/],
    ['a fifo', (dir: string) => spawnSync('mkfifo', [join(dir, 'sub', 'pipe')]), /a fifo \(sub\/pipe\)/],
    ['a file name with a newline', (dir: string) => writeFileSync(join(dir, 'bad\nname'), 'x'), /newline.*"bad\\nname"/],
    ['a file name with a backslash', (dir: string) => writeFileSync(join(dir, 'sub', 'back\\slash'), 'x'), /backslash.*"sub\/back\\\\slash"/],
    ['its own manifest.json', (dir: string) => writeFileSync(join(dir, 'manifest.json'), '{}'), /already holds a top-level manifest\.json/],
  ])('%s', async (_what, make, why) => {
    const version = `t${Math.random().toString(36).slice(2, 8)}`
    const dir = await store.stage('scout', version)
    writeTree(dir, { 'model.onnx': 'x', 'sub/ok.txt': 'ok' })
    make(dir)
    await refusedLib(() => store.finalize('scout', version), 4, why)
  })

  it('an unreadable file', async () => {
    // Root reads any file whatever its mode, so under root the finalize runs as user nobody, for whom a
    // root-owned mode-000 file is truly unreadable; other users meet the mode-000 file directly.
    const asRoot = process.getuid?.() === 0
    const own = asRoot ? makeTemp() : root
    const ownStore = new ModelStore(own)
    const dir = await ownStore.stage('scout', 'u1')
    writeTree(dir, { 'model.onnx': 'x', 'secret.bin': 'hidden' })
    chmodSync(join(dir, 'secret.bin'), 0)
    const ownDir = makeTemp()
    const dir2 = await new ModelStore(ownDir).stage('scout', 'u2')
    writeTree(dir2, { 'model.onnx': 'x', 'sub/deep/w.bin': 'hidden' })
    if (asRoot) {
      const chownTree = (p: string) => spawnSync('chown', ['-R', '65534:65534', p])
      chownTree(own)
      chownSync(join(dir, 'secret.bin'), 0, 0)
      chmodSync(own, 0o755)
      chownTree(ownDir)
      chownSync(join(dir2, 'sub', 'deep'), 0, 0)
      chmodSync(ownDir, 0o755)
    }
    const as = asRoot ? { uid: 65534, gid: 65534, env: { HOME: own } } : {}
    const before = snapshot(own)
    const r = cli(['store', 'finalize', 'scout', 'u1', '--store', own], as)
    expect(r.code, r.stderr).toBe(4)
    expect(r.stderr).toMatch(/Cannot read secret\.bin: EACCES/)
    expect(r.stderr).toMatch(/Hint: Make every file of the staged tree readable/)
    expect(snapshot(own)).toEqual(before)
    // An unreadable directory inside the tree: the same exit 4 naming it, not an internal error.
    // (the snapshots are taken while the directory is readable, so that they can see inside it)
    const beforeDir = snapshot(ownDir)
    chmodSync(join(dir2, 'sub', 'deep'), 0)
    const d = cli(['store', 'finalize', 'scout', 'u2', '--store', ownDir], as)
    chmodSync(join(dir2, 'sub', 'deep'), 0o755)
    expect(d.code, d.stderr).toBe(4)
    expect(d.stderr).toMatch(/Cannot read sub\/deep: EACCES/)
    expect(d.stderr).toMatch(/Hint: Make every file and directory of the staged tree readable/)
    expect(snapshot(ownDir)).toEqual(beforeDir)
  })
})

describe('conflicts and missing things', () => {
  it('a version that already exists (exit 5)', async () => {
    refused(['store', 'stage', 'scout', 'v1'], 5, /Version v1 of agent scout already exists/, { json: true })
    mkdirSync(join(root, 'scout', 'versions', 'v1.tmp'))
    try {
      await refusedLib(() => store.finalize('scout', 'v1'), 5, /already exists/)
    } finally {
      spawnSync('rmdir', [join(root, 'scout', 'versions', 'v1.tmp')])
    }
  })

  it('finalize without stage (exit 6)', async () => {
    refused(['store', 'finalize', 'scout', 'v7'], 6, /Version v7 of agent scout is not staged/, { json: true })
    await refusedLib(() => store.finalize('newagent', 'v1'), 6, /is not staged/)
    await refusedLib(() => new ModelStore(join(root, 'absent')).finalize('a', 'v1'), 6, /is not staged/)
  })

  it('unknown agent or version (exit 6)', async () => {
    refused(['store', 'show', 'nobody'], 6, /Agent nobody does not exist/)
    await refusedLib(() => store.manifest('scout', 'v9'), 6, /Version v9 of agent scout does not exist/)
    await refusedLib(() => store.promote('scout', 'v9'), 6, /does not exist/)
    await refusedLib(() => store.rollback('nobody'), 6, /Agent nobody does not exist/)
    await refusedLib(() => store.prune('nobody'), 6, /Agent nobody does not exist/)
  })

  it('bad flag values (exit 2)', () => {
    refused(['store', 'finalize', 'scout', 'v2', '--metadata', 'novalue'], 2, /expected key=value/)
    expect(() => parseMetadata([], join(root, 'missing.json'))).toThrow(/metadata file .*missing\.json does not exist/)
    expect(() => parseDuration('3 fortnights')).toThrow(/Invalid duration/)
    expect([parseDuration('0'), parseDuration('30m'), parseDuration('24h'), parseDuration('1.5s')]).toEqual([0, 1_800_000, 86_400_000, 1500])
  })
})

describe('a store root that is a file (exit 2)', () => {
  it('is refused by every command, unchanged', async () => {
    const file = join(makeTemp(), 'store-file')
    writeFileSync(file, 'not a store')
    const r = cli(['store', 'stage', 'scout', 'v1', '--store', file])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain(`Store root ${file} is not a directory`)
    const s = new ModelStore(file)
    const calls: (() => Promise<unknown>)[] = [
      () => s.stage('scout', 'v1'), () => s.finalize('scout', 'v1'), async () => s.current('scout'), () => s.list(),
      () => s.verify(), () => s.gc(), () => s.promote('scout', 'v1'), () => s.prune('scout'),
    ]
    for (const call of calls) await expect(call()).rejects.toMatchObject({ exitCode: 2, code: 'STORE_NOT_DIRECTORY' })
    expect(readFileSync(file, 'utf8')).toBe('not a store')
  })
})

describe('damaged finalized versions (exit 4)', () => {
  it.each([
    ['malformed', (dir: string) => writeFileSync(join(dir, 'manifest.json'), '{"version": "v1", "checksum": '), /not valid JSON/],
    ['missing', (dir: string) => spawnSync('rm', [join(dir, 'manifest.json')]), /has no manifest\.json/],
    ['wrong shape', (dir: string) => writeFileSync(join(dir, 'manifest.json'), '{"version": "v1", "checksum": "abc"}'), /"checksum" is not 64 lowercase hex digits/],
  ])('%s manifest.json', async (_what, damage, why) => {
    const own = makeTemp()
    const s = new ModelStore(own)
    writeTree(await s.stage('scout', 'v1'), { 'model.onnx': 'x' })
    const { path } = await s.finalize('scout', 'v1')
    damage(path)
    const before = snapshot(own)
    const r = cli(['store', 'verify', '--store', own])
    expect(r.code, r.stderr).toBe(4)
    expect(r.stderr).toMatch(why)
    await expect(s.manifest('scout', 'v1')).rejects.toMatchObject({ exitCode: 4, message: expect.stringMatching(why) })
    await expect(s.manifest('scout')).rejects.toMatchObject({ exitCode: 4 })
    expect((await s.verify('scout', 'v1'))[0]!.problems[0]).toMatchObject({ kind: 'manifest', message: expect.stringMatching(why) })
    await expect(s.promote('scout', 'v1', 'stable')).rejects.toMatchObject({ exitCode: 4 })
    expect(snapshot(own)).toEqual(before)
  })
})
