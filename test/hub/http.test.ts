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
