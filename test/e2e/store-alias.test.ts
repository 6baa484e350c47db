/**
 * Alias shims from the CLI: `news-cleaner-agent -> synthesizer` in the store root. Readers (the fast path
 * of `store current` and oclif alike, list, show, verify) follow it and say so; every writer refuses it with
 * exit 2 naming the real agent, before any lock: a real process holding the real agent's lock shows that the
 * only lock name there ever is is the real agent's.
 */
import { spawn } from 'node:child_process'
import { readdirSync, readFileSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { lockPath } from '../../src/publish/lock.js'
import { ModelStore } from '../../src/publish/store.js'
import { cli, envelope, makeTemp, publish, removeTemps, repoRoot, runJs, snapshot, writeTree, type CliResult } from '../helpers/store-helpers.js'

afterAll(removeTemps)

const ALIAS = 'news-cleaner-agent'
const REAL = 'synthesizer'

let root: string
let src: string
const s = (args: string[], env: Record<string, string> = {}) => cli([...args, '--store', root], { env })
const versionPath = (v: string) => join(root, REAL, 'versions', v)

beforeAll(async () => {
  root = makeTemp()
  const store = new ModelStore(root)
  await publish(store, REAL, 'v1')
  await publish(store, REAL, 'v2', { 'model.onnx': 'v2', 'tok/vocab.txt': 'a\nb\n' })
  await store.promote(REAL, 'v1', 'staging')
  symlinkSync(REAL, join(root, ALIAS))
  symlinkSync(join(root, REAL), join(root, 'old-name'))
  src = makeTemp('mf-src-')
  writeTree(src, { 'model.onnx': 'imported' })
})

describe('readers through an alias', () => {
  it.each([
    ['a relative alias', [ALIAS]],
    ['a relative alias, --json', [ALIAS, '--json']],
    ['an absolute alias', ['old-name']],
    ['an absolute alias, --json', ['old-name', '--json']],
  ])('store current of %s: the real agent\'s version, the fast path and oclif alike', (_name, args) => {
    const fast = s(['store', 'current', ...args])
    const slow = s(['store', 'current', ...args, '--channel', 'current'])
    expect(fast.code, fast.stderr).toBe(0)
    expect(slow).toEqual(fast)
    if (args.includes('--json')) {
      expect(envelope(fast).result).toEqual({ agent: args[0], alias: REAL, channel: 'current', version: 'v2', path: versionPath('v2'), layout: 'relative-link' })
    } else expect(fast).toEqual({ code: 0, stdout: versionPath('v2') + '\n', stderr: '' })
  })

  it('store current --channel through an alias', () => {
    expect(s(['store', 'current', ALIAS, '--channel', 'staging']).stdout).toBe(versionPath('v1') + '\n')
  })

  it('store list shows aliases as such; --agent of an alias lists the real agent\'s versions', () => {
    const human = s(['store', 'list'])
    expect(human.code, human.stderr).toBe(0)
    expect(human.stdout).toMatch(new RegExp(`^${ALIAS}  alias: ${REAL}  \\(current -> v2, staging -> v1\\)\nold-name  alias: ${REAL}  \\(current -> v2, staging -> v1\\)\n${REAL}  \\(current -> v2, staging -> v1\\)\n  v1 .*\\[staging\\]\n  v2 .*\\[current\\]\n$`))
    const json = envelope(s(['store', 'list', '--json'])).result as { agent: string; alias?: string }[]
    expect(json.map((a) => [a.agent, a.alias])).toEqual([[ALIAS, REAL], ['old-name', REAL], [REAL, undefined]])
    expect(json[0]).toMatchObject({ current: 'v2', versions: [{ version: 'v1', path: versionPath('v1') }, { version: 'v2' }] })
    const one = s(['store', 'list', '--agent', ALIAS])
    expect(one.stdout).toMatch(new RegExp(`^${ALIAS}  alias: ${REAL}  \\(current -> v2, staging -> v1\\)\n  v1 .*\n  v2 .*\n$`))
  })

  it('store show prints the real agent\'s manifest, and says on stderr that it came through an alias', () => {
    const r = s(['store', 'show', ALIAS])
    expect(r.code, r.stderr).toBe(0)
    expect(JSON.parse(r.stdout)).toMatchObject({ agent: REAL, version: 'v2' })
    expect(r.stderr).toBe(`${ALIAS} is an alias of ${REAL}\n`)
    const json = s(['store', 'show', ALIAS, 'v1', '--json'])
    expect(json.stderr).toBe('')
    expect(envelope(json).result).toMatchObject({ agent: REAL, version: 'v1' })
  })

  it('store verify of an alias checks the real agent\'s versions and names both', () => {
    const r = s(['store', 'verify', ALIAS])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toBe(`ok  ${ALIAS}/v1  (alias: ${REAL}; 1 files, sha256-files-v1)\nok  ${ALIAS}/v2  (alias: ${REAL}; 2 files, sha256-files-v1)\n`)
    expect(envelope(s(['store', 'verify', ALIAS, 'v2', '--json'])).result).toMatchObject([{ agent: ALIAS, alias: REAL, version: 'v2', ok: true, path: versionPath('v2') }])
  })

  it('a broken alias (outside the store, a chain) is exit 4 for every reader, and store verify names it', () => {
    const other = makeTemp()
    symlinkSync(other, join(root, 'outside'))
    symlinkSync(ALIAS, join(root, 'chained'))
    try {
      for (const [name, why] of [['outside', 'which is outside the store'], ['chained', `and ${ALIAS} is itself an alias`]] as const) {
        const fast = s(['store', 'current', name, '--json'])
        expect(fast.code).toBe(4)
        expect(s(['store', 'current', name, '--json', '--channel', 'current'])).toEqual(fast)
        expect(envelope(fast).error).toMatchObject({ code: 'AGENT_ALIAS_INVALID', message: expect.stringContaining(why) })
        expect(s(['store', 'show', name]).code).toBe(4)
        expect(s(['store', 'list', '--agent', name]).code).toBe(4)
      }
      expect(s(['store', 'list']).stdout).toContain('outside  ALIAS PROBLEM: Agent outside is an alias (a link to')
      const verify = s(['store', 'verify'])
      expect(verify.code).toBe(4)
      expect(verify.stderr).toMatch(/chained\/\?: Agent chained is an alias \(a link to news-cleaner-agent\), and news-cleaner-agent is itself an alias/)
      expect(verify.stdout).toContain(`ok  ${REAL}/v2`)
    } finally {
      // unlink: the links go, never what they point to.
      for (const n of ['outside', 'chained']) unlinkSync(join(root, n))
    }
  })
})

/** Runs the CLI refused: exit 2 AGENT_IS_ALIAS naming the real agent, in both output forms, the store unchanged. */
function refusedByName(args: string[]): void {
  const before = snapshot(root)
  const human = s(args)
  expect(human.code, human.stderr).toBe(2)
  expect(human.stdout).toBe('')
  expect(human.stderr).toBe(`Error: ${ALIAS} is an alias of ${REAL}: write to ${REAL}\nHint: Aliases are read-only names for readers: run the command with ${REAL} (${join(root, ALIAS)} is a link to it).\n`)
  const json = s([...args, '--json'])
  expect(json.code).toBe(2)
  expect(envelope(json).error).toMatchObject({ code: 'AGENT_IS_ALIAS', details: { agent: ALIAS, alias: REAL } })
  expect(snapshot(root)).toEqual(before)
}

describe('writers refuse an alias (exit 2), naming the real agent', () => {
  it.each([
    ['stage', ['store', 'stage', ALIAS, 'v3']],
    ['finalize', ['store', 'finalize', ALIAS, 'v3']],
    ['import', ['store', 'import', ALIAS, 'v3', '<src>']],
    ['promote', ['store', 'promote', ALIAS, 'v1']],
    ['rollback', ['store', 'rollback', ALIAS]],
    ['prune', ['store', 'prune', ALIAS, '--keep', '0']],
    ['delete', ['store', 'delete', ALIAS, 'v1']],
  ])('%s', (_name, args) => {
    refusedByName(args.map((a) => (a === '<src>' ? src : a)))
  })
})

/** The CLI in a child process of its own, not waited for. */
function cliAsync(args: string[]): Promise<CliResult> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [runJs, ...args], { cwd: repoRoot, env: { ...process.env, NO_COLOR: '1', CI: '1', STRICT_MODEL_STORE: undefined, MODEL_STORE_ROOT: undefined } })
    let stdout = ''
    let stderr = ''
    c.stdout.on('data', (d) => (stdout += d))
    c.stderr.on('data', (d) => (stderr += d))
    c.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}

