/**
 * The one HTTP client of the hub area: every request to the Hub goes through HubHttp.fetch, which
 *  - adds the token (only towards the Hub's own origin; never to a CDN another origin redirects to),
 *  - counts requests (the --json result reports them; tests assert "zero requests" on a warm cache),
 *  - retries connection errors and 5xx with exponential backoff, never 4xx,
 *  - turns the Hub's 401/403/404 answers (X-Error-Code RepoNotFound / RevisionNotFound / EntryNotFound /
 *    GatedRepo) into our exit-coded errors with hints, before @huggingface/hub sees them.
 *
 * It is handed to @huggingface/hub as its custom `fetch`. The token is added here rather than through the
 * library's `accessToken` because the library refuses tokens that do not start with "hf_" (organisation
 * tokens from a self-hosted endpoint, OAuth tokens), and so that one place decides where a token may go.
 * The token never appears in a message: errors carry the URL (which never holds it) and the Hub's message.
 */
import { debugLog } from '../lib/debug.js'
import { request as httpRequest, type IncomingMessage } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { ExternalError, NotFoundError, type ModelforgeError } from '../lib/errors.js'
import { backoffDelay, describeNetworkError, isConnectionError, RetryableError, sleep } from '../lib/http.js'

export { backoffDelay, isConnectionError, RetryableError, sleep }

// Every request, without credentials (URLs never carry the token; redact() drops user info).
const log = debugLog('http')

export interface RetryOptions {
  /** Total attempts per request, first one included (default 5). */
  attempts?: number
  /** First backoff delay in ms, doubled each time, with +-25% jitter (default 400). */
  baseDelayMs?: number
}

export interface HubHttpOptions {
  endpoint: string
  token?: string
  retry?: RetryOptions
  /** Repo and revision, for messages. */
  context?: { repoId?: string; revision?: string }
}

/** Another download of the same fetch failed, so this one stopped (its partial file is kept for a resume). */
export class CancelledError extends Error {
  constructor() {
    super('cancelled because another download of this fetch failed')
    this.name = 'CancelledError'
  }
}

const MAX_REDIRECTS = 5

export class HubHttp {
  readonly endpoint: string
  private readonly origin: string
  private readonly token?: string
  private readonly attempts: number
  private readonly baseDelayMs: number
  readonly context: { repoId?: string; revision?: string }
  /** HTTP requests sent, retries and redirects included. */
  requests = 0

  constructor(options: HubHttpOptions) {
    this.endpoint = options.endpoint.replace(/\/+$/, '')
    this.origin = new URL(this.endpoint).origin
    this.token = options.token
    this.attempts = Math.max(1, options.retry?.attempts ?? 5)
    this.baseDelayMs = options.retry?.baseDelayMs ?? 400
    this.context = options.context ?? {}
  }

  /** What it takes to make the same client elsewhere (a download thread); holds the token. */
  options(): HubHttpOptions {
    return { endpoint: this.endpoint, token: this.token, retry: { attempts: this.attempts, baseDelayMs: this.baseDelayMs }, context: this.context }
  }

  /** fetch for @huggingface/hub: retries and error mapping included. */
  readonly fetch = (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.toString() : input.url
    return this.withRetry(url, async () => {
      const res = await this.send(url, init)
      await this.check(res, url)
      return res
    })
  }

  /** Runs fn, retrying connection errors and 5xx (RetryableError) with backoff; throws ExternalError at the end. */
  async withRetry<T>(url: string, fn: (attempt: number) => Promise<T>, signal?: AbortSignal): Promise<T> {
    let last: unknown
    for (let attempt = 0; attempt < this.attempts; attempt++) {
      try {
        if (signal?.aborted) throw new CancelledError()
        return await fn(attempt)
      } catch (err) {
        if (signal?.aborted) throw new CancelledError()
        if (!isConnectionError(err)) throw err
        last = err
        if (attempt + 1 < this.attempts) {
          const delay = backoffDelay(attempt, this.baseDelayMs)
          log('retry %d/%d of %s in %d ms: %s', attempt + 1, this.attempts - 1, redact(url), Math.round(delay), err instanceof RetryableError && err.status ? `HTTP ${err.status}` : describeNetworkError(err))
          await sleep(delay)
        }
      }
    }
    const status = last instanceof RetryableError ? last.status : undefined
    throw new ExternalError(
      `Request to the Hub failed after ${this.attempts} attempts: ${status ? `HTTP ${status}` : describeNetworkError(last)} (${redact(url)})`,
      {
        code: status ? 'HUB_SERVER_ERROR' : 'HUB_UNREACHABLE',
        hint: `Check the network and HF_ENDPOINT (${this.endpoint}); rerun to resume. Use --offline to work from the cache only.`,
        cause: last,
        details: { url: redact(url), attempts: this.attempts, status },
      },
    )
  }

