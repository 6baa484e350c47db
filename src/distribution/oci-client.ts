/**
 * A small client of the OCI Distribution API (distribution-spec v1.1), on node:http(s), streaming from and to
 * disk. Hand-written: no maintained OCI client runs on Node 20 (@sigstore/oci 0.7 needs Node 22 and buffers
 * whole blobs; the others only read, or are unmaintained). It does what push and pull need:
 *  - authentication: anonymous, Basic, and the Bearer token flow (the WWW-Authenticate challenge, a token
 *    scoped to the repository, fetched with the credentials as Basic), the credentials sent only to the
 *    registry's own origin, and to the token realm it names;
 *  - redirects followed by hand, without the Authorization header to another origin (registries hand blobs
 *    to object storage that way);
 *  - retries with backoff of connection errors and 5xx, never of 4xx; registry errors mapped to exit codes;
 *  - every request logged under DEBUG=modelforge:oci, without credentials, and counted.
 */
import { createHash } from 'node:crypto'
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { type Readable } from 'node:stream'
import { debugLog } from '../lib/debug.js'
import { fastGet, type HttpResponse } from '../lib/fast-get.js'
import { ExternalError, IntegrityError, NotFoundError, type ModelforgeError } from '../lib/errors.js'
import { backoffDelay, describeNetworkError, isConnectionError, RetryableError, sleep } from '../lib/http.js'
import { type OciCredentials } from './credentials.js'
import { formatReference, type OciReference } from './reference.js'

const log = debugLog('oci')
const MAX_REDIRECTS = 5

/** A request body that can be sent again on a retry: bytes, or a stream opened afresh each time. */
export type Body = Buffer | { length: number; open: () => Readable }

export interface OciClientOptions {
  credentials?: OciCredentials
  retry?: { attempts?: number; baseDelayMs?: number }
  /** A connection silent this long is broken (default 60 s). */
  idleTimeoutMs?: number
}

export interface SendOptions {
  headers?: Record<string, string>
  body?: Body
  /** Statuses the caller handles itself; any other is an error. */
  accept: number[]
  /** A GET of a large body: read through lib/fast-get.ts rather than node:http (3.8 times as fast). */
  fast?: boolean
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name]
  return Array.isArray(v) ? v[0] : v
}