/**
 * Takes the real agent's writer lock the way every writer does (writerAgent, then acquireLock, from dist/)
 * in a process of its own, holds it until its stdin closes, then releases it.
 */
const HOLDER = `
import { acquireLock } from ${JSON.stringify(join(repoRoot, 'dist', 'publish', 'lock.js'))}
import { storeContext, writerAgent } from ${JSON.stringify(join(repoRoot, 'dist', 'publish', 'store-context.js'))}
const [root, agent] = process.argv.slice(1)
const lock = acquireLock(root, writerAgent(storeContext(root, false), agent), { op: 'finalize', version: 'v3' })
process.stdout.write('held\\n')
process.stdin.resume()
process.stdin.on('end', () => { lock.release(); process.exit(0) })
`

describe('a finalize of the real agent and a write through its alias never both proceed', () => {
  it('while a real process holds the real agent\'s lock, the alias write is refused by name (not by the lock), and the only lock is the real name\'s', async () => {
    const dir = s(['store', 'stage', REAL, 'v3']).stdout.trim()
    writeFileSync(join(dir, 'model.onnx'), 'v3')
    const holder = spawn(process.execPath, ['--input-type=module', '-e', HOLDER, root, REAL], { stdio: ['pipe', 'pipe', 'inherit'] })
    const closed = new Promise((resolve) => holder.once('close', resolve))
    try {
      await new Promise<void>((resolve, reject) => {
        holder.stdout.on('data', (d) => String(d).includes('held') && resolve())
        holder.on('exit', (code) => reject(new Error(`the lock holder exited (${code})`)))
      })
      const locks = join(root, '.modelforge', 'locks')
      expect(readdirSync(locks)).toEqual([`${REAL}.lock`])
      expect(JSON.parse(readFileSync(lockPath(root, REAL), 'utf8'))).toMatchObject({ pid: holder.pid, agent: REAL, op: 'finalize' })
      // Through the alias: refused by its name before any lock (exit 2, not the lock's exit 5).
      for (const args of [['store', 'finalize', ALIAS, 'v3'], ['store', 'promote', ALIAS, 'v2', '--channel', 'canary'], ['store', 'delete', ALIAS, 'v1']]) {
        const r = s(args)
        expect(r.code, r.stderr).toBe(2)
        expect(r.stderr).toContain(`${ALIAS} is an alias of ${REAL}: write to ${REAL}`)
        expect(readdirSync(locks)).toEqual([`${REAL}.lock`])
      }
      // Under its own name the write meets the held lock: it waits its turn (exit 5 naming the holder).
      const real = s(['store', 'finalize', REAL, 'v3'])
      expect(real.code).toBe(5)
      expect(real.stderr).toContain(`Agent ${REAL} is locked by process ${holder.pid}`)
    } finally {
      holder.stdin!.end()
      await closed
    }
    expect(s(['store', 'finalize', REAL, 'v3']).code).toBe(0)
    expect(readdirSync(join(root, '.modelforge', 'locks'))).toEqual([])
  })

  it('started at once: the real finalize proceeds, the one through the alias is refused, one version results', async () => {
    const dir = s(['store', 'stage', REAL, 'v4']).stdout.trim()
    writeFileSync(join(dir, 'model.onnx'), 'v4')
    const [real, alias] = await Promise.all([
      cliAsync(['store', 'finalize', REAL, 'v4', '--store', root, '--json']),
      cliAsync(['store', 'finalize', ALIAS, 'v4', '--store', root, '--json']),
    ])
    expect(real.code, real.stdout).toBe(0)
    expect(envelope(real).result).toMatchObject({ agent: REAL, version: 'v4' })
    expect(alias.code).toBe(2)
    expect(envelope(alias).error).toMatchObject({ code: 'AGENT_IS_ALIAS' })
    expect(s(['store', 'current', ALIAS]).stdout).toBe(versionPath('v4') + '\n')
    expect(readdirSync(join(root, '.modelforge', 'locks'))).toEqual([])
  })
})
