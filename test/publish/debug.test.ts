import createDebug from 'debug'
import { symlinkSync } from 'node:fs'
import { join } from 'node:path'
import { format } from 'node:util'
import { afterAll, describe, expect, it } from 'vitest'
import { debugLog } from '../../src/lib/debug.js'
import { ModelStore } from '../../src/publish/store.js'
import { makeTemp, removeTemps, writeTree } from '../helpers/store-helpers.js'

afterAll(removeTemps)

/** Runs fn with DEBUG=modelforge:store, returning the lines logged. */
async function logged(fn: () => Promise<void>): Promise<string[]> {
  const lines: string[] = []
  const log = debugLog('store')
  const previous = log.log
  log.log = (...args: unknown[]) => lines.push(format(...(args as [string])).replace(/^.*?modelforge:store /, '').replace(/ \+\d+m?s$/, ''))
  createDebug.enable('modelforge:store')
  try {
    await fn()
  } finally {
    createDebug.disable()
    log.log = previous
  }
  return lines
}

describe('DEBUG=modelforge:store', () => {
  it('logs every store write: stage, finalize, channel moves, prune and gc removals, lock take and release', async () => {
    const root = makeTemp()
    const store = new ModelStore(root)
    const v = (x: string) => join(root, 'a', 'versions', x)
    const lines = await logged(async () => {
      for (const x of ['v1', 'v2']) {
        writeTree(await store.stage('a', x), { 'model.onnx': x })
        await store.finalize('a', x)
      }
      await store.promote('a', 'v1', 'staging')
      await store.rollback('a')
      await store.prune('a', { keep: 0 })
      await store.stage('a', 'v3')
      symlinkSync('versions/v1', join(root, 'a', '.link-current-1-0123abcd.tmp'))
      await store.gc({ olderThanMs: 0 })
    })
    const text = lines.join('\n')
    expect(text).toContain(`stage a/v1: created ${v('v1.tmp')}`)
    expect(text).toMatch(/^lock a taken \(finalize v1\) by pid \d+: .*a\.lock$/m)
    expect(text).toContain(`finalize a/v1: wrote ${join(v('v1.tmp'), 'manifest.json')} (1 file, 2 bytes, sha256-files-v1 `)
    expect(text).toContain(`finalize a/v1: renamed ${v('v1.tmp')} -> ${v('v1')}`)
    expect(text).toContain('channel current of a -> versions/v1')
    expect(text).toMatch(/^audit: finalize a\/v1 appended to .*audit\.jsonl$/m)
    expect(text).toMatch(/^lock a released \(finalize v1\)$/m)
    expect(text).toContain('channel staging of a -> versions/v1')
    expect(text).toMatch(/^lock a taken \(rollback\)/m)
    expect(text).toMatch(new RegExp(`^prune a: renamed ${v('v2')} -> ${v('.prune-v2-')}[0-9a-f]{8}\\.tmp, then removed it$`, 'm'))
    expect(text).toContain(`gc a: removed temp-link ${join(root, 'a', '.link-current-1-0123abcd.tmp')}`)
    expect(text).toContain(`gc a: removed staging ${v('v3.tmp')}`)
    // Every lock taken is released, and each line is one write (nothing logged for reads).
    expect(lines.filter((l) => l.startsWith('lock a taken')).length).toBe(lines.filter((l) => l.startsWith('lock a released')).length)
    expect(lines.filter((l) => l.startsWith('lock a taken')).length).toBe(6)
  })
})
