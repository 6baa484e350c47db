/**
 * Backups: a store copied with `rsync -a` (or `cp -a`) to another root verifies there and serves readers
 * from the copy, never from the original: channels are relative links and manifests hold no absolute paths.
 */
import { spawnSync } from 'node:child_process'
import { readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { cli, makeTemp, removeTemps, writeTree } from '../helpers/store-helpers.js'

afterAll(removeTemps)

const hasRsync = spawnSync('rsync', ['--version']).status === 0

function build(root: string): void {
  for (const v of ['v1', 'v2']) {
    const dir = cli(['store', 'stage', 'scout', v, '--store', root]).stdout.trim()
    writeTree(dir, { 'model.onnx': `weights ${v}`, 'tokenizer/vocab.txt': 'a\nb\n', 'config.json': '{}' })
    expect(cli(['store', 'finalize', 'scout', v, '--store', root]).code).toBe(0)
  }
  expect(cli(['store', 'promote', 'scout', 'v1', '--channel', 'staging', '--store', root]).code).toBe(0)
}

describe('a copied store', () => {
  it.each([
    ['rsync -a', (from: string, to: string) => spawnSync('rsync', ['-a', `${from}/`, `${to}/`])],
    ['cp -a', (from: string, to: string) => spawnSync('cp', ['-a', from, to])],
  ])('%s: the copy verifies and current resolves inside the copy, also once the original is gone', (how, copy) => {
    if (how.startsWith('rsync') && !hasRsync) return expect.soft(hasRsync, 'rsync is not installed (apt-get install rsync)').toBe(true)
    const original = join(makeTemp(), 'store')
    build(original)
    const backup = join(makeTemp(), 'backup')
    expect(copy(original, backup).status).toBe(0)
    // Nothing in the copy names the original: manifests and the audit log carry relative paths only.
    for (const v of ['v1', 'v2']) expect(readFileSync(join(backup, 'scout', 'versions', v, 'manifest.json'), 'utf8')).not.toContain(original)
    rmSync(original, { recursive: true, force: true })
    expect(cli(['store', 'verify', '--store', backup]).code).toBe(0)
    const current = cli(['store', 'current', 'scout', '--store', backup])
    expect(current.code).toBe(0)
    expect(realpathSync(current.stdout.trim())).toBe(realpathSync(join(backup, 'scout', 'versions', 'v2')))
    const staging = cli(['store', 'current', 'scout', '--channel', 'staging', '--store', backup])
    expect(staging.stdout.trim()).toBe(join(backup, 'scout', 'versions', 'v1'))
    // The copy is a store of its own: it takes new versions.
    const dir = cli(['store', 'stage', 'scout', 'v3', '--store', backup]).stdout.trim()
    writeFileSync(join(dir, 'model.onnx'), 'weights v3')
    expect(cli(['store', 'finalize', 'scout', 'v3', '--store', backup]).code).toBe(0)
    expect(cli(['store', 'verify', '--store', backup]).code).toBe(0)
  })
})
