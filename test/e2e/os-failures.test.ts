/**
 * Ordinary operating-system failures, made for real, are never exit 1 "a bug in modelforge": permission
 * denied (a uid-65534 run against root-owned modes), an immutable file (chattr +i, which stops root too), a
 * read-only filesystem and a full disk (small tmpfs mounts), a directory where a file belongs. Each names
 * the path, what failed and the command that was running, gives a hint, has its documented exit code, and
 * leaves what was stored as it was. Cases the machine cannot make (not root, no mount, no inode flags) are
 * skipped with the reason in their name.
 */
import { spawnSync } from 'node:child_process'
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { asRoot, tmpfs, unmountAll } from '../helpers/mounts.js'
import { cli, makeTemp, removeTemps, snapshot, writeTree, type CliResult } from '../helpers/store-helpers.js'

const frozen: string[] = []

afterAll(() => {
  for (const p of frozen) spawnSync('chattr', ['-i', p])
  unmountAll()
  removeTemps()
})

const probeMount = tmpfs('64k')
const probeDir = makeTemp()
writeFileSync(join(probeDir, 'f'), '')
const canFreeze = spawnSync('chattr', ['+i', join(probeDir, 'f')]).status === 0 && spawnSync('chattr', ['-i', join(probeDir, 'f')]).status === 0

function json(r: CliResult): { status: number; error: { code: string; message: string; hint: string; details?: Record<string, unknown> } } {
  return JSON.parse(r.stdout)
}

/**
 * The common promises: exit code, code, the path named, what modelforge was doing (the command, or the
 * step that knew better), a hint, never exit 1.
 */
