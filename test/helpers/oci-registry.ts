/**
 * A real OCI registry for the distribution tests: Debian's docker-registry (Distribution 2.8) serving a
 * temporary directory on a free loopback port, optionally behind htpasswd Basic auth. `available()` is false
 * where the package is not installed (.ci/run installs it). What the registry stored is read through its own
 * API with plain fetch (`api`), never through modelforge's client, and its blob files are at `blobPath`.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from './net.js'

const BIN = '/usr/bin/docker-registry'

export function ociRegistryAvailable(): boolean {
  return existsSync(BIN)
}

export interface OciRegistry {
  /** 127.0.0.1:<port> */
  host: string
  dir: string
  /** fetch against the registry's own API, with the test's credentials when it has auth. */
  api(path: string, init?: RequestInit): Promise<Response>
  /** Where the filesystem driver keeps a blob's bytes. */
  blobPath(digest: string): string
  stop(): Promise<void>
}

export const TEST_USER = 'ci-bot'
export const TEST_PASSWORD = 'p4ss;w"rd\'x'

export async function startOciRegistry(options: { basicAuth?: boolean; extraConfig?: string } = {}): Promise<OciRegistry> {
  const dir = mkdtempSync(join(tmpdir(), 'mf-oci-'))
  const port = await freePort()
  let auth = ''
  if (options.basicAuth) {
    const h = spawnSync('htpasswd', ['-Bbn', TEST_USER, TEST_PASSWORD], { encoding: 'utf8' })
    if (h.status !== 0) throw new Error(`htpasswd failed: ${h.stderr}`)
    writeFileSync(join(dir, 'htpasswd'), h.stdout)
    auth = `auth:\n  htpasswd:\n    realm: modelforge-test\n    path: ${join(dir, 'htpasswd')}\n`
  }
  writeFileSync(join(dir, 'config.yml'), `version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: ${join(dir, 'data')}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:${port}
${auth}${options.extraConfig ?? ''}`)
  const child: ChildProcess = spawn(BIN, ['serve', join(dir, 'config.yml')], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()))
  const host = `127.0.0.1:${port}`
  const authHeader: Record<string, string> = options.basicAuth ? { Authorization: `Basic ${Buffer.from(`${TEST_USER}:${TEST_PASSWORD}`).toString('base64')}` } : {}
  const api = (path: string, init: RequestInit = {}): Promise<Response> => fetch(`http://${host}${path}`, { ...init, headers: { ...authHeader, ...(init.headers as Record<string, string>) } })
  for (let i = 0; ; i++) {
    try {
      const r = await api('/v2/')
      if (r.status === 200 || r.status === 401) break
    } catch {
      // not listening yet
    }
    if (i > 100 || child.exitCode !== null) throw new Error(`docker-registry did not start: ${stderr}`)
    await new Promise((r) => setTimeout(r, 100))
  }
  return {
    host,
    dir,
    api,
    blobPath: (digest) => {
      const hex = digest.replace(/^sha256:/, '')
      return join(dir, 'data', 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex, 'data')
    },
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r))
        child.kill('SIGTERM')
        await exited
      }
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
