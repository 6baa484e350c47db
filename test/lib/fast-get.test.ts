/**
 * lib/fast-get.ts: the GET that reads large bodies straight from the socket. Against node:http servers on
 * loopback: each way a body can be framed, a body cut short, a slow reader (backpressure, slabs read into
 * again once released), headers that could split the request, and TLS with the system's trust.
 */
import { execFile, spawnSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer, Server as HttpsServer } from 'node:https'
import { type AddressInfo } from 'node:net'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { fastGet } from '../../src/lib/fast-get.js'
import { isConnectionError } from '../../src/lib/http.js'
import { makeTemp, removeTemps, repoRoot } from '../helpers/store-helpers.js'

const servers: Server[] = []
afterAll(async () => {
  for (const s of servers) await new Promise((r) => s.close(r))
  removeTemps()
})

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void, server: Server = createServer()): Promise<string> {
  server.on('request', handler)
  servers.push(server)
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return `${server instanceof HttpsServer ? 'https' : 'http'}://127.0.0.1:${(server.address() as AddressInfo).port}`
}

async function readAll(res: AsyncIterable<Buffer>, onChunk?: (c: Buffer) => Promise<void> | void): Promise<Buffer> {
  const parts: Buffer[] = []
  for await (const c of res) {
    parts.push(Buffer.from(c)) // a copy: the reader below may release the original
    await onChunk?.(c)
  }
  return Buffer.concat(parts)
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

describe('fastGet', () => {
  const body = randomBytes(5 * 1024 * 1024 + 123)

  it('reads a Content-Length body whole, with the status and the headers (repeated ones joined)', async () => {
    const url = await serve((req, res) => {
      res.setHeader('X-Seen-Range', req.headers.range ?? 'none')
      res.setHeader('Link', ['<a>', '<b>'])
      res.setHeader('Content-Length', body.length)
      res.end(body)
    })
    const res = await fastGet(`${url}/blob?x=1`, { headers: { Range: 'bytes=0-' } })
    expect(res.statusCode).toBe(200)
    expect(res.headers['x-seen-range']).toBe('bytes=0-')
    expect(res.headers.link).toBe('<a>, <b>')
    expect(sha(await readAll(res))).toBe(sha(body))
  })

  it('decodes a chunked body (extensions and trailers included) and a body that ends with the connection', async () => {
    const chunked = await serve((_req, res) => {
      res.writeHead(200, { 'Transfer-Encoding': 'chunked', Trailer: 'X-Sum' })
      for (let at = 0; at < body.length; at += 300_000) res.write(body.subarray(at, at + 300_000))
      res.addTrailers({ 'X-Sum': 'done' })
      res.end()
    })
    expect(sha(await readAll(await fastGet(chunked)))).toBe(sha(body))
    // A hand-written chunked answer with a chunk extension, split at awkward places.
    const odd = createServer()
    odd.on('connection', (socket) => {
      socket.once('data', () => {
        const raw = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;name=x\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\n'
        for (let i = 0; i < raw.length; i += 7) socket.write(raw.slice(i, i + 7))
        socket.end()
      })
    })
    const oddUrl = await serve(() => undefined, odd)
    expect((await readAll(await fastGet(oddUrl))).toString()).toBe('hello world')
    const closing = createServer()
    closing.on('connection', (socket) => {
      socket.once('data', () => socket.end(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end`))
    })
    expect((await readAll(await fastGet(await serve(() => undefined, closing)))).toString()).toBe('until the end')
  })

  it('a body cut short of its Content-Length is a connection error the caller retries', async () => {
    const url = await serve((_req, res) => {
      res.setHeader('Content-Length', body.length)
      res.write(body.subarray(0, 1024 * 1024), () => res.socket?.destroy())
    })
    const res = await fastGet(url)
    const err = await readAll(res).then(() => null, (e: unknown) => e)
    expect(err).toMatchObject({ code: 'ECONNRESET' })
    expect(isConnectionError(err)).toBe(true)
  })

  it('a refused connection rejects with its errno', async () => {
    const url = await serve((_req, res) => res.end())
    await new Promise((r) => servers.pop()!.close(r))
    await expect(fastGet(url)).rejects.toMatchObject({ code: 'ECONNREFUSED' })
  })

  it('a slow reader gets every byte in order, whether it releases its chunks (slabs read into again) or keeps them', async () => {
    const big = randomBytes(40 * 1024 * 1024)
    const url = await serve((_req, res) => {
      res.setHeader('Content-Length', big.length)
      res.end(big)
    })
    for (const release of [true, false]) {
      const res = await fastGet(url)
      let n = 0
      const got = await readAll(res, async (c) => {
        // Slower than the socket, so that reading pauses at the high-water mark and resumes.
        if (n++ % 8 === 0) await new Promise((r) => setTimeout(r, 2))
        if (release) res.release?.([c])
      })
      expect(sha(got), `release ${release}`).toBe(sha(big))
    }
  })

  it('a 204 has no body; a reader that stops early closes the connection', async () => {
    let closed = false
    const url = await serve((req, res) => {
      if (req.url === '/empty') {
        res.writeHead(204)
        res.end()
        return
      }
      req.socket.on('close', () => (closed = true))
      res.setHeader('Content-Length', body.length)
      res.end(body)
    })
    expect((await readAll(await fastGet(`${url}/empty`))).length).toBe(0)
    const res = await fastGet(`${url}/big`)
    for await (const c of res) {
      expect(c.length).toBeGreaterThan(0)
      break
    }
    for (let i = 0; i < 100 && !closed; i++) await new Promise((r) => setTimeout(r, 10))
    expect(closed).toBe(true)
  })

  it('refuses a header that would split the request, before connecting', async () => {
    let connections = 0
    const server = createServer()
    server.on('connection', () => connections++)
    const url = await serve((_req, res) => res.end(), server)
    await expect(fastGet(url, { headers: { Authorization: 'Bearer x\r\nHost: elsewhere' } })).rejects.toThrow(/line break/)
    expect(connections).toBe(0)
  })

  it('refuses a response that is not HTTP/1.x, and a head over 64 KiB', async () => {
    const garbage = createServer()
    garbage.on('connection', (socket) => socket.once('data', () => socket.end('SSH-2.0-OpenSSH\r\n\r\n')))
    await expect(fastGet(await serve(() => undefined, garbage))).rejects.toMatchObject({ code: 'EPROTO' })
    const url = await serve((_req, res) => {
      res.setHeader('X-Big', 'x'.repeat(70_000))
      res.end('x')
    }, createServer({ maxHeaderSize: 200_000 }))
    await expect(fastGet(url)).rejects.toMatchObject({ code: 'EPROTO' })
  })

  it('speaks TLS: a certificate the system does not trust is refused; one it trusts (NODE_EXTRA_CA_CERTS) serves the body', async () => {
    const dir = makeTemp('mf-tls-')
    const key = join(dir, 'key.pem')
    const cert = join(dir, 'cert.pem')
    const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { encoding: 'utf8' })
    expect(made.status, made.stderr).toBe(0)
    const url = await serve((_req, res) => {
      res.setHeader('Content-Length', body.length)
      res.end(body)
    }, createHttpsServer({ key: readFileSync(key), cert: readFileSync(cert) }))
    expect(url.startsWith('https://')).toBe(true)
    await expect(fastGet(url)).rejects.toMatchObject({ code: 'DEPTH_ZERO_SELF_SIGNED_CERT' })
    // The trust store is read at process start: a child that trusts the certificate.
    const script = `const { fastGet } = await import(${JSON.stringify(join(repoRoot, 'dist', 'lib', 'fast-get.js'))});
      const { createHash } = await import('node:crypto');
      const res = await fastGet(${JSON.stringify(url)}); const h = createHash('sha256'); for await (const c of res) h.update(c);
      console.log(res.statusCode, h.digest('hex'))`
    // Asynchronous: the server answering it runs in this process.
    const child = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, NODE_EXTRA_CA_CERTS: cert } }, (err, stdout, stderr) => (err ? reject(new Error(stderr || err.message)) : resolve(stdout.trim())))
    })
    expect(child).toBe(`200 ${sha(body)}`)
  })
})
