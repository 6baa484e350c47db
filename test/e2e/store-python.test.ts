/**
 * Both ways with the original Python ModelStore from the CLI: `--legacy-checksum` on finalize and import,
 * `store.legacyChecksum` in MODELFORGE_CONFIG (a flag wins over it), and what verify says about a version
 * whose checksum is the Python helper's. The Python side is python3 running the helper's algorithm with the
 * standard library only (test/helpers/store-legacy.ts); those checks are skipped without python3.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cli, envelope, makeTemp, removeTemps, snapshot, writeTree } from '../helpers/store-helpers.js'
import { hasPython3, python } from '../helpers/store-legacy.js'

afterAll(removeTemps)

let root: string
let configDir: string
const s = (args: string[], env: Record<string, string> = {}) => cli([...args, '--store', root], { env })

function config(name: string, value: unknown): string {
  const file = join(configDir, name)
  writeFileSync(file, JSON.stringify(value))
  return file
}

function stage(version: string): void {
  const r = s(['store', 'stage', 'scout', version])
  expect(r.code, r.stderr).toBe(0)
  writeTree(r.stdout.trim(), { 'model.onnx': `weights of ${version}`, 'tokenizer/vocab.txt': 'a\nb\n', 'onnx/extra.bin': 'x' })
}

function manifestOf(version: string): Record<string, unknown> {
  return JSON.parse(readFileSync(join(root, 'scout', 'versions', version, 'manifest.json'), 'utf8')) as Record<string, unknown>
}

beforeAll(() => {
  root = join(makeTemp(), 'store')
  configDir = makeTemp('mf-config-')
})

describe('legacyChecksum from the CLI', () => {
  it('finalize --legacy-checksum: the legacy value in checksum, sha256-files-v1 in files_checksum, both printed', () => {
    stage('v1')
    const r = s(['store', 'finalize', 'scout', 'v1', '--legacy-checksum'])
    expect(r.code, r.stderr).toBe(0)
    const m = manifestOf('v1')
    expect(m).toMatchObject({ checksum_algorithm: 'legacy-python-sha256', files_checksum: expect.stringMatching(/^[0-9a-f]{64}$/) })
    expect(r.stdout).toContain(`Finalized scout/v1: 3 files, 18 B, legacy-python-sha256 ${m.checksum} (files: sha256-files-v1 ${m.files_checksum})\n`)
    if (hasPython3) expect(python('verify', join(root, 'scout', 'versions', 'v1'))).toMatchObject({ code: 0, stdout: 'ok' })
    const verified = s(['store', 'verify', 'scout', 'v1'])
    expect(verified.stdout).toBe('ok  scout/v1  (3 files, legacy-python-sha256, listing order)\n')
    expect(envelope(s(['store', 'verify', 'scout', 'v1', '--json'])).result).toMatchObject([{ version: 'v1', ok: true, algorithm: 'legacy-python-sha256', checksumOrder: 'listing' }])
  })

  it('store.legacyChecksum in MODELFORGE_CONFIG makes it the default; --no-legacy-checksum wins over it', () => {
    const on = config('on.json', { store: { legacyChecksum: true } })
    stage('v2')
    const r = s(['store', 'finalize', 'scout', 'v2', '--json'], { MODELFORGE_CONFIG: on })
    expect(r.code, r.stderr).toBe(0)
    expect(envelope(r).result).toMatchObject({ checksumAlgorithm: 'legacy-python-sha256', checksum: manifestOf('v2').checksum, filesChecksum: manifestOf('v2').files_checksum })
    stage('v3')
    const off = s(['store', 'finalize', 'scout', 'v3', '--no-legacy-checksum', '--json'], { MODELFORGE_CONFIG: on })
    expect(envelope(off).result).toMatchObject({ checksumAlgorithm: 'sha256-files-v1' })
    expect(manifestOf('v3')).not.toHaveProperty('files_checksum')
    if (hasPython3) expect(python('verify', join(root, 'scout', 'versions', 'v3'))).toMatchObject({ code: 1, stdout: 'checksum mismatch' })
    expect(s(['store', 'verify', 'scout']).code).toBe(0)
  })

  it('import --legacy-checksum (and from the config) writes the same form', () => {
    const src = join(configDir, 'export')
    mkdirSync(src)
    writeTree(src, { 'model.onnx': 'imported', 'a/b.txt': 'b', 'c/d.txt': 'd' })
    const r = s(['store', 'import', 'scout', 'v4', src, '--legacy-checksum', '--no-publish'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/^Imported scout\/v4: 3 files \(.*\), 10 B, legacy-python-sha256 [0-9a-f]{64} \(files: sha256-files-v1 [0-9a-f]{64}\)\n/)
    expect(manifestOf('v4')).toMatchObject({ checksum_algorithm: 'legacy-python-sha256' })
    const fromConfig = s(['store', 'import', 'scout', 'v5', src, '--no-publish', '--json'], { MODELFORGE_CONFIG: config('on2.json', { store: { legacyChecksum: true } }) })
    expect(envelope(fromConfig).result).toMatchObject({ checksumAlgorithm: 'legacy-python-sha256' })
    if (hasPython3) expect(python('verify', join(root, 'scout', 'versions', 'v5')).code).toBe(0)
  })

  it('a store.legacyChecksum that is not true or false: exit 4 CONFIG_INVALID naming the key, nothing finalized', () => {
    stage('v6')
    const file = config('bad.json', { store: { legacyChecksum: 'yes' } })
    const before = snapshot(root)
    const r = s(['store', 'finalize', 'scout', 'v6', '--json'], { MODELFORGE_CONFIG: file })
    expect(r.code).toBe(4)
    expect(envelope(r).error).toMatchObject({ code: 'CONFIG_INVALID', message: `store.legacyChecksum in MODELFORGE_CONFIG file ${file} must be true or false, got "yes"` })
    expect(snapshot(root)).toEqual(before)
  })
})
