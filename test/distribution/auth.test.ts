/**
 * Authentication and policy of store push / pull (issue 15, acceptance 4's redirect and 5): htpasswd Basic
 * auth on Distribution 2.8, the Bearer flow through a token server, credentials from the environment and
 * from ~/.docker/config.json, wrong ones (exit 3, never echoed), an unknown repository (exit 6), a registry
 * outside distribution.allowedRegistries (exit 7, zero requests), and a blob redirect that carries none.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { pullVersion, pushVersion } from '../../src/distribution/index.js'
import { ModelStore } from '../../src/publish/store.js'
import { createToyStore } from '../../src/toy/toy-store.js'
import { cli, makeTemp, removeTemps } from '../helpers/store-helpers.js'
import { freePort } from '../helpers/net.js'
import { ociRegistryAvailable, startOciRegistry, TEST_PASSWORD, TEST_USER, type OciRegistry } from '../helpers/oci-registry.js'
import { startOciProxy } from '../helpers/oci-proxy.js'
import { startTokenServer, type TokenServer } from '../helpers/oci-token-server.js'

const skip = !ociRegistryAvailable()
let basic: OciRegistry
let bearer: OciRegistry
let tokens: TokenServer
let source: ModelStore
const good = { HOME: '/nonexistent', MODELFORGE_OCI_USERNAME: TEST_USER, MODELFORGE_OCI_PASSWORD: TEST_PASSWORD }
const wrong = { HOME: '/nonexistent', MODELFORGE_OCI_USERNAME: TEST_USER, MODELFORGE_OCI_PASSWORD: 'not-the-password-x9' }

beforeAll(async () => {
  if (skip) return
  basic = await startOciRegistry({ basicAuth: true })
  tokens = await startTokenServer(mkdtempSync(join(tmpdir(), 'mf-token-')))
  bearer = await startOciRegistry({ extraConfig: tokens.config })
  const root = join(makeTemp('mf-dist-auth-'), 'toy')
  await createToyStore(root)
  source = new ModelStore(root)
}, 120_000)

afterAll(async () => {
  await basic?.stop()
  await bearer?.stop()
  await tokens?.close()
  removeTemps()
})

async function failure(p: Promise<unknown>): Promise<Error & { code: string; exitCode: number; hint?: string }> {
  const err = await p.then(() => undefined, (e: unknown) => e)
  expect(err, 'expected a failure').toBeDefined()
  return err as Error & { code: string; exitCode: number; hint?: string }
}

describe.skipIf(skip)('OCI registry authentication', () => {
  it('Basic: no credentials and wrong ones are exit 3 with a hint; the right ones push and pull', async () => {
    const v = source.channels('scout').current!
    const none = await failure(pushVersion(source, 'scout', v, `${basic.host}/models/scout`, { env: { HOME: '/nonexistent' } }))
    expect(none).toMatchObject({ code: 'OCI_AUTH_FAILED', exitCode: 3 })
    expect(none.hint).toMatch(/docker login|MODELFORGE_OCI_USERNAME/)
    const bad = await failure(pushVersion(source, 'scout', v, `${basic.host}/models/scout`, { env: wrong }))
    expect(bad).toMatchObject({ code: 'OCI_AUTH_FAILED', exitCode: 3 })
    expect(JSON.stringify({ ...bad, message: bad.message, hint: bad.hint })).not.toContain('not-the-password-x9')

    const r = await pushVersion(source, 'scout', v, `${basic.host}/models/scout`, { env: good })
    expect(r.uploaded).toBe(r.blobs)
    const target = new ModelStore(join(makeTemp('mf-node-'), 'store'))
    expect((await pullVersion(target, `${basic.host}/models/scout:${v}`, { env: good })).digest).toBe(r.digest)
  }, 60_000)

  it('credentials from ~/.docker/config.json as docker login writes them', async () => {
    const home = makeTemp('mf-home-')
    mkdirSync(join(home, '.docker'))
    writeFileSync(join(home, '.docker', 'config.json'), JSON.stringify({ auths: { [`http://${basic.host}`]: { auth: Buffer.from(`${TEST_USER}:${TEST_PASSWORD}`).toString('base64') } } }))
    const v = source.channels('analyst').current!
    expect((await pushVersion(source, 'analyst', v, `${basic.host}/models/analyst`, { env: { HOME: home } })).digest).toMatch(/^sha256:/)
    writeFileSync(join(home, '.docker', 'config.json'), '{"auths": ')
    expect(await failure(pushVersion(source, 'analyst', v, `${basic.host}/models/analyst`, { env: { HOME: home } }))).toMatchObject({ code: 'OCI_CREDENTIALS_INVALID', exitCode: 4 })
  }, 60_000)

  it('Bearer: the challenge is answered with a token scoped to the repository; wrong credentials are refused at the token service', async () => {
    const v = source.channels('memory').current!
    const r = await pushVersion(source, 'memory', v, `${bearer.host}/team/memory`, { env: good })
    expect(r.uploaded).toBe(r.blobs)
    expect(tokens.requests.some((t) => t.authorized && t.scope === 'repository:team/memory:pull,push')).toBe(true)
    const target = new ModelStore(join(makeTemp('mf-node-'), 'store'))
    expect((await pullVersion(target, `${bearer.host}/team/memory:${v}`, { env: good })).digest).toBe(r.digest)
    expect(tokens.requests.some((t) => t.scope === 'repository:team/memory:pull')).toBe(true)
    const bad = await failure(pullVersion(new ModelStore(join(makeTemp('mf-node-'), 'store')), `${bearer.host}/team/memory:${v}`, { env: wrong }))
    expect(bad).toMatchObject({ code: 'OCI_AUTH_FAILED', exitCode: 3 })
    expect(bad.message).toContain('token service')
  }, 60_000)

  it('an unknown repository or tag is exit 6', async () => {
    const target = new ModelStore(join(makeTemp('mf-node-'), 'store'))
    expect(await failure(pullVersion(target, `${basic.host}/models/nothing-here:v1`, { env: good }))).toMatchObject({ code: 'OCI_NOT_FOUND', exitCode: 6 })
    expect(await failure(pullVersion(target, `${bearer.host}/team/memory:no-such-tag`, { env: good }))).toMatchObject({ code: 'OCI_NOT_FOUND', exitCode: 6 })
  }, 60_000)

  it('a blob redirected to another origin is fetched without the Authorization header', async () => {
    const v = source.channels('scout').current!
    await pushVersion(source, 'scout', v, `${basic.host}/models/scout`, { env: good })
    const proxy = await startOciProxy(basic.host, { redirectBlobs: true, upstreamAuth: `Basic ${Buffer.from(`${TEST_USER}:${TEST_PASSWORD}`).toString('base64')}` })
    try {
      const target = new ModelStore(join(makeTemp('mf-node-'), 'store'))
      const r = await pullVersion(target, `${proxy.host}/models/scout:${v}`, { env: good })
      expect(r.files).toBeGreaterThan(0)
      expect(proxy.redirected.length).toBe(r.files + 1)
      for (const h of proxy.redirected) expect(h.authorization).toBeUndefined()
    } finally {
      await proxy.close()
    }
  }, 60_000)
})

describe.skipIf(skip)('the CLI: push and pull', () => {
  it('wrong credentials: exit 3, the password in no output; a registry outside allowedRegistries: exit 7 before any request', async () => {
    const v = source.channels('scout').current!
    const r = cli(['store', 'push', 'scout', v, `${basic.host}/models/scout`, '--store', source.root, '--json'], { env: wrong })
    expect(r.code).toBe(3)
    expect(JSON.parse(r.stdout)).toMatchObject({ error: { code: 'OCI_AUTH_FAILED' } })
    expect(r.stdout + r.stderr).not.toContain('not-the-password-x9')

    // A listener that counts connections: the policy refuses before any is made.
    let connections = 0
    const port = await freePort()
    const counter: Server = createServer((s) => {
      connections++
      s.destroy()
    })
    await new Promise<void>((resolve) => counter.listen(port, '127.0.0.1', resolve))
    try {
      const config = join(makeTemp('mf-config-'), 'config.json')
      writeFileSync(config, JSON.stringify({ distribution: { allowedRegistries: ['registry.internal:5000', '*.example.com'] } }))
      for (const args of [['store', 'push', 'scout', v, `127.0.0.1:${port}/models/scout`], ['store', 'pull', `127.0.0.1:${port}/models/scout:${v}`]]) {
        const p = cli([...args, '--store', source.root, '--json'], { env: { ...good, MODELFORGE_CONFIG: config } })
        expect(p.code, p.stdout + p.stderr).toBe(7)
        expect(JSON.parse(p.stdout)).toMatchObject({ error: { code: 'OCI_REGISTRY_NOT_ALLOWED' } })
      }
      expect(connections).toBe(0)
    } finally {
      counter.close()
    }

    const bad = cli(['store', 'pull', 'no-host-here/models/scout:v1', '--store', source.root, '--json'], { env: good })
    expect(bad.code).toBe(2)
    expect(JSON.parse(bad.stdout)).toMatchObject({ error: { code: 'OCI_REFERENCE_INVALID' } })
  }, 90_000)

  it('push, then pull --publish on a node with a model registry: availability moves to available and search finds it', async () => {
    const v = source.channels('synthesizer').current!
    const push = cli(['store', 'push', 'synthesizer', v, `${basic.host}/models/synthesizer`, '--store', source.root, '--json'], { env: good })
    expect(push.code, push.stdout + push.stderr).toBe(0)
    const pushed = JSON.parse(push.stdout).result as { digest: string }
    const node = join(makeTemp('mf-node-'), 'store')
    expect(cli(['registry', 'sync', '--store', node], { env: good }).code).toBe(0) // the node's embedded registry
    const pull = cli(['store', 'pull', `${basic.host}/models/synthesizer:${v}`, '--publish', '--node', 'gpu-07', '--store', node, '--json'], { env: good })
    expect(pull.code, pull.stdout + pull.stderr).toBe(0)
    expect(JSON.parse(pull.stdout).result).toMatchObject({ agent: 'synthesizer', version: v, digest: pushed.digest, node: 'gpu-07', channel: 'current' })
    const found = cli(['registry', 'search', '--available-on', 'gpu-07', '--store', node, '--json'], { env: good })
    expect(JSON.parse(found.stdout).result.versions ?? JSON.parse(found.stdout).result).toEqual(expect.arrayContaining([expect.objectContaining({ agent: 'synthesizer', version: v })]))
    const shown = cli(['registry', 'show', 'synthesizer', v, '--store', node, '--json'], { env: good })
    expect(JSON.stringify(JSON.parse(shown.stdout).result)).toContain('gpu-07')
  }, 120_000)

  it('a node cache under store.maxBytes evicts the version current left, and the model registry says evicted', async () => {
    const [older, newer] = await source.versions('scout')
    for (const v of [older!, newer!]) expect(cli(['store', 'push', 'scout', v, `${basic.host}/cache/scout`, '--store', source.root], { env: good }).code).toBe(0)
    const node = join(makeTemp('mf-node-'), 'store')
    expect(cli(['registry', 'sync', '--store', node], { env: good }).code).toBe(0)
    const config = join(makeTemp('mf-config-'), 'config.json')
    writeFileSync(config, JSON.stringify({ store: { maxBytes: 1 } }))
    const first = cli(['store', 'pull', `${basic.host}/cache/scout:${older}`, '--publish', '--node', 'gpu-09', '--store', node, '--json'], { env: { ...good, MODELFORGE_CONFIG: config } })
    expect(first.code, first.stdout + first.stderr).toBe(0)
    expect(JSON.parse(first.stdout).result.evicted).toEqual([]) // the one current points to stays, over the bound
    const second = cli(['store', 'pull', `${basic.host}/cache/scout:${newer}`, '--publish', '--node', 'gpu-09', '--store', node, '--json'], { env: { ...good, MODELFORGE_CONFIG: config } })
    expect(second.code, second.stdout + second.stderr).toBe(0)
    expect(JSON.parse(second.stdout).result.evicted).toEqual([expect.objectContaining({ agent: 'scout', version: older })])
    expect(await new ModelStore(node).versions('scout')).toEqual([newer])
    const shown = JSON.parse(cli(['registry', 'show', 'scout', older!, '--store', node, '--json'], { env: good }).stdout).result
    expect(shown.state).toBe('gone')
    expect(JSON.stringify(shown)).toMatch(/gpu-09.*evicted|evicted.*gpu-09/)
    const found = JSON.parse(cli(['registry', 'search', '--available-on', 'gpu-09', '--store', node, '--json'], { env: good }).stdout).result
    expect(JSON.stringify(found)).toContain(newer)
    expect(JSON.stringify(found)).not.toContain(`"version":"${older}"`)
  }, 120_000)
})
