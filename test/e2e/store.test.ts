/** The store commands end to end, the way a shell writer and an operator use them. */
import { appendFileSync, readFileSync, readlinkSync, unlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cli, envelope, makeTemp, removeTemps } from '../helpers/store-helpers.js'

afterAll(removeTemps)

let root: string
const s = (args: string[]) => cli([...args, '--store', root])

/** stage with the CLI, write files like a shell writer would, finalize with the CLI. */
function publish(version: string, extra: string[] = []): string {
  const staged = s(['store', 'stage', 'scout', version])
  expect(staged.code, staged.stderr).toBe(0)
  const dir = staged.stdout.trim()
  writeFileSync(join(dir, 'model.onnx'), `weights of ${version}`)
  writeFileSync(join(dir, 'labels.json'), '["pos", "neg"]')
  const fin = s(['store', 'finalize', 'scout', version, ...extra])
  expect(fin.code, fin.stderr).toBe(0)
  return dir.replace(/\.tmp$/, '')
}

beforeAll(() => {
  root = join(makeTemp(), 'store')
})

describe('store commands', () => {
  it('stage + finalize with metadata, then show and list', () => {
    const meta = join(root, '..', 'meta.json')
    writeFileSync(meta, JSON.stringify({ dataset: 'news', epochs: 3 }))
    const path = publish('v1', ['--metadata', 'dataset=news-2026', '--metadata', 'by=ci', '--metadata-file', meta])
    expect(readlinkSync(join(root, 'scout', 'current'))).toBe('versions/v1')
    const show = envelope(s(['store', 'show', 'scout', '--json']))
    expect(show.result).toMatchObject({ version: 'v1', metadata: { dataset: 'news-2026', by: 'ci', epochs: 3 }, files: [{ path: 'labels.json' }, { path: 'model.onnx' }] })
    expect(JSON.parse(readFileSync(join(path, 'manifest.json'), 'utf8')).checksum).toBe(show.result.checksum)
    publish('v2', ['--no-publish'])
    const list = envelope(s(['store', 'list', '--json']))
    expect(list.result).toMatchObject([{ agent: 'scout', current: 'v1', versions: [{ version: 'v1' }, { version: 'v2' }] }])
    const human = s(['store', 'list'])
    expect(human.stdout).toMatch(/^scout {2}\(current -> v1\)\n {2}v1 .*2 files.*\[current\]\n {2}v2 /)
  })

  it('verify: ok, then a changed byte, an added and a deleted file are each named (exit 4)', () => {
    const ok = s(['store', 'verify'])
    expect(ok.code, ok.stderr).toBe(0)
    expect(ok.stdout).toContain('ok  scout/v1  (2 files, sha256-files-v1)')
    const v2 = join(root, 'scout', 'versions', 'v2')
    const original = readFileSync(join(v2, 'model.onnx'))
    const changed = Buffer.from(original)
    changed[3] = changed[3]! ^ 1
    writeFileSync(join(v2, 'model.onnx'), changed)
    let r = s(['store', 'verify', 'scout'])
    expect(r.code).toBe(4)
    expect(r.stderr).toContain('scout/v2: modified: model.onnx')
    expect(r.stdout).toContain('ok  scout/v1')
    writeFileSync(join(v2, 'model.onnx'), original)
    appendFileSync(join(v2, 'notes.txt'), 'added')
    r = s(['store', 'verify', 'scout', 'v2', '--json'])
    expect(r.code).toBe(4)
    expect(envelope(r).error!.details!.reports).toMatchObject([{ version: 'v2', problems: [{ kind: 'extra', path: 'notes.txt' }] }])
    unlinkSync(join(v2, 'notes.txt'))
    unlinkSync(join(v2, 'labels.json'))
    r = s(['store', 'verify', 'scout', 'v2'])
    expect(r.stderr).toContain('scout/v2: missing: labels.json')
    writeFileSync(join(v2, 'labels.json'), '["pos", "neg"]')
    expect(s(['store', 'verify', 'scout', 'v2']).code).toBe(0)
  })

  it('promote, rollback, prune and gc, all audited', () => {
    publish('v3')
    let r = s(['store', 'promote', 'scout', 'v2', '--channel', 'staging'])
    expect(r.stdout).toBe('scout staging -> v2\n')
    r = s(['store', 'rollback', 'scout', '--json'])
    expect(envelope(r).result).toEqual({ agent: 'scout', channel: 'current', version: 'v1', previous: 'v3' })
    r = s(['store', 'prune', 'scout', '--keep', '0', '--dry-run'])
    expect(r.stdout).toBe('scout: would remove v3\nkept v2, v1 (channels point to v1, v2)\n')
    r = s(['store', 'prune', 'scout', '--keep', '0', '--json'])
    expect(envelope(r).result).toMatchObject({ removed: ['v3'], kept: ['v2', 'v1'] })
    s(['store', 'stage', 'scout', 'v4'])
    r = s(['store', 'gc', '--older-than', '0'])
    expect(r.stdout).toBe(`removed staging ${join(root, 'scout', 'versions', 'v4.tmp')}\n`)
    const ops = readFileSync(join(root, '.modelforge', 'audit.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).op)
    expect(ops).toEqual(['finalize', 'finalize', 'finalize', 'promote', 'rollback', 'prune', 'gc'])
  })

  it('--json: stage, finalize, promote and gc print one envelope object and nothing else on stdout', () => {
    const staged = s(['store', 'stage', 'scout', 'j1', '--json'])
    const dir = envelope(staged).result.path as string
    expect(envelope(staged)).toEqual({ status: 0, result: { agent: 'scout', version: 'j1', path: join(root, 'scout', 'versions', 'j1.tmp') } })
    writeFileSync(join(dir, 'model.onnx'), 'j1')
    const fin = s(['store', 'finalize', 'scout', 'j1', '--no-publish', '--json'])
    expect(fin.code, fin.stderr).toBe(0)
    // No progress lines under --json, on either stream.
    expect(fin.stderr).toBe('')
    expect(envelope(fin)).toMatchObject({ status: 0, result: { version: 'j1', files: 1, published: false } })
    expect(envelope(s(['store', 'promote', 'scout', 'j1', '--channel', 'canary', '--json']))).toEqual({ status: 0, result: { agent: 'scout', channel: 'canary', version: 'j1', previous: null } })
    expect(envelope(s(['store', 'gc', '--json']))).toMatchObject({ status: 0, result: { removed: [], skipped: [] } })
    expect(envelope(s(['store', 'prune', 'scout', '--keep', '0', '--dry-run', '--json'])).result.protected).toContain('j1')
  })
})
