/**
 * Alias shims: an agent entry that is a link to another agent's directory (`news-cleaner-agent ->
 * synthesizer`) is a read-only second name. Readers follow it and say so; every writer refuses it (exit 2)
 * naming the real agent, before anything is read, written or locked; a broken alias is exit 4 for readers.
 */
import { existsSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { currentReport, resolveChannel } from '../../src/publish/current.js'
import { ModelStore } from '../../src/publish/store.js'
import { makeTemp, publish, removeTemps, snapshot, writeTree } from '../helpers/store-helpers.js'

afterAll(removeTemps)

const ALIAS = 'news-cleaner-agent'
const REAL = 'synthesizer'

/** synthesizer v1 (staging) and v2 (current), and news-cleaner-agent -> synthesizer. */
async function aliasStore(link: 'relative' | 'absolute' = 'relative'): Promise<{ root: string; store: ModelStore }> {
  const root = makeTemp()
  const store = new ModelStore(root)
  await publish(store, REAL, 'v1')
  await publish(store, REAL, 'v2', { 'model.onnx': 'v2', 'tok/vocab.txt': 'a\nb\n' })
  await store.promote(REAL, 'v1', 'staging')
  symlinkSync(link === 'relative' ? REAL : join(root, REAL), join(root, ALIAS))
  return { root, store }
}

describe('readers through an alias', () => {
  it.each(['relative', 'absolute'] as const)('a %s alias: channels, current, versions, manifests, list and verify are the real agent\'s, and say so', async (link) => {
    const { root, store } = await aliasStore(link)
    const v = (version: string) => join(root, REAL, 'versions', version)
    expect(resolveChannel(root, ALIAS)).toEqual({ agent: ALIAS, alias: REAL, channel: 'current', version: 'v2', path: v('v2'), layout: 'relative-link' })
    expect(resolveChannel(root, ALIAS, 'staging')).toMatchObject({ agent: ALIAS, alias: REAL, version: 'v1', path: v('v1') })
    expect(currentReport(root, ALIAS)).toEqual(resolveChannel(root, ALIAS))
    // The real agent's own results carry no alias.
    expect(resolveChannel(root, REAL)).toEqual({ agent: REAL, channel: 'current', version: 'v2', path: v('v2'), layout: 'relative-link' })
    expect(store.current(ALIAS)).toBe(v('v2'))
    expect(store.resolve(ALIAS)).toMatchObject({ alias: REAL, path: v('v2') })
    expect(store.aliasOf(ALIAS)).toBe(REAL)
    expect(store.aliasOf(REAL)).toBeNull()
    expect(store.aliasOf('ghost')).toBeNull()
    expect(store.channels(ALIAS)).toEqual({ current: 'v2', staging: 'v1' })
    expect(await store.versions(ALIAS)).toEqual(['v1', 'v2'])
    expect((await store.versionInfos(ALIAS)).map((i) => i.path)).toEqual([v('v1'), v('v2')])
    expect(await store.manifest(ALIAS)).toMatchObject({ agent: REAL, version: 'v2' })
    expect(await store.manifest(ALIAS, 'v1')).toMatchObject({ agent: REAL, version: 'v1' })
    expect(await store.agents()).toEqual([REAL])
    const [aliasEntry, realEntry] = await store.list()
    expect(aliasEntry).toMatchObject({ agent: ALIAS, alias: REAL, current: 'v2', channels: { current: 'v2', staging: 'v1' }, versions: [{ version: 'v1', path: v('v1') }, { version: 'v2' }] })
    expect(realEntry).toMatchObject({ agent: REAL, current: 'v2' })
    expect(realEntry).not.toHaveProperty('alias')
    expect(await store.list(ALIAS)).toEqual([aliasEntry])
    const reports = await store.verify(ALIAS)
    expect(reports.map((r) => [r.agent, r.alias, r.version, r.ok, r.path])).toEqual([[ALIAS, REAL, 'v1', true, v('v1')], [ALIAS, REAL, 'v2', true, v('v2')]])
    expect((await store.verify(ALIAS, 'v2'))[0]).toMatchObject({ agent: ALIAS, alias: REAL, version: 'v2', ok: true })
    // The whole store: each version once, under its agent; a working alias adds nothing to check.
    expect((await store.verify()).map((r) => [r.agent, r.version, r.ok])).toEqual([[REAL, 'v1', true], [REAL, 'v2', true]])
  })

  it('an alias of an agent with no current: none (strict: exit 6), and the report still names the agent', async () => {
    const root = makeTemp()
    const store = new ModelStore(root)
    await publish(store, REAL, 'v1', undefined, false)
    symlinkSync(REAL, join(root, ALIAS))
    expect(store.current(ALIAS)).toBeNull()
    expect(currentReport(root, ALIAS, 'current', { strict: false })).toEqual({ agent: ALIAS, channel: 'current', version: null, path: null, layout: null, alias: REAL })
    expect(() => new ModelStore(root, { strict: true }).current(ALIAS)).toThrow(expect.objectContaining({ exitCode: 6, code: 'NO_CURRENT' }))
  })
})

describe('a broken alias is an integrity error for readers (exit 4)', () => {
  const cases: [string, (root: string) => string, RegExp][] = [
    ['outside the store', () => { const other = makeTemp(); mkdirSync(join(other, REAL)); return join(other, REAL) }, /which is outside the store/],
    ['a directory inside an agent', () => `${REAL}/versions`, /which is no agent directory \(it is not an entry of the store root\)/],
    ['the store root', () => '.', /which is the store root itself, no agent directory/],
    ['the store\'s own .modelforge', () => '.modelforge', /which is no agent \(as an agent name, it starts with "\."\)/],
    ['a file', (root) => { writeFileSync(join(root, 'notes'), 'x'); return 'notes' }, /which is no agent directory$/],
    ['nothing', () => 'ghost', /which does not exist/],
    ['another alias (a chain)', (root) => { symlinkSync(REAL, join(root, 'middle')); return 'middle' }, /and middle is itself an alias: an alias must lead to an agent directory, not to another alias/],
    ['itself', () => ALIAS, /and news-cleaner-agent is itself an alias/],
  ]

  it.each(cases)('an alias to %s', async (_name, target, why) => {
    const root = makeTemp()
    const store = new ModelStore(root)
    await publish(store, REAL, 'v1')
    symlinkSync(target(root), join(root, ALIAS))
    const expected = { exitCode: 4, code: 'AGENT_ALIAS_INVALID', message: expect.stringMatching(why) }
    expect(() => resolveChannel(root, ALIAS)).toThrow(expect.objectContaining(expected))
    expect(() => currentReport(root, ALIAS)).toThrow(expect.objectContaining(expected))
    expect(() => store.channels(ALIAS)).toThrow(expect.objectContaining(expected))
    expect(() => store.aliasOf(ALIAS)).toThrow(expect.objectContaining(expected))
    for (const read of [() => store.manifest(ALIAS), () => store.list(ALIAS), () => store.versions(ALIAS), () => store.verify(ALIAS)]) {
      await expect(read()).rejects.toMatchObject(expected)
    }
    // Listing and verifying the whole store name it and go on with the agents.
    const list = await store.list()
    expect(list.find((a) => a.agent === ALIAS)).toEqual({ agent: ALIAS, aliasProblem: expect.stringMatching(why), current: null, channels: {}, versions: [] })
    expect(list.find((a) => a.agent === REAL)).toMatchObject({ current: 'v1' })
    const reports = await store.verify()
    expect(reports.find((r) => r.agent === ALIAS)).toMatchObject({ ok: false, version: null, path: join(root, ALIAS), problems: [{ kind: 'alias', message: expect.stringMatching(why) }] })
    expect(reports.find((r) => r.agent === REAL)).toMatchObject({ ok: true })
    // A writer given it fails the same way, before any write.
    const before = snapshot(root)
    await expect(store.stage(ALIAS, 'v9')).rejects.toMatchObject(expected)
    expect(snapshot(root)).toEqual(before)
  })
})

describe('every writer refuses an alias (exit 2), naming the real agent, and changes nothing', () => {
  it.each<[string, (store: ModelStore, src: string) => Promise<unknown>]>([
    ['stage', (s) => s.stage(ALIAS, 'v3')],
    ['withStaging', (s) => s.withStaging(ALIAS, 'v3', async () => 'never run')],
    ['finalize (the real agent\'s staged v3, through the alias)', (s) => s.finalize(ALIAS, 'v3')],
    ['import', (s, src) => s.import(ALIAS, 'v4', src)],
    ['promote', (s) => s.promote(ALIAS, 'v1')],
    ['promote --channel', (s) => s.promote(ALIAS, 'v2', 'staging')],
    ['rollback', (s) => s.rollback(ALIAS)],
    ['prune', (s) => s.prune(ALIAS, { keep: 0 })],
    ['prune --dry-run', (s) => s.prune(ALIAS, { keep: 0, dryRun: true })],
    ['delete', (s) => s.delete(ALIAS, 'v1')],
    ['delete --dry-run', (s) => s.delete(ALIAS, 'v1', { dryRun: true })],
  ])('%s', async (_name, write) => {
    const { root, store } = await aliasStore()
    writeTree(await store.stage(REAL, 'v3'), { 'model.onnx': 'v3' })
    const src = makeTemp('mf-src-')
    writeTree(src, { 'model.onnx': 'imported' })
    const before = snapshot(root)
    await expect(write(store, src)).rejects.toMatchObject({
      exitCode: 2, code: 'AGENT_IS_ALIAS', message: `${ALIAS} is an alias of ${REAL}: write to ${REAL}`, hint: expect.stringContaining(`run the command with ${REAL}`),
    })
    expect(snapshot(root)).toEqual(before)
    // No lock was ever taken under the alias's name (nor any other).
    expect(readdirSync(join(root, '.modelforge', 'locks'))).toEqual([])
  })

  it('the real agent takes the same writes (the refusals above are by name only)', async () => {
    const { root, store } = await aliasStore()
    writeTree(await store.stage(REAL, 'v3'), { 'model.onnx': 'v3' })
    await expect(store.finalize(REAL, 'v3')).resolves.toMatchObject({ agent: REAL, version: 'v3' })
    expect(store.current(ALIAS)).toBe(join(root, REAL, 'versions', 'v3'))
  })
})

describe('gc and aliases', () => {
  it('gc cleans the real agent under its own name, skips alias entries, and never removes anything through one', async () => {
    const { root, store } = await aliasStore()
    await store.stage(REAL, 'v9')
    // A broken alias into a directory outside the store that looks like an agent full of leftovers.
    const outside = join(makeTemp(), 'elsewhere')
    mkdirSync(join(outside, 'versions', 'old.tmp'), { recursive: true })
    mkdirSync(join(outside, 'versions', '.prune-v1-abcd1234.tmp'))
    symlinkSync('versions/old.tmp', join(outside, '.link-1-2.tmp'))
    symlinkSync(outside, join(root, 'outside-alias'))
    const r = await store.gc({ olderThanMs: 0 })
    expect(r.removed).toEqual([{ path: join(root, REAL, 'versions', 'v9.tmp'), kind: 'staging' }])
    expect(r.skipped).toEqual([])
    expect(existsSync(join(outside, 'versions', 'old.tmp'))).toBe(true)
    expect(existsSync(join(outside, 'versions', '.prune-v1-abcd1234.tmp'))).toBe(true)
    expect(readdirSync(outside).sort()).toEqual(['.link-1-2.tmp', 'versions'])
    expect(readdirSync(root).sort()).toEqual(['.modelforge', ALIAS, 'outside-alias', REAL])
    expect(readdirSync(join(root, '.modelforge', 'locks'))).toEqual([])
  })
})