  /**
   * One request, following redirects by hand so that the Authorization header is sent only to the Hub's
   * origin (an LFS redirect to a CDN on another host must not receive the token).
   */
  async send(url: string, init: RequestInit = {}): Promise<Response> {
    let current = url
    for (let hop = 0; ; hop++) {
      const headers = new Headers(init.headers)
      const sameOrigin = new URL(current).origin === this.origin
      if (this.token && sameOrigin) headers.set('Authorization', `Bearer ${this.token}`)
      else headers.delete('Authorization')
      this.requests++
      const res = await fetch(current, { ...init, headers, redirect: 'manual' })
      log('%s %s -> %d (%s bytes)', init.method ?? 'GET', redact(current), res.status, res.headers.get('content-length') ?? '?')
      const location = res.headers.get('location')
      if (res.status >= 300 && res.status < 400 && location && hop < MAX_REDIRECTS) {
        await res.body?.cancel()
        current = new URL(location, current).toString()
        continue
      }
      return res
    }
  }

  /**
   * A GET for file bodies with node:http(s) rather than fetch: Node's web streams cost about a third of the
   * throughput on a 1 GiB body (measured in bench/fetch.bench.ts's setting), and an IncomingMessage gives
   * socket-level idle timeouts. Same rules as send(): redirects by hand, token only to the Hub's origin,
   * every request counted. Non-2xx answers are turned into errors here (5xx: RetryableError).
   */
  async getStream(url: string, headers: Record<string, string>, options: { signal?: AbortSignal; idleTimeoutMs: number }): Promise<{ res: IncomingMessage; served?: string }> {
    let current = url
    // The blob id the Hub itself announces (X-Linked-Etag on an LFS redirect, else ETag), before any CDN hop.
    let served: string | undefined
    for (let hop = 0; ; hop++) {
      const target = new URL(current)
      const h: Record<string, string> = { ...headers }
      if (this.token && target.origin === this.origin) h.Authorization = `Bearer ${this.token}`
      this.requests++
      const res = await new Promise<IncomingMessage>((resolve, reject) => {
        const request = (target.protocol === 'https:' ? httpsRequest : httpRequest)(target, { method: 'GET', headers: h, signal: options.signal }, resolve)
        request.setTimeout(options.idleTimeoutMs, () => request.destroy(Object.assign(new Error(`no data for ${options.idleTimeoutMs} ms`), { code: 'ETIMEDOUT' })))
        request.on('error', reject)
        request.end()
      })
      const status = res.statusCode ?? 0
      log('GET %s%s -> %d (%s bytes)', redact(current), h.Range ? ` (${h.Range})` : '', status, res.headers['content-length'] ?? '?')
      if (served === undefined && res.headers['x-repo-commit']) served = stripEtag(res.headers['x-linked-etag'] ?? res.headers.etag)
      const location = res.headers.location
      if (status >= 300 && status < 400 && location && hop < MAX_REDIRECTS) {
        res.resume()
        current = new URL(location, current).toString()
        continue
      }
      if ((status >= 200 && status < 300) || status === 416) return { res, served }
      if (status >= 500) {
        res.resume()
        throw new RetryableError(`HTTP ${status}`, status)
      }
      const chunks: Buffer[] = []
      for await (const c of res) chunks.push(c as Buffer)
      const header = (name: string): string | undefined => {
        const v = res.headers[name]
        return Array.isArray(v) ? v[0] : v
      }
      throw this.errorFor(status, header, Buffer.concat(chunks).toString('utf8').slice(0, 2000), current)
    }
  }

