/**
 * The store refuses to make an operator's mistake worse, seen from the CLI: strict readers, and (below)
 * the flags and outputs of the safety checks whose mechanisms test/publish covers.
 */
import { spawnSync } from 'node:child_process'
import { chmodSync, chownSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { ModelStore } from '../../src/publish/store.js'
import { cli, envelope, makeTemp, publish, removeTemps } from '../helpers/store-helpers.js'

afterAll(removeTemps)

const strict = { env: { STRICT_MODEL_STORE: '1' } }

describe('STRICT_MODEL_STORE=1 and the store readers', () => {
  it('store list, show and verify of a missing store exit 6 when strict; non-strict list says so and exits 0', () => {
    const missing = join(makeTemp(), 'nope')
    for (const args of [['store', 'list'], ['store', 'list', '--json'], ['store', 'show', 'scout'], ['store', 'verify']]) {
      const r = cli([...args, '--store', missing], strict)
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(6)
      if (args.includes('--json')) expect(envelope(r).error).toMatchObject({ code: 'STORE_NOT_FOUND' })
      else expect(r.stderr).toMatch(/Model store .*nope does not exist\nHint: /)
    }
    expect(cli(['store', 'list', '--store', missing])).toMatchObject({ code: 0, stdout: 'No agents.\n' })
    expect(envelope(cli(['store', 'list', '--store', missing, '--json']))).toEqual({ status: 0, result: [] })
  })
})

describe('store verify reports every problem it can see and goes on', () => {
  it('an unreadable version directory, manifest, file or versions/ is one problem each (exit 4); the rest is checked', async () => {
    // Root reads anything whatever its mode, so under root verify runs as user nobody over a store it
    // owns, with the unreadable parts given back to root; other users meet mode 000 directly.
    const asRoot = process.getuid?.() === 0
    const root = makeTemp()
    const store = new ModelStore(root)
    for (const v of ['v1', 'v2', 'v3', 'v4']) await publish(store, 'scout', v, { 'model.onnx': `weights ${v}`, 'tok/vocab.txt': 'a\n' })
    await publish(store, 'memory', 'v1')
    const hidden = [
      join(root, 'scout', 'versions', 'v1'),
      join(root, 'scout', 'versions', 'v2', 'manifest.json'),
      join(root, 'scout', 'versions', 'v3', 'model.onnx'),
      join(root, 'memory', 'versions'),
    ]
    if (asRoot) {
      expect(spawnSync('chown', ['-R', '65534:65534', root]).status).toBe(0)
      chmodSync(root, 0o755)
      for (const p of hidden) chownSync(p, 0, 0)
    }
    for (const p of hidden) chmodSync(p, 0)
    try {
      const as = asRoot ? { uid: 65534, gid: 65534, env: { HOME: root } } : {}
      const r = cli(['store', 'verify', '--store', root], as)
      expect(r.code, r.stderr).toBe(4)
      expect(r.stdout).toBe('ok  scout/v4  (2 files, sha256-files-v1)\n')
      expect(r.stderr).toMatch(/^Error: Verification failed for 5 version\(s\):$/m)
      expect(r.stderr).toMatch(/^memory\/\?: cannot read versions: EACCES/m)
      // memory's current cannot be resolved either: that is a problem of its own.
      expect(r.stderr).toMatch(/^memory\/\?: channel current: cannot read versions\/v1: EACCES/m)
      expect(r.stderr).toMatch(/^scout\/v1: cannot read manifest\.json: EACCES/m)
      expect(r.stderr).toMatch(/^scout\/v2: cannot read manifest\.json: EACCES/m)
      expect(r.stderr).toMatch(/^scout\/v3: cannot read model\.onnx: EACCES$/m)
      const json = envelope(cli(['store', 'verify', '--store', root, '--json'], as))
      expect(json.status).toBe(4)
      expect(json.error!.details.reports.map((x: { problems: { kind: string }[] }) => x.problems.map((p) => p.kind))).toEqual([['unreadable'], ['unreadable'], ['unreadable'], ['unreadable'], ['unreadable']])
    } finally {
      for (const p of hidden) chmodSync(p, 0o755)
    }
  })
})

describe('DEBUG=modelforge:store', () => {
  it('logs the writes of a command on stderr, leaving --json stdout one object', () => {
    const root = join(makeTemp(), 'store')
    const debug = { env: { DEBUG: 'modelforge:store' } }
    const dir = cli(['store', 'stage', 'scout', 'v1', '--store', root]).stdout.trim()
    writeFileSync(join(dir, 'model.onnx'), 'x')
    const r = cli(['store', 'finalize', 'scout', 'v1', '--store', root, '--json'], debug)
    expect(r.code, r.stderr).toBe(0)
    expect(envelope(r)).toMatchObject({ status: 0, result: { version: 'v1' } })
    for (const line of [/modelforge:store lock scout taken \(finalize v1\)/, /modelforge:store finalize scout\/v1: renamed /, /modelforge:store channel current of scout -> versions\/v1/, /modelforge:store lock scout released/]) {
      expect(r.stderr).toMatch(line)
    }
    // Readers write nothing, so log nothing.
    expect(cli(['store', 'list', '--store', root], debug).stderr).not.toMatch(/modelforge:store/)
  })
})

describe('the safety checks from the CLI', () => {
  it('promote of a damaged version, rollback past gone ones, prune with a dangling current, an empty finalize', () => {
    const root = join(makeTemp(), 'store')
    const s = (args: string[]) => cli([...args, '--store', root])
    const publishCli = (version: string, extra: string[] = []) => {
      const dir = s(['store', 'stage', 'scout', version]).stdout.trim()
      writeFileSync(join(dir, 'model.onnx'), `weights of ${version}`)
      expect(s(['store', 'finalize', 'scout', version, ...extra]).code).toBe(0)
    }
    for (const v of ['v1', 'v2', 'v3']) publishCli(v)
    publishCli('v4', ['--no-publish'])
    const versions = join(root, 'scout', 'versions')
    writeFileSync(join(versions, 'v4', 'model.onnx'), 'tampered')
    let r = s(['store', 'promote', 'scout', 'v4'])
    expect(r.code).toBe(4)
    expect(r.stderr).toMatch(/^Error: current of scout was not moved to v4, which fails verification: modified: model\.onnx\nHint: /)
    // rollback skips v2, which is gone, and says so.
    rmSync(join(versions, 'v2'), { recursive: true })
    r = s(['store', 'rollback', 'scout'])
    expect(r).toMatchObject({ code: 0, stdout: 'skipped v2: gone\nscout current -> v1 (was v3)\n' })
    // prune --keep 0 with current dangling keeps the newest intact version and names the channel.
    rmSync(join(versions, 'v1'), { recursive: true })
    r = s(['store', 'prune', 'scout', '--keep', '0', '--dry-run'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toBe([
      'scout: would remove v4',
      'kept v3',
      'kept v3 beyond --keep: it is the newest version that verifies, and nothing else kept is intact',
      'channel current protects nothing: current of agent scout points to versions/v1, which does not exist',
      '',
    ].join('\n'))
    // An empty staged tree is refused, and allowed with --allow-empty.
    s(['store', 'stage', 'scout', 'v5'])
    r = s(['store', 'finalize', 'scout', 'v5', '--no-publish'])
    expect(r.code).toBe(4)
    expect(r.stderr).toMatch(/holds no files: an empty version would be published\nHint: .*--allow-empty/)
    expect(envelope(s(['store', 'finalize', 'scout', 'v5', '--no-publish', '--allow-empty', '--json']))).toMatchObject({ status: 0, result: { files: 0 } })
  })
})
