/**
 * A loopback proxy in front of a real registry, for what a registry does not do on its own:
 *  - `redirectBlobs`: blob GETs are answered 307 to a second server on another origin (as registries hand
 *    blobs to object storage), which records the headers it got and serves the bytes from the registry;
 *  - `cutAfter`: the first `cuts` blob bodies are cut after that many bytes (a broken connection), for the
 *    resume tests; uploads (PATCH) can be cut the same way with `cutUploadsAfter`.
 * Everything else is passed through as it is, headers included.
 */
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { freePort } from './net.js'

export interface OciProxy {
  host: string
  /** Headers the blob server behind a redirect received, one entry per request. */
  redirected: Record<string, string | string[] | undefined>[]
  /** Blob bodies cut so far. */
  cut: number
  /** Upload PATCHes cut so far. */
  uploadsCut: number
  blobGets: { range?: string }[]
  close(): Promise<void>
}

export interface ProxyOptions {
  redirectBlobs?: boolean
  cutAfter?: number
  cuts?: number
  cutUploadsAfter?: number
  uploadCuts?: number
  /** Blob bodies trickle: each chunk of the registry's answer waits this long (for kills mid-pull). */
  slowBlobsMs?: number
  /** Authorization the blob server uses towards the registry (the storage's own access). */
  upstreamAuth?: string
}

function forward(upstream: string, req: IncomingMessage, res: ServerResponse, path: string, headers: Record<string, string | string[] | undefined>, cutAfter?: number, onCut?: () => void, slowMs?: number): void {
  const [host, port] = upstream.split(':')
  // The Host header stays the proxy's: the registry builds its upload Locations from it.
  const out = request({ host, port: Number(port), method: req.method, path, headers: { ...headers } }, (up) => {
    res.writeHead(up.statusCode ?? 502, up.headers)
    if (slowMs !== undefined) {
      up.on('data', (c: Buffer) => {
        up.pause()
        res.write(c)
        setTimeout(() => up.resume(), slowMs)
      })
      up.on('end', () => res.end())
      return
    }
    if (cutAfter === undefined) {
      up.pipe(res)
      return
    }
    let n = 0
    let done = false
    up.on('data', (c: Buffer) => {
      if (done) return
      if (n + c.length > cutAfter) {
        up.destroy()
        onCut?.()
        // Cut once every byte before the cut has left for the kernel: destroying with writes still queued
        // in Node would drop them, and the client would see the break earlier than `cutAfter`.
        res.write(c.subarray(0, Math.max(0, cutAfter - n)), () => res.socket?.destroy())
        done = true
        return
      }
      n += c.length
      res.write(c)
    })
    up.on('end', () => res.end())
  })
  out.on('error', () => res.socket?.destroy())
  req.pipe(out)
}

function listen(server: Server, port: number): Promise<void> {
  return new Promise((resolve) => server.listen(port, '127.0.0.1', resolve))
}

export async function startOciProxy(upstream: string, options: ProxyOptions = {}): Promise<OciProxy> {
  const proxyPort = await freePort()
  const blobPort = await freePort()
  const state: OciProxy = { host: `127.0.0.1:${proxyPort}`, redirected: [], cut: 0, uploadsCut: 0, blobGets: [], close: async () => undefined }
  let uploadCuts = 0
  // The "object storage": another origin (localhost, not 127.0.0.1), reached only through redirects.
  const blobs = createServer((req, res) => {
    state.redirected.push({ ...req.headers })
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').searchParams.get('path') ?? '/')
    forward(upstream, req, res, path, { ...(options.upstreamAuth ? { authorization: options.upstreamAuth } : {}), ...(req.headers.range ? { range: req.headers.range } : {}) })
  })
  const proxy = createServer((req, res) => {
    const url = req.url ?? '/'
    const isBlobGet = req.method === 'GET' && /\/blobs\/sha256:[0-9a-f]{64}$/.test(url)
    if (isBlobGet) state.blobGets.push({ range: req.headers.range })
    if (isBlobGet && options.redirectBlobs) {
      res.writeHead(307, { Location: `http://localhost:${blobPort}/storage?path=${encodeURIComponent(url)}` })
      res.end()
      return
    }
    const cut = isBlobGet && options.cutAfter !== undefined && state.cut < (options.cuts ?? 1)
    if (cut) {
      forward(upstream, req, res, url, req.headers, options.cutAfter, () => state.cut++)
      return
    }
    if (req.method === 'PATCH' && options.cutUploadsAfter !== undefined && uploadCuts < (options.uploadCuts ?? 1)) {
      // Pass part of the chunk on, then break both connections: the registry keeps what it received.
      uploadCuts++
      state.uploadsCut++
      const [host, port] = upstream.split(':')
      const out = request({ host, port: Number(port), method: 'PATCH', path: url, headers: { ...req.headers, 'content-length': String(options.cutUploadsAfter), 'content-range': `${(req.headers['content-range'] as string).split('-')[0]}-${Number((req.headers['content-range'] as string).split('-')[0]) + options.cutUploadsAfter - 1}` } }, (up) => {
        up.resume()
        up.on('end', () => res.socket?.destroy())
      })
      let n = 0
      req.on('data', (c: Buffer) => {
        if (n >= options.cutUploadsAfter!) return
        const part = c.subarray(0, options.cutUploadsAfter! - n)
        n += part.length
        out.write(part)
        if (n >= options.cutUploadsAfter!) out.end()
      })
      out.on('error', () => res.socket?.destroy())
      return
    }
    forward(upstream, req, res, url, req.headers, undefined, undefined, isBlobGet ? options.slowBlobsMs : undefined)
  })
  await listen(proxy, proxyPort)
  await listen(blobs, blobPort)
  state.close = async () => {
    for (const s of [proxy, blobs]) {
      s.closeAllConnections()
      await new Promise((r) => s.close(r))
    }
  }
  return state
}