  /** Throws the right error for a non-2xx response; 5xx becomes RetryableError. */
  async check(res: Response, url: string): Promise<void> {
    if (res.ok) return
    if (res.status >= 500) {
      await res.body?.cancel()
      throw new RetryableError(`HTTP ${res.status}`, res.status)
    }
    throw await this.httpError(res, url)
  }

  async httpError(res: Response, url: string): Promise<ModelforgeError> {
    let text = ''
    try {
      text = await res.text()
    } catch {
      // The message is a nicety; the status and error code are what we act on.
    }
    return this.errorFor(res.status, (name) => res.headers.get(name), text, url)
  }

  /** Our error for a 4xx answer of the Hub, from its status, headers (X-Error-Code) and body. */
  errorFor(status: number, header: (name: string) => string | null | undefined, text: string, url: string): ModelforgeError {
    const code = header('x-error-code') ?? ''
    let serverMessage = header('x-error-message') ?? ''
    if (text) {
      try {
        const json = JSON.parse(text) as { error?: string; message?: string }
        serverMessage = json.error ?? json.message ?? serverMessage
      } catch {
        serverMessage = serverMessage || text.slice(0, 200)
      }
    }
    const { repoId = 'the repository', revision } = this.context
    const details = { url: redact(url), status, hubErrorCode: code || undefined, hubMessage: serverMessage || undefined }
    const tokenHint = this.token
      ? 'The token given (HF_TOKEN or --token) was sent; check that it is valid and has access to this repository.'
      : 'If the repository is private or gated, set HF_TOKEN or pass --token.'
    if (code === 'RepoNotFound' || status === 401) {
      return new NotFoundError(`Repository ${repoId} was not found on ${this.endpoint} (HTTP ${status}${code ? ` ${code}` : ''})`, {
        code: 'REPO_NOT_FOUND',
        hint: `Check the repo id. ${tokenHint}`,
        details,
      })
    }
    if (code === 'RevisionNotFound') {
      return new NotFoundError(`Revision "${revision}" does not exist in ${repoId}`, {
        code: 'REVISION_NOT_FOUND',
        hint: /^[0-9a-f]{7,39}$/.test(revision ?? '')
          ? 'An abbreviated commit is resolved from the cache only; pass the full 40-hex commit, or an existing branch or tag, with --revision.'
          : 'Pass an existing branch, tag or commit with --revision (default: main); if the branch was rewritten since it was cached, add --refresh.',
        details,
      })
    }
    if (code === 'EntryNotFound') {
      return new NotFoundError(`A file listed for ${repoId} is missing on the Hub: ${redact(url)}`, {
        code: 'ENTRY_NOT_FOUND',
        hint: 'The repository changed while fetching; rerun the fetch (with --refresh for a branch).',
        details,
      })
    }
    if (code === 'GatedRepo' || status === 403) {
      return new ExternalError(`Access to ${repoId} was refused by the Hub (HTTP ${status}${code ? ` ${code}` : ''}): ${serverMessage}`, {
        code: 'ACCESS_DENIED',
        hint: `Accept the repository's conditions on the Hub if it is gated. ${tokenHint}`,
        details,
      })
    }
    return new ExternalError(`The Hub answered HTTP ${status} for ${redact(url)}${serverMessage ? `: ${serverMessage}` : ''}`, {
      code: 'HUB_HTTP_ERROR',
      hint: 'This request is not retried (4xx); check the repo id, revision and HF_ENDPOINT.',
      details,
    })
  }
}

export function stripEtag(value: string | string[] | undefined): string | undefined {
  const v = Array.isArray(value) ? value[0] : value
  return v ? v.replace(/^W\//, '').replace(/"/g, '') : undefined
}

/** URLs carry no token, but may carry user info if HF_ENDPOINT had some: never print it. */
export function redact(url: string): string {
  try {
    const u = new URL(url)
    if (u.username || u.password) {
      u.username = '***'
      u.password = ''
    }
    return u.toString()
  } catch {
    return url
  }
}