/** `Bearer realm="...",service="...",scope="..."` -> { scheme, params }. */
export function parseChallenge(value: string): { scheme: string; params: Record<string, string> } {
  const m = /^\s*(\w+)\s*(.*)$/.exec(value)
  const params: Record<string, string> = {}
  if (!m) return { scheme: '', params }
  for (const p of m[2]!.matchAll(/(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g)) params[p[1]!.toLowerCase()] = (p[2] ?? p[3] ?? '').replace(/\\(.)/g, '$1')
  return { scheme: m[1]!.toLowerCase(), params }
}

async function readText(res: HttpResponse, limit = 64 * 1024): Promise<string> {
  const chunks: Buffer[] = []
  let n = 0
  for await (const c of res) {
    if (n < limit) chunks.push(c as Buffer)
    n += (c as Buffer).length
  }
  return Buffer.concat(chunks).toString('utf8').slice(0, limit)
}

export class OciClient {
  readonly origin: string
  /** HTTP requests sent, retries, redirects and token requests included. */
  requests = 0
  private auth?: string
  private readonly attempts: number
  private readonly baseDelayMs: number
  private readonly idleTimeoutMs: number

  constructor(
    readonly ref: OciReference,
    private readonly options: OciClientOptions = {},
  ) {
    this.origin = `${ref.plainHttp ? 'http' : 'https'}://${ref.registry}`
    this.attempts = Math.max(1, options.retry?.attempts ?? 5)
    this.baseDelayMs = options.retry?.baseDelayMs ?? 300
    this.idleTimeoutMs = options.idleTimeoutMs ?? 60_000
  }

  /** /v2/<repository>/<rest> on the registry. */
  url(rest: string): string {
    return `${this.origin}/v2/${this.ref.repository}/${rest}`
  }

  /** One HTTP exchange, no redirects, no auth logic. */
  private raw(method: string, url: string, headers: Record<string, string>, body?: Body, fast = false): Promise<HttpResponse> {
    this.requests++
    const target = new URL(url)
    if (fast && method === 'GET' && body === undefined) {
      return fastGet(url, { headers, idleTimeoutMs: this.idleTimeoutMs }).then((res) => {
        log('%s %s%s -> %d', method, url, headers.Range ? ` (${headers.Range})` : '', res.statusCode)
        return res
      })
    }
    return new Promise<HttpResponse>((resolve, reject) => {
      const h: Record<string, string | number> = { ...headers }
      if (body !== undefined) h['Content-Length'] = Buffer.isBuffer(body) ? body.length : body.length
      const req = (target.protocol === 'https:' ? httpsRequest : httpRequest)(target, { method, headers: h }, (res) => {
        log('%s %s%s -> %d', method, url, headers.Range ? ` (${headers.Range})` : headers['Content-Range'] ? ` (${headers['Content-Range']})` : '', res.statusCode)
        resolve(res)
      })
      req.setTimeout(this.idleTimeoutMs, () => req.destroy(Object.assign(new Error(`no data for ${this.idleTimeoutMs} ms`), { code: 'ETIMEDOUT' })))
      req.on('error', reject)
      if (body === undefined) req.end()
      else if (Buffer.isBuffer(body)) req.end(body)
      else {
        const stream = body.open()
        stream.on('error', (err) => req.destroy(err))
        stream.pipe(req)
      }
    })
  }

  /**
   * A request to the registry: authenticates on a 401 challenge (once), follows redirects by hand with the
   * Authorization header only towards the registry's origin, retries connection errors and 5xx. Returns the
   * response when its status is in `accept`; turns any other into our error.
   */
  async send(method: string, url: string, options: SendOptions): Promise<HttpResponse> {
    return this.withRetry(url, async () => {
      let current = url
      let authenticated = false
      for (let hop = 0; ; hop++) {
        const headers: Record<string, string> = { ...options.headers }
        const sameOrigin = new URL(current).origin === this.origin
        if (this.auth && sameOrigin) headers.Authorization = this.auth
        const res = await this.raw(method, current, headers, options.body, options.fast)
        const status = res.statusCode ?? 0
        const location = header(res.headers, 'location')
        if (status === 401 && sameOrigin && !authenticated) {
          const challenge = header(res.headers, 'www-authenticate') ?? ''
          await readText(res)
          await this.authenticate(challenge)
          authenticated = true
          continue
        }
        if ([301, 302, 303, 307, 308].includes(status) && location && hop < MAX_REDIRECTS && (method === 'GET' || method === 'HEAD')) {
          res.resume()
          current = new URL(location, current).toString()
          continue
        }
        if (options.accept.includes(status)) return res
        if (status >= 500) {
          res.resume()
          throw new RetryableError(`HTTP ${status}`, status)
        }
        throw this.errorFor(status, await readText(res), method, current)
      }
    })
  }

  private async withRetry<T>(url: string, fn: () => Promise<T>): Promise<T> {
    let last: unknown
    for (let attempt = 0; attempt < this.attempts; attempt++) {
      try {
        return await fn()
      } catch (err) {
        if (!isConnectionError(err)) throw err
        last = err
        if (attempt + 1 < this.attempts) {
          const delay = backoffDelay(attempt, this.baseDelayMs)
          log('retry %d/%d of %s in %d ms: %s', attempt + 1, this.attempts - 1, url, delay, describeNetworkError(err))
          await sleep(delay)
        }
      }
    }
    const status = last instanceof RetryableError ? last.status : undefined
    throw new ExternalError(`The OCI registry ${this.ref.registry} failed after ${this.attempts} attempts: ${status ? `HTTP ${status}` : describeNetworkError(last)}`, {
      code: status ? 'OCI_SERVER_ERROR' : 'OCI_UNREACHABLE',
      hint: status
        ? 'The registry is failing; retry later (a push or pull resumes from what it has).'
        : `Check that the registry runs at ${this.origin}${this.ref.plainHttp ? '' : ' (TLS; --plain-http for a registry without it)'}; a push or pull resumes when rerun.`,
      cause: last,
      details: { registry: this.ref.registry, attempts: this.attempts, status },
    })
  }

  /** Answers a 401 challenge: Basic with the credentials, or a Bearer token from the realm it names. */
  private async authenticate(challenge: string): Promise<void> {
    const { scheme, params } = parseChallenge(challenge)
    const creds = this.options.credentials
    const basic = creds ? `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}` : undefined
    if (scheme === 'basic') {
      if (!basic) throw this.authError('asks for a user and password and none were given', false)
      this.auth = basic
      return
    }
    if (scheme !== 'bearer' || !params.realm) throw this.authError(`asks for an authentication modelforge does not speak (${scheme || 'none named'})`, false)
    const realm = new URL(params.realm)
    if (params.service) realm.searchParams.set('service', params.service)
    realm.searchParams.set('scope', params.scope ?? `repository:${this.ref.repository}:pull,push`)
    const headers: Record<string, string> = basic ? { Authorization: basic } : {}
    const res = await this.raw('GET', realm.toString(), headers)
    const text = await readText(res)
    if (res.statusCode === 401 || res.statusCode === 403) throw this.authError(`refused the credentials at its token service ${realm.origin}`, true)
    if ((res.statusCode ?? 0) >= 500) throw new RetryableError(`token service HTTP ${res.statusCode}`, res.statusCode)
    let token: string | undefined
    try {
      const body = JSON.parse(text) as { token?: string; access_token?: string }
      token = body.token ?? body.access_token
    } catch {
      token = undefined
    }
    if (res.statusCode !== 200 || !token) throw this.authError(`token service ${realm.origin} answered HTTP ${res.statusCode} without a token`, true)
    this.auth = `Bearer ${token}`
  }

  private authError(why: string, sent: boolean): ModelforgeError {
    const creds = this.options.credentials
    return new ExternalError(`The OCI registry ${this.ref.registry} ${why}`, {
      code: 'OCI_AUTH_FAILED',
      hint: creds
        ? `The credentials from ${creds.source} were ${sent ? 'sent and refused' : 'not usable'}; check them (docker login ${this.ref.registry}, or MODELFORGE_OCI_USERNAME and MODELFORGE_OCI_PASSWORD).`
        : `Log in (docker login ${this.ref.registry}) or set MODELFORGE_OCI_USERNAME and MODELFORGE_OCI_PASSWORD.`,
      details: { registry: this.ref.registry },
    })
  }

  /** Our error for a 4xx answer, from the registry's error body ({"errors":[{"code","message"}]}). */
  private errorFor(status: number, text: string, method: string, url: string): ModelforgeError {
    let codes: string[] = []
    let message = ''
    try {
      const errors = (JSON.parse(text) as { errors?: { code?: string; message?: string }[] }).errors ?? []
      codes = errors.map((e) => e.code ?? '').filter(Boolean)
      message = errors.map((e) => e.message ?? e.code).filter(Boolean).join('; ')
    } catch {
      message = text.slice(0, 200)
    }
    const where = formatReference(this.ref)
    const details = { registry: this.ref.registry, repository: this.ref.repository, status, codes, method, path: new URL(url).pathname }
    if (status === 401) return this.authError('refused the credentials', this.options.credentials !== undefined)
    if (status === 403 || codes.includes('DENIED')) {
      return new ExternalError(`The OCI registry ${this.ref.registry} denied ${method} on ${this.ref.repository}${message ? `: ${message}` : ''}`, {
        code: 'OCI_ACCESS_DENIED',
        hint: 'The credentials were accepted but do not grant this; ask for pull (or push) access to the repository.',
        details,
      })
    }
    if (status === 404 || codes.some((c) => ['NAME_UNKNOWN', 'MANIFEST_UNKNOWN', 'BLOB_UNKNOWN'].includes(c))) {
      return new NotFoundError(`${where} was not found${codes.length ? ` (${codes.join(', ')})` : ''}`, {
        code: 'OCI_NOT_FOUND',
        hint: 'Check the repository and tag; `store push` creates them.',
        details,
      })
    }
    return new ExternalError(`The OCI registry ${this.ref.registry} answered HTTP ${status} to ${method} ${new URL(url).pathname}${message ? `: ${message}` : ''}`, {
      code: 'OCI_HTTP_ERROR',
      hint: 'This request is not retried (4xx); check the reference and the registry\'s limits.',
      details,
    })
  }

  // ------------------------------------------------------------------ blobs

  async hasBlob(digest: string): Promise<boolean> {
    const res = await this.send('HEAD', this.url(`blobs/${digest}`), { accept: [200, 404] })
    res.resume()
    return res.statusCode === 200
  }

  /** Mounts a blob from another repository of the same registry; false when the registry would not. */
  async mountBlob(digest: string, from: string): Promise<boolean> {
    const u = new URL(this.url('blobs/uploads/'))
    u.searchParams.set('mount', digest)
    u.searchParams.set('from', from)
    const res = await this.send('POST', u.toString(), { accept: [201, 202], headers: { 'Content-Length': '0' } })
    res.resume()
    if (res.statusCode === 201) return true
    // 202: the registry started an upload instead; leave it to expire rather than guess it may be deleted.
    return false
  }

  private async startUpload(): Promise<string> {
    const res = await this.send('POST', this.url('blobs/uploads/'), { accept: [202], headers: { 'Content-Length': '0' } })
    res.resume()
    const location = header(res.headers, 'location')
    if (!location) throw this.errorFor(502, 'upload started without a Location', 'POST', this.url('blobs/uploads/'))
    return new URL(location, this.origin).toString()
  }

  private static withDigest(location: string, digest: string): string {
    const u = new URL(location)
    u.searchParams.set('digest', digest)
    return u.toString()
  }

  /** A blob in one PUT (small blobs). */
  async uploadMonolithic(digest: string, body: Body): Promise<void> {
    const location = await this.startUpload()
    const res = await this.send('PUT', OciClient.withDigest(location, digest), { accept: [201], body, headers: { 'Content-Type': 'application/octet-stream' } })
    res.resume()
  }

  /**
   * A blob in PATCH chunks with Content-Range. After a chunk fails on the connection, the upload's status
   * (GET on its location: 204 with Range) says how many bytes the registry kept, and the next PATCH
   * continues from there; a registry that dropped the upload instead (404) gets the blob again from byte 0.
   */
  async uploadChunked(digest: string, size: number, chunkBytes: number, open: (start: number, end: number) => Readable, onBytes?: (n: number) => void): Promise<void> {
    let location = await this.startUpload()
    let offset = 0
    let failures = 0
    while (offset < size) {
      const end = Math.min(size, offset + chunkBytes) - 1
      const start = offset
      try {
        const auth: Record<string, string> = this.auth && new URL(location).origin === this.origin ? { Authorization: this.auth } : {}
        const res = await this.raw('PATCH', location, { ...auth, 'Content-Type': 'application/octet-stream', 'Content-Range': `${start}-${end}` }, { length: end - start + 1, open: () => open(start, end) })
        await readText(res)
        if (res.statusCode === 401 && failures === 0) {
          await this.authenticate(header(res.headers, 'www-authenticate') ?? '')
          failures++
          continue
        }
        if (res.statusCode !== 202) {
          if ((res.statusCode ?? 0) >= 500 || res.statusCode === 416) throw new RetryableError(`HTTP ${res.statusCode}`, res.statusCode)
          throw this.errorFor(res.statusCode ?? 0, '', 'PATCH', location)
        }
        location = new URL(header(res.headers, 'location') ?? location, this.origin).toString()
        offset = end + 1
        onBytes?.(end - start + 1)
      } catch (err) {
        if (!isConnectionError(err) || ++failures >= this.attempts * 4) throw err
        await sleep(backoffDelay(Math.min(failures, 4), this.baseDelayMs))
        const status = await this.send('GET', location, { accept: [204, 404] })
        status.resume()
        if (status.statusCode === 404) {
          // The registry dropped the upload: Distribution does when a PATCH broke, since the state token of
          // its Location no longer matches the bytes it kept. The blob starts again in a new upload.
          log('upload of %s broke at %d bytes and the registry dropped it; starting the blob again', digest, offset)
          onBytes?.(-offset)
          offset = 0
          location = await this.startUpload()
          continue
        }
        const range = /^(?:bytes=)?0-(\d+)$/.exec(header(status.headers, 'range') ?? '')
        const kept = range ? Number(range[1]) + 1 : 0
        log('upload of %s broke at %d bytes; the registry kept %d', digest, offset, kept)
        onBytes?.(kept - offset)
        offset = kept
        location = new URL(header(status.headers, 'location') ?? location, this.origin).toString()
      }
    }
    const res = await this.send('PUT', OciClient.withDigest(location, digest), { accept: [201], headers: { 'Content-Length': '0' } })
    res.resume()
  }

  /** The blob's bytes from `offset` (a Range request when > 0): the response, 200 or 206. */
  async getBlob(digest: string, offset = 0): Promise<HttpResponse> {
    return this.send('GET', this.url(`blobs/${digest}`), { accept: [200, 206], fast: true, headers: offset > 0 ? { Range: `bytes=${offset}-` } : {} })
  }

  // -------------------------------------------------------------- manifests

  async putManifest(reference: string, bytes: Buffer, mediaType: string): Promise<string> {
    const res = await this.send('PUT', this.url(`manifests/${reference}`), { accept: [201], body: bytes, headers: { 'Content-Type': mediaType } })
    res.resume()
    return header(res.headers, 'docker-content-digest') ?? `sha256:${createHash('sha256').update(bytes).digest('hex')}`
  }

  /** The manifest's exact bytes and their digest (computed here: the registry's header is not trusted). */
  async getManifest(reference: string, accept: string[]): Promise<{ bytes: Buffer; digest: string; mediaType: string }> {
    const res = await this.send('GET', this.url(`manifests/${reference}`), { accept: [200], headers: { Accept: accept.join(', ') } })
    const chunks: Buffer[] = []
    let n = 0
    for await (const c of res) {
      n += (c as Buffer).length
      if (n > 4 * 1024 * 1024) {
        res.destroy()
        throw new IntegrityError(`The manifest of ${formatReference(this.ref)} is over 4 MiB`, { code: 'OCI_ARTIFACT_INVALID', hint: 'This is not a modelforge artifact; check the reference.' })
      }
      chunks.push(c as Buffer)
    }
    const bytes = Buffer.concat(chunks)
    return { bytes, digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}`, mediaType: header(res.headers, 'content-type') ?? '' }
  }
}