function expectOsFailure(r: CliResult, exit: number, code: string, path: string, doing: string): void {
  expect(r.code, r.stdout + r.stderr).toBe(exit)
  const { error } = json(r)
  expect(error.code).toBe(code)
  expect(error.message).toContain(path)
  // A command name means the command's own context; otherwise the step's words, e.g. "locking --out".
  const command = /^(store \w+|export|fetch|validate|inspect|toy-store)$/.test(doing)
  expect(error.message).toContain(` while ${command ? `running \`modelforge ${doing}\`` : doing}`)
  expect(error.hint).toBeTruthy()
  expect(error.hint).not.toMatch(/bug in modelforge/)
}

/** A store with scout v1 published, made by root. */
function storeWithV1(root: string): void {
  const staged = cli(['store', 'stage', 'scout', 'v1', '--store', root])
  expect(staged.code, staged.stderr).toBe(0)
  writeTree(staged.stdout.trim(), { 'model.onnx': 'weights of v1' })
  expect(cli(['store', 'finalize', 'scout', 'v1', '--store', root]).code).toBe(0)
}

describe('operating-system failures are not bugs', () => {
  it.skipIf(!asRoot)('permission denied (uid 65534, root-owned store): exit 7 PERMISSION_DENIED naming the directory, store unchanged', () => {
    const parent = makeTemp()
    chmodSync(parent, 0o755)
    const root = join(parent, 'store')
    storeWithV1(root)
    const before = snapshot(root)
    const r = cli(['store', 'stage', 'scout', 'v2', '--store', root, '--json'], { uid: 65534, gid: 65534, env: { HOME: parent } })
    expectOsFailure(r, 7, 'PERMISSION_DENIED', join(root, 'scout', 'versions'), 'store stage')
    expect(json(r).error.message).toMatch(/permission denied \(EACCES\)/)
    expect(snapshot(root)).toEqual(before)
    // The human form says the same on stderr, with the hint.
    const human = cli(['store', 'stage', 'scout', 'v2', '--store', root], { uid: 65534, gid: 65534, env: { HOME: parent } })
    expect(human.code).toBe(7)
    expect(human.stderr).toMatch(/^Error: Cannot .* permission denied \(EACCES\) while running `modelforge store stage`\nHint: /)
  })

  it.skipIf(!canFreeze)('an immutable version directory (chattr +i): prune exits 7 naming it, and no version is lost', () => {
    const root = join(makeTemp(), 'store')
    storeWithV1(root)
    for (const v of ['v2', 'v3']) {
      writeTree(cli(['store', 'stage', 'scout', v, '--store', root]).stdout.trim(), { 'model.onnx': v })
      expect(cli(['store', 'finalize', 'scout', v, '--store', root]).code).toBe(0)
    }
    const v1 = join(root, 'scout', 'versions', 'v1')
    expect(spawnSync('chattr', ['+i', v1]).status).toBe(0)
    frozen.push(v1)
    const before = snapshot(root)
    const r = cli(['store', 'prune', 'scout', '--keep', '1', '--store', root, '--json'])
    expectOsFailure(r, 7, 'PERMISSION_DENIED', v1, 'store prune')
    expect(json(r).error.message).toMatch(/operation not permitted/)
    // The immutable v1 is still whole; nothing else is half-deleted.
    expect(snapshot(root).filter((l) => l.includes('versions/v1'))).toEqual(before.filter((l) => l.includes('versions/v1')))
    expect(cli(['store', 'verify', '--store', root]).code).toBe(0)
  })

  it.skipIf(!probeMount)('a read-only filesystem: export --out there exits 7 READ_ONLY_FILESYSTEM', () => {
    const ro = tmpfs('1m', true)!
    const out = join(ro, 'out')
    const r = cli(['export', 'fixtures/hf-tiny/tiny-bert', '--out', out, '--exporter', 'native', '--json'])
    expectOsFailure(r, 7, 'READ_ONLY_FILESYSTEM', out, 'locking --out')
    expect(json(r).error.message).toMatch(/read-only filesystem \(EROFS\)/)
  })

  it.skipIf(!probeMount)('a full disk: finalize exits 3 DISK_FULL naming the file it could not write, and leaves no version and current as it was', () => {
    const disk = tmpfs('256k')!
    const root = join(disk, 'store')
    storeWithV1(root)
    const staged = cli(['store', 'stage', 'scout', 'v2', '--store', root]).stdout.trim()
    writeTree(staged, { 'model.onnx': 'v2' })
    // Fill the filesystem to the last block, so that finalize's manifest.json cannot be written.
    spawnSync('dd', ['if=/dev/zero', `of=${join(disk, 'filler')}`, 'bs=4k'])
    const before = snapshot(root)
    const r = cli(['store', 'finalize', 'scout', 'v2', '--store', root, '--json'])
    // The first write that finds the disk full is the agent's lock (before any hashing): it is named.
    expectOsFailure(r, 3, 'DISK_FULL', join(root, '.modelforge', 'locks', 'scout.lock'), 'store finalize')
    expect(json(r).error.message).toMatch(/no space left on the device \(ENOSPC\)/)
    // Nothing was changed, nothing half-written left behind (no temporary lock file either).
    expect(snapshot(root)).toEqual(before)
    // Room again: the same finalize now succeeds.
    spawnSync('rm', [join(disk, 'filler')])
    expect(cli(['store', 'finalize', 'scout', 'v2', '--store', root]).code).toBe(0)
  })

  it.skipIf(!probeMount)('a full disk while writing a file (writeFileDurable): the error names the file, and no half-written file stays', async () => {
    const { writeFileDurable } = await import('../../src/lib/fs.js')
    const disk = tmpfs('64k')!
    spawnSync('dd', ['if=/dev/zero', `of=${join(disk, 'filler')}`, 'bs=4k'])
    const file = join(disk, 'manifest.json')
    const err = await writeFileDurable(file, Buffer.alloc(256 * 1024, 1)).catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'ENOSPC', path: file })
    expect(spawnSync('test', ['-e', file]).status).not.toBe(0)
  })

  it('a directory where a file belongs: --metadata-file <dir> exits 2 IS_A_DIRECTORY naming it', () => {
    const root = join(makeTemp(), 'store')
    storeWithV1(root)
    const dir = makeTemp()
    mkdirSync(join(dir, 'meta.json'))
    writeTree(cli(['store', 'stage', 'scout', 'v2', '--store', root]).stdout.trim(), { 'model.onnx': 'v2' })
    const before = snapshot(root)
    const r = cli(['store', 'finalize', 'scout', 'v2', '--store', root, '--metadata-file', join(dir, 'meta.json'), '--json'])
    expectOsFailure(r, 2, 'IS_A_DIRECTORY', join(dir, 'meta.json'), 'reading the --metadata-file')
    expect(snapshot(root)).toEqual(before)
  })
})
