/**
 * `store delete` end to end: it refuses a version a channel points to (exit 5, naming the channel),
 * removes an unreferenced one (audited), changes nothing under --dry-run, and says exit 6 for a missing
 * version. And like prune it is crash-safe: a writer killed just before each of its filesystem calls in turn
 * leaves the version whole or gone, with at most a leftover that `store gc` removes.
 */
import { cpSync, existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readAudit } from '../../src/publish/audit.js'
import { ModelStore } from '../../src/publish/store.js'
import { cli, envelope, makeTemp, publish, removeTemps, snapshot } from '../helpers/store-helpers.js'
import { runCrashWriter, writeCrashWriter } from '../helpers/crash-points.js'

afterAll(removeTemps)

let base: string

/** scout v1, v2, v3; current -> v3, staging -> v1. */
beforeAll(async () => {
  base = join(makeTemp('mf-delete-'), 'base')
  const store = new ModelStore(base)
  for (const v of ['v1', 'v2', 'v3']) await publish(store, 'scout', v, { 'model.onnx': `weights ${v}`, 'tok/vocab.txt': 'a\nb\n' })
  await store.promote('scout', 'v1', 'staging')
})

function copyOf(name: string): string {
  const root = join(base, '..', name)
  cpSync(base, root, { recursive: true, verbatimSymlinks: true })
  return root
}

describe('store delete', () => {
  it('refuses a version a channel points to: exit 5 VERSION_IN_USE naming the channel, nothing changed', () => {
    const root = copyOf('in-use')
    const before = snapshot(root)
    const human = cli(['store', 'delete', 'scout', 'v1', '--store', root])
    expect(human.code).toBe(5)
    expect(human.stderr).toMatch(/^Error: Version v1 of agent scout is in use: channel staging points to it\nHint: Point staging at another version first \(`modelforge store promote scout <version> --channel staging`\)/)
    const json = cli(['store', 'delete', 'scout', 'v3', '--store', root, '--json'])
    expect(json.code).toBe(5)
    expect(envelope(json)).toMatchObject({ status: 5, error: { code: 'VERSION_IN_USE', details: { agent: 'scout', version: 'v3', channels: ['current'] } } })
    expect(snapshot(root)).toEqual(before)
  })

  it('--dry-run reports and changes nothing; then the version is removed and audited', () => {
    const root = copyOf('unused')
    const before = snapshot(root)
    const dry = cli(['store', 'delete', 'scout', 'v2', '--dry-run', '--store', root])
    expect(dry.code, dry.stderr).toBe(0)
    expect(dry.stdout).toBe('scout: would delete v2 (no channel points to it)\n')
    expect(snapshot(root)).toEqual(before)
    const r = cli(['store', 'delete', 'scout', 'v2', '--store', root, '--json'])
    expect(r.code, r.stderr).toBe(0)
    expect(envelope(r).result).toMatchObject({ agent: 'scout', version: 'v2', dryRun: false, deleted: true, checksum: expect.stringMatching(/^[0-9a-f]{64}$/) })
    expect(readdirSync(join(root, 'scout', 'versions')).sort()).toEqual(['v1', 'v3'])
    expect(readAudit(root, 'scout').at(-1)).toMatchObject({ op: 'delete', version: 'v2' })
    expect(cli(['store', 'verify', '--store', root]).code).toBe(0)
  })

  it('a missing version or agent is exit 6, a bad name exit 2', () => {
    const root = copyOf('missing')
    expect(envelope(cli(['store', 'delete', 'scout', 'v9', '--store', root, '--json']))).toMatchObject({ status: 6, error: { code: 'VERSION_NOT_FOUND' } })
    expect(cli(['store', 'delete', 'nobody', 'v1', '--store', root]).code).toBe(6)
    expect(cli(['store', 'delete', 'scout', 'v1.tmp', '--store', root]).code).toBe(2)
  })
})

// Kills itself just before filesystem call K (the counting of store-crash-points.test.ts), in a delete.
const WRITER_BODY = `
await new ModelStore(root, { strict: true }).delete('scout', 'v2')
process.stdout.write(String(calls))
`

const runWriter = (script: string, root: string, killAt: number) => runCrashWriter(script, root, killAt)

describe('a crash at every filesystem call of store delete', () => {
  it('leaves v2 whole or gone, never half; gc removes what is left and the store verifies', async () => {
    const script = join(base, '..', 'delete-writer.mjs')
    writeCrashWriter(script, WRITER_BODY)
    const total = (await runWriter(script, copyOf('count'), Number.MAX_SAFE_INTEGER)).calls
    expect(total).toBeGreaterThan(5)
    const outcomes = new Set<string>()
    for (let k = 1; k <= total; k++) {
      const root = copyOf(`k${k}`)
      expect((await runWriter(script, root, k)).killed, `K=${k}`).toBe(true)
      const store = new ModelStore(root)
      const versionsDir = join(root, 'scout', 'versions')
      const present = existsSync(join(versionsDir, 'v2'))
      // Under its own name it is whole: every file the manifest lists, with its bytes.
      if (present) expect((await store.verify('scout', 'v2'))[0]!.problems, `K=${k}`).toEqual([])
      const leftovers = readdirSync(versionsDir).filter((n) => n.startsWith('.prune-v2-'))
      outcomes.add(present ? 'whole' : leftovers.length > 0 ? 'renamed aside' : 'gone')
      await store.gc({ olderThanMs: 0 })
      expect(readdirSync(versionsDir).sort(), `K=${k}`).toEqual(present ? ['v1', 'v2', 'v3'] : ['v1', 'v3'])
      expect((await store.verify()).filter((r) => !r.ok), `K=${k}`).toEqual([])
      // The dead writer's lock is taken over: the delete can be run again, or finds nothing to delete.
      if (present) expect((await store.delete('scout', 'v2')).deleted).toBe(true)
      else await expect(store.delete('scout', 'v2')).rejects.toMatchObject({ code: 'VERSION_NOT_FOUND' })
    }
    // The kills landed before the rename, between the rename and the end of the rm, and after.
    expect([...outcomes].sort()).toEqual(['gone', 'renamed aside', 'whole'])
  }, 120_000)
})
