/**
 * MODELFORGE_CONFIG values are reported by their key in the file (lib/env.ts checkConfig) by every command
 * that reads them: store prune's store.keep (never as --keep, the flag it stands in for) and fetch's
 * download policy. Runs the built CLI.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ModelStore } from '../../src/publish/store.js'
import { cli, envelope, makeTemp, publish, removeTemps, snapshot } from '../helpers/store-helpers.js'

let dir: string
let root: string
beforeAll(async () => {
  dir = makeTemp('mf-e2e-config-')
  root = join(dir, 'store')
  const store = new ModelStore(root)
  for (const v of ['v1', 'v2', 'v3']) await publish(store, 'scout', v)
})
afterAll(removeTemps)

function config(name: string, body: unknown): string {
  const file = join(dir, name)
  writeFileSync(file, JSON.stringify(body))
  return file
}

describe('config values are reported as config keys', () => {
  it.each([
    ['-1', -1],
    ['"3"', '3'],
    ['1.5', 1.5],
  ])('store prune with store.keep %s: exit 4 CONFIG_INVALID naming store.keep in MODELFORGE_CONFIG, the store unchanged', (_label, keep) => {
    const file = config(`keep-${String(keep)}.json`, { store: { keep } })
    const before = snapshot(root)
    const human = cli(['store', 'prune', 'scout', '--store', root], { env: { MODELFORGE_CONFIG: file } })
    expect(human.code, human.stderr).toBe(4)
    expect(human.stderr).toContain(`Error: store.keep in MODELFORGE_CONFIG file ${file} must be a whole number >= 0, e.g. 3, got ${JSON.stringify(keep)}`)
    expect(human.stderr).not.toContain('--keep')
    const json = cli(['store', 'prune', 'scout', '--store', root, '--json'], { env: { MODELFORGE_CONFIG: file } })
    expect(json.code).toBe(4)
    expect(envelope(json).error).toMatchObject({ code: 'CONFIG_INVALID', details: { key: 'store.keep', value: keep } })
    expect(snapshot(root)).toEqual(before)
  })

  it('a valid store.keep is prune\'s default; --keep wins over it and needs no valid config to be read', () => {
    const keep1 = config('keep-1.json', { store: { keep: 1 } })
    const dry = cli(['store', 'prune', 'scout', '--store', root, '--dry-run', '--json'], { env: { MODELFORGE_CONFIG: keep1 } })
    expect(dry.code, dry.stderr).toBe(0)
    expect(envelope(dry).result).toMatchObject({ keep: 1, removed: ['v2', 'v1'] })
    const flag = cli(['store', 'prune', 'scout', '--store', root, '--keep', '2', '--dry-run', '--json'], { env: { MODELFORGE_CONFIG: config('keep-bad.json', { store: { keep: -1 } }) } })
    expect(flag.code, flag.stderr).toBe(0)
    expect(envelope(flag).result).toMatchObject({ keep: 2, removed: ['v1'] })
  })

  it('fetch with a download key of the wrong type: exit 4 naming the key, before any request', () => {
    const file = config('approval.json', { download: { requireApproval: 'yes' } })
    const r = cli(['fetch', 'org/tiny', '--json'], { env: { MODELFORGE_CONFIG: file, HF_ENDPOINT: 'http://127.0.0.1:9', HF_HUB_CACHE: join(dir, 'cache') } })
    expect(r.code).toBe(4)
    expect(envelope(r).error).toMatchObject({ code: 'CONFIG_INVALID', message: `download.requireApproval in MODELFORGE_CONFIG file ${file} must be true or false, got "yes"` })
  })
})
