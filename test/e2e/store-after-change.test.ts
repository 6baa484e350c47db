/**
 * A failure after the store has changed never reads as "nothing happened". When the audit log cannot be
 * written once a version is in place or a channel moved (here: an immutable log, which stops root too), the
 * command exits 0, says what was done and what failed (`Warning:` on stderr, `warnings` in --json), and the
 * change stands. When current cannot be moved after the version was renamed into place, the error says the
 * version is finalized and how to publish it.
 */
import { spawnSync } from 'node:child_process'
import { readlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { cli, makeTemp, removeTemps } from '../helpers/store-helpers.js'

let root: string
const immutable: string[] = []
const s = (args: string[]) => cli([...args, '--store', root])

function chattr(flag: '+i' | '-i', path: string): boolean {
  return spawnSync('chattr', [flag, path]).status === 0
}

function publish(version: string): void {
  const dir = s(['store', 'stage', 'scout', version]).stdout.trim()
  writeFileSync(join(dir, 'model.onnx'), `weights of ${version}`)
  expect(s(['store', 'finalize', 'scout', version]).code).toBe(0)
}

function freeze(path: string): void {
  expect(chattr('+i', path), `chattr +i ${path}`).toBe(true)
  immutable.push(path)
}

beforeEach(() => {
  root = join(makeTemp(), 'store')
  publish('v1')
})

afterEach(() => {
  for (const p of immutable.splice(0)) chattr('-i', p)
  removeTemps()
})

// chattr needs a filesystem with inode flags (ext4, xfs, btrfs); tmpfs and overlayfs lack them.
const probe = makeTemp()
writeFileSync(join(probe, 'f'), '')
const canFreeze = chattr('+i', join(probe, 'f')) && chattr('-i', join(probe, 'f'))

describe.skipIf(!canFreeze)('after the store changed (chattr +i on the audit log)', () => {
  const audit = () => join(root, '.modelforge', 'audit.jsonl')
  const current = () => readlinkSync(join(root, 'scout', 'current'))

  it('finalize: exit 0, the version is published, and a warning says the audit record is missing', () => {
    const dir = s(['store', 'stage', 'scout', 'v2']).stdout.trim()
    writeFileSync(join(dir, 'model.onnx'), 'v2')
    freeze(audit())
    const r = s(['store', 'finalize', 'scout', 'v2'])
    expect(r.code, r.stderr).toBe(0)
    expect(current()).toBe('versions/v2')
    expect(r.stdout).toMatch(/Finalized scout\/v2/)
    expect(r.stderr).toMatch(/Warning: scout\/v2 was finalized and current points to it, but its audit record could not be written to .*audit\.jsonl \(EPERM.*\); `store rollback` will not know of this change/)
  })

  it('finalize --json: exit 0 and the warnings array in the one JSON result', () => {
    const dir = s(['store', 'stage', 'scout', 'v2']).stdout.trim()
    writeFileSync(join(dir, 'model.onnx'), 'v2')
    freeze(audit())
    const r = s(['store', 'finalize', 'scout', 'v2', '--json'])
    expect(r.code).toBe(0)
    expect(r.stderr).toBe('')
    const body = JSON.parse(r.stdout)
    expect(body.status).toBe(0)
    expect(body.result).toMatchObject({ version: 'v2', published: true, previous: 'v1' })
    expect(body.result.warnings).toHaveLength(1)
    expect(body.result.warnings[0]).toMatch(/audit record could not be written/)
  })

  it('promote, rollback and prune: each change stands, each says what was not recorded', () => {
    publish('v2')
    publish('v3')
    freeze(audit())
    const promote = s(['store', 'promote', 'scout', 'v1'])
    expect(promote.code, promote.stderr).toBe(0)
    expect(current()).toBe('versions/v1')
    expect(promote.stderr).toMatch(/Warning: current of scout now points to v1, but its audit record could not be written/)
    const rollback = s(['store', 'rollback', 'scout', '--json'])
    expect(rollback.code, rollback.stdout).toBe(0)
    // The log's last current is v3 while the link says v1: rollback returns to v3, what current was before.
    expect(JSON.parse(rollback.stdout).result).toMatchObject({ version: 'v3', previous: 'v1', warnings: [expect.stringMatching(/rolled back to v3, but its audit record/)] })
    expect(current()).toBe('versions/v3')
    const prune = s(['store', 'prune', 'scout', '--keep', '1'])
    expect(prune.code, prune.stderr).toBe(0)
    expect(prune.stderr).toMatch(/Warning: scout: v2, v1 removed, but its audit record could not be written/)
  })

  it('finalize that cannot move current (the agent directory is immutable): the error says the version is finalized', () => {
    const dir = s(['store', 'stage', 'scout', 'v2']).stdout.trim()
    writeFileSync(join(dir, 'model.onnx'), 'v2')
    freeze(join(root, 'scout'))
    const r = s(['store', 'finalize', 'scout', 'v2', '--json'])
    const body = JSON.parse(r.stdout)
    expect(r.code).toBe(7)
    expect(body.error.code).toBe('PERMISSION_DENIED')
    expect(body.error.message).toMatch(/^scout\/v2 was finalized \(.*versions\/v2\), but current could not be pointed at it: /)
    expect(body.error.hint).toMatch(/modelforge store promote scout v2/)
    expect(body.error.details).toMatchObject({ finalized: true, published: false })
    expect(current()).toBe('versions/v1')
    chattr('-i', join(root, 'scout'))
    expect(s(['store', 'promote', 'scout', 'v2']).code).toBe(0)
    expect(current()).toBe('versions/v2')
  })
})
