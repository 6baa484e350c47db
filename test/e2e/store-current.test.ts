/**
 * `store current` answers from bin/run.js's fast path (no oclif) for its plain form; every other form goes
 * through oclif. Both must print the same bytes and exit with the same code.
 */
import { symlinkSync, unlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parseFastPath } from '../../src/fast-path.js'
import { ModelStore } from '../../src/publish/store.js'
import { cli, makeTemp, removeTemps, writeTree } from '../helpers/store-helpers.js'

afterAll(removeTemps)

let root: string

beforeAll(async () => {
  root = makeTemp()
  const store = new ModelStore(root)
  writeTree(await store.stage('scout', 'v1'), { 'model.onnx': 'x' })
  await store.finalize('scout', 'v1')
  await store.stage('empty', 'v1')
  writeTree(await store.stage('broken', 'v1'), { 'model.onnx': 'x' })
  await store.finalize('broken', 'v1')
  unlinkSync(join(root, 'broken', 'current'))
  symlinkSync('versions/v0', join(root, 'broken', 'current'))
  // A link into another agent's versions: it exists, but is not this agent's.
  writeTree(await store.stage('foreign', 'v1'), { 'model.onnx': 'x' })
  await store.finalize('foreign', 'v1')
  unlinkSync(join(root, 'foreign', 'current'))
  symlinkSync('../scout/versions/v1', join(root, 'foreign', 'current'))
  writeFileSync(join(root, 'a-file'), 'x')
})

describe('parseFastPath', () => {
  it('takes exactly the plain form', () => {
    expect(parseFastPath(['store', 'current', 'scout'])).toEqual({ agent: 'scout', store: undefined, json: false })
    expect(parseFastPath(['store', 'current', '--store', '/s', 'scout', '--json'])).toEqual({ agent: 'scout', store: '/s', json: true })
    expect(parseFastPath(['store', 'current', 'scout', '--store=/s'])).toEqual({ agent: 'scout', store: '/s', json: false })
  })
  it.each([
    [['store', 'current']], [['store', 'current', '--help']], [['store', 'current', 'a', '-h']], [['store', 'current', 'a', 'b']],
    [['store', 'current', 'a', '--channel', 'x']], [['store', 'current', 'a', '--store']], [['store', 'current', 'a', '--store=']],
    [['store', 'current', 'a', '--json', '--json']], [['store', 'list']], [['toy-store', 'x']], [[]], [['store', 'current', '--', 'a']],
  ])('leaves %j to oclif', (argv) => {
    expect(parseFastPath(argv)).toBeNull()
  })
})

describe('fast path and oclif print the same', () => {
  const cases: [string, string[], Record<string, string>, number][] = [
    ['a current version', ['scout'], {}, 0],
    ['a current version, --json', ['scout', '--json'], {}, 0],
    ['no current version', ['empty'], {}, 0],
    ['no current version, --json', ['empty', '--json'], {}, 0],
    ['strict: unknown agent', ['ghost'], { STRICT_MODEL_STORE: '1' }, 6],
    ['strict: unknown agent, --json', ['ghost', '--json'], { STRICT_MODEL_STORE: '1' }, 6],
    ['invalid name', ['../x'], {}, 2],
    ['dangling current, --json', ['broken', '--json'], {}, 4],
    ['current outside its agent', ['foreign'], {}, 4],
    ['current outside its agent, --json', ['foreign', '--json'], {}, 4],
  ]
  it.each(cases)('%s', (_name, args, env, code) => {
    const fast = cli(['store', 'current', ...args, '--store', root], { env })
    // --channel current means the same, but the fast path does not take it: oclif answers.
    const slow = cli(['store', 'current', ...args, '--store', root, '--channel', 'current'], { env })
    expect(fast.code).toBe(code)
    expect(slow).toEqual(fast)
  })

  it('the store root from MODEL_STORE_ROOT, and a root that is a file', () => {
    const fast = cli(['store', 'current', 'scout'], { env: { MODEL_STORE_ROOT: root } })
    expect(fast).toEqual({ code: 0, stdout: join(root, 'scout', 'versions', 'v1') + '\n', stderr: '' })
    const file = cli(['store', 'current', 'scout', `--store=${join(root, 'a-file')}`])
    expect(file.code).toBe(2)
    expect(file.stderr).toMatch(/is not a directory\nHint: /)
  })

  it('falls back to oclif for help', () => {
    const r = cli(['store', 'current', '--help'])
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/USAGE/)
  })
})
