/**
 * A small token server for the Bearer flow (Docker's token authentication, as Harbor, GHCR and ECR run it):
 * Distribution 2.8 is configured with `auth.token` naming this realm and trusting its certificate; a client
 * that gets the 401 challenge asks here with Basic credentials and the scope, and gets a JWT (RS256, the
 * certificate in x5c) granting what it asked on that repository, for the test user only.
 */
import { createSign, randomBytes } from 'node:crypto'
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { join } from 'node:path'
import { freePort } from './net.js'
import { TEST_PASSWORD, TEST_USER } from './oci-registry.js'

export interface TokenServer {
  realm: string
  service: string
  /** The registry config block that trusts this server. */
  config: string
  /** Each token request: the scope asked, and whether it carried the right credentials. */
  requests: { scope: string | null; authorized: boolean }[]
  close(): Promise<void>
}

const b64url = (b: Buffer | string): string => Buffer.from(b).toString('base64url')

export async function startTokenServer(dir: string): Promise<TokenServer> {
  const key = join(dir, 'token-key.pem')
  const cert = join(dir, 'token-cert.pem')
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=modelforge-test-token'], { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`openssl failed: ${r.stderr}`)
  const pem = readFileSync(cert, 'utf8')
  const der = pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '')
  const port = await freePort()
  const service = 'modelforge-test'
  const issuer = 'modelforge-test-issuer'
  const requests: TokenServer['requests'] = []
  const expected = `Basic ${Buffer.from(`${TEST_USER}:${TEST_PASSWORD}`).toString('base64')}`
  const server = createServer((req, res) => {
    const u = new URL(req.url ?? '/', `http://127.0.0.1:${port}`)
    const scope = u.searchParams.get('scope')
    const authorized = req.headers.authorization === expected
    requests.push({ scope, authorized })
    if (!authorized) {
      res.writeHead(401, { 'Content-Type': 'application/json' })
      res.end('{"details":"incorrect username or password"}')
      return
    }
    const access = (scope ?? '').split(' ').filter(Boolean).map((s) => {
      const [type, name, actions] = s.split(':')
      return { type, name, actions: (actions ?? '').split(',') }
    })
    const now = Math.floor(Date.now() / 1000)
    const header = b64url(JSON.stringify({ typ: 'JWT', alg: 'RS256', x5c: [der] }))
    const claims = b64url(JSON.stringify({ iss: issuer, sub: TEST_USER, aud: service, exp: now + 300, nbf: now - 10, iat: now, jti: randomBytes(8).toString('hex'), access }))
    const signature = createSign('RSA-SHA256').update(`${header}.${claims}`).sign(readFileSync(key))
    res.writeHead(200, { 'Content-Type': 'application/json' })
    res.end(JSON.stringify({ token: `${header}.${claims}.${b64url(signature)}`, expires_in: 300 }))
  })
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
  const realm = `http://127.0.0.1:${port}/token`
  return {
    realm,
    service,
    requests,
    config: `auth:\n  token:\n    realm: ${realm}\n    service: ${service}\n    issuer: ${issuer}\n    rootcertbundle: ${cert}\n`,
    close: () => new Promise((resolve) => {
      server.closeAllConnections()
      server.close(() => resolve())
    }),
  }
}
