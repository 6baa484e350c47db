import { homedir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { backoffDelay, HubHttp, RetryableError } from '../../src/hub/http.js'
import { hubCacheDir, hubOffline } from '../../src/lib/env.js'
import { NotFoundError } from '../../src/lib/errors.js'

describe('HubHttp retries', () => {
  it('backs off exponentially with +-25% jitter', () => {
    for (let i = 0; i < 50; i++) {
      expect(backoffDelay(0, 400)).toBeGreaterThanOrEqual(300)
      expect(backoffDelay(0, 400)).toBeLessThanOrEqual(500)
      expect(backoffDelay(3, 400)).toBeGreaterThanOrEqual(2400)
      expect(backoffDelay(3, 400)).toBeLessThanOrEqual(4000)
    }
  })

  it('retries a retryable failure a bounded number of times, waiting between attempts; never retries other errors', async () => {
    const http = new HubHttp({ endpoint: 'http://127.0.0.1:9', retry: { attempts: 3, baseDelayMs: 40 } })
    let calls = 0
    const started = Date.now()
    const err = await http
      .withRetry('http://127.0.0.1:9/x', () => {
        calls++
        throw new RetryableError('HTTP 503', 503)
      })
      .catch((e: unknown) => e)
    // Two waits: 40 ms and 80 ms, each at least 75% of that.
    expect(Date.now() - started).toBeGreaterThanOrEqual(85)
    expect(calls).toBe(3)
    expect(err).toMatchObject({ exitCode: 3, code: 'HUB_SERVER_ERROR', details: { attempts: 3, status: 503 } })

    calls = 0
    const notFound = new NotFoundError('gone', { code: 'REPO_NOT_FOUND', hint: 'x' })
    await expect(
      http.withRetry('http://127.0.0.1:9/x', () => {
        calls++
        throw notFound
      }),
    ).rejects.toBe(notFound)
    expect(calls).toBe(1)
  })
})

describe('HF_HUB_OFFLINE', () => {
  it('is read as huggingface_hub reads it: 1/ON/YES/TRUE, falling back to TRANSFORMERS_OFFLINE', () => {
    for (const v of ['1', 'true', 'ON', 'yes']) expect(hubOffline({ HF_HUB_OFFLINE: v }), v).toBe(true)
    for (const v of ['0', 'false', 'no', 'off', '', 'disable']) expect(hubOffline({ HF_HUB_OFFLINE: v }), v).toBe(false)
    expect(hubOffline({ TRANSFORMERS_OFFLINE: '1' })).toBe(true)
    expect(hubOffline({})).toBe(false)
  })
})

describe('the cache directory', () => {
  it('is found as huggingface_hub finds it: HUGGINGFACE_HUB_CACHE, XDG_CACHE_HOME and "~" included', () => {
    expect(hubCacheDir(undefined, { HUGGINGFACE_HUB_CACHE: '/old' })).toBe('/old')
    expect(hubCacheDir(undefined, { HF_HUB_CACHE: '/new', HUGGINGFACE_HUB_CACHE: '/old' })).toBe('/new')
    expect(hubCacheDir(undefined, { XDG_CACHE_HOME: '/xdg' })).toBe('/xdg/huggingface/hub')
    expect(hubCacheDir(undefined, { HF_HOME: '/h', XDG_CACHE_HOME: '/xdg' })).toBe('/h/hub')
    expect(hubCacheDir(undefined, { HF_HOME: '~/hf' })).toBe(join(homedir(), 'hf', 'hub'))
    expect(hubCacheDir('~/c', {})).toBe(join(homedir(), 'c'))
  })
})

describe('DEBUG=modelforge:http', () => {
  it('logs every request (method, URL without credentials, status, bytes) and every retry; never the token', async () => {
    const { createServer } = await import('node:http')
    const createDebug = (await import('debug')).default
    const { format } = await import('node:util')
    const { debugLog } = await import('../../src/lib/debug.js')
    let hits = 0
    const server = createServer((req, res) => {
      hits++
      if (hits === 1) res.writeHead(503).end()
      else res.writeHead(200, { 'content-type': 'application/json', 'content-length': '2' }).end('{}')
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const port = (server.address() as { port: number }).port
    const lines: string[] = []
    const log = debugLog('http')
    const previous = log.log
    log.log = (...args: unknown[]) => lines.push(format(...(args as [string])))
    createDebug.enable('modelforge:http')
    try {
      const http = new HubHttp({ endpoint: `http://127.0.0.1:${port}`, token: 'hf_secret123', retry: { attempts: 3, baseDelayMs: 1 } })
      const res = await http.fetch(`http://127.0.0.1:${port}/api/models/org/x`)
      expect(res.status).toBe(200)
    } finally {
      createDebug.disable()
      log.log = previous
      server.close()
    }
    const text = lines.join('\n')
    expect(text).toMatch(new RegExp(`GET http://127\\.0\\.0\\.1:${port}/api/models/org/x -> 503`))
    expect(text).toMatch(/retry 1\/2 of http:\/\/127\.0\.0\.1:\d+\/api\/models\/org\/x in \d+ ms: HTTP 503/)
    expect(text).toMatch(new RegExp(`GET http://127\\.0\\.0\\.1:${port}/api/models/org/x -> 200 \\(2 bytes\\)`))
    expect(text).not.toContain('hf_secret123')
  })
})
