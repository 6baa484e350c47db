import { appendFileSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeEach, describe, expect, it, vi } from 'vitest'
import { appendJsonLine, readJsonLines } from '../../src/lib/audit.js'
import { appendAudit as appendHubAudit, auditLogPath, readAudit as readHubAudit, type AuditEntry } from '../../src/hub/audit.js'
import { appendAudit as appendStoreAudit, auditPath, readAudit as readStoreAudit } from '../../src/publish/audit.js'
import { makeTemp, removeTemps } from '../helpers/store-helpers.js'

// fsync is counted by path: which descriptors were synced is the durability the writer promises.
const synced: string[] = []
vi.mock('node:fs', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs')>()
  const paths = new Map<number, string>()
  return {
    ...real,
    openSync: (...args: Parameters<typeof real.openSync>) => {
      const fd = real.openSync(...args)
      paths.set(fd, String(args[0]))
      return fd
    },
    fsyncSync: (fd: number) => {
      synced.push(paths.get(fd) ?? `fd ${fd}`)
      real.fsyncSync(fd)
    },
  }
})

afterAll(removeTemps)
beforeEach(() => {
  synced.length = 0
})

const fetchEntry = (repo: string): AuditEntry => ({ event: 'fetch', repo, revision: 'main', commit: 'c'.repeat(40), endpoint: 'http://hub', bytesDownloaded: 1, files: [] })

describe('lib/audit', () => {
  it('appends one line per record, creating the directory; the reader skips a torn line and the next record starts afresh', () => {
    const dir = makeTemp()
    const path = join(dir, '.modelforge', 'log.jsonl')
    expect(readJsonLines(path)).toEqual([])
    appendJsonLine(path, { n: 1 })
    appendFileSync(path, '{"n":')
    expect(readJsonLines(path)).toEqual([{ n: 1 }])
    appendJsonLine(path, { n: 2 })
    expect(readFileSync(path, 'utf8')).toBe('{"n":1}\n{"n":\n{"n":2}\n')
    expect(readJsonLines(path)).toEqual([{ n: 1 }, { n: 2 }])
  })

  it('fsyncs every record, and the directory when the log is created', () => {
    const dir = makeTemp()
    const path = join(dir, 'log.jsonl')
    appendJsonLine(path, { n: 1 })
    appendJsonLine(path, { n: 2 })
    expect(synced).toEqual([path, dir, path])
  })

  it('the store keeps its records (user, host, pid) and its reader by agent', () => {
    const root = makeTemp()
    appendStoreAudit(root, { op: 'promote', agent: 'a', version: 'v1', channel: 'current', previous: null })
    appendStoreAudit(root, { op: 'gc', agent: 'b', removed: [] })
    expect(readStoreAudit(root, 'a')).toEqual([expect.objectContaining({ op: 'promote', agent: 'a', user: expect.any(String), host: expect.any(String), pid: process.pid })])
    expect(readStoreAudit(root)).toHaveLength(2)
    expect(synced).toEqual([auditPath(root), join(root, '.modelforge'), auditPath(root)])
  })

  it('the hub audit now gets what only the store had: fsync, and a torn last line repaired instead of glued to the next record', async () => {
    const cache = makeTemp()
    await appendHubAudit(cache, fetchEntry('org/one'))
    expect(synced).toEqual([auditLogPath(cache), join(cache, '.modelforge')])
    appendFileSync(auditLogPath(cache), '{"event":"fe')
    await appendHubAudit(cache, fetchEntry('org/two'))
    expect(readHubAudit(cache).map((r) => r.repo)).toEqual(['org/one', 'org/two'])
    expect(readHubAudit(cache)[1]).toMatchObject({ event: 'fetch', user: expect.any(String), pid: process.pid, time: expect.any(String) })
  })
})
