/**
 * Credentials for an OCI registry: MODELFORGE_OCI_USERNAME / MODELFORGE_OCI_PASSWORD when both are set,
 * else the registry's entry in `auths` of ~/.docker/config.json (or $DOCKER_CONFIG/config.json) as
 * `docker login` writes it. Credential helpers (credsStore, credHelpers) are not run: they are programs
 * of the user's desktop, and a CI runner or node sets the variables. Never printed or logged.
 */
import { readFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { debugLog } from '../lib/debug.js'
import { errnoCode, IntegrityError } from '../lib/errors.js'

const log = debugLog('oci')

export interface OciCredentials {
  username: string
  password: string
  /** Where they came from, for messages (never the secret itself). */
  source: string
}

type Env = Record<string, string | undefined>

function dockerConfigPath(env: Env): string {
  return join(env.DOCKER_CONFIG ?? join(env.HOME ?? homedir(), '.docker'), 'config.json')
}

/** The keys docker writes a registry under: host, https://host, http://host, and Docker Hub's /v1/ form. */
function matches(key: string, registry: string): boolean {
  const bare = key.replace(/^https?:\/\//, '').replace(/\/.*$/, '')
  return bare === registry
}

export function ociCredentials(registry: string, env: Env = process.env): OciCredentials | undefined {
  if (env.MODELFORGE_OCI_USERNAME && env.MODELFORGE_OCI_PASSWORD !== undefined) {
    return { username: env.MODELFORGE_OCI_USERNAME, password: env.MODELFORGE_OCI_PASSWORD, source: 'MODELFORGE_OCI_USERNAME/MODELFORGE_OCI_PASSWORD' }
  }
  const file = dockerConfigPath(env)
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined
    log('cannot read %s: %s', file, (err as Error).message)
    return undefined
  }
  let config: { auths?: Record<string, { auth?: string; username?: string; password?: string }> }
  try {
    config = JSON.parse(text) as typeof config
  } catch (err) {
    throw new IntegrityError(`${file} is not valid JSON (${(err as Error).message})`, {
      code: 'OCI_CREDENTIALS_INVALID',
      hint: 'Fix or remove it (docker login rewrites it), or set MODELFORGE_OCI_USERNAME and MODELFORGE_OCI_PASSWORD.',
    })
  }
  for (const [key, entry] of Object.entries(config.auths ?? {})) {
    if (!matches(key, registry) || entry === null || typeof entry !== 'object') continue
    if (typeof entry.auth === 'string' && entry.auth !== '') {
      const decoded = Buffer.from(entry.auth, 'base64').toString('utf8')
      const colon = decoded.indexOf(':')
      if (colon <= 0) {
        throw new IntegrityError(`The auths entry for ${registry} in ${file} is not base64 of user:password`, {
          code: 'OCI_CREDENTIALS_INVALID',
          hint: `Run docker login ${registry} again, or set MODELFORGE_OCI_USERNAME and MODELFORGE_OCI_PASSWORD.`,
        })
      }
      return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1), source: file }
    }
    if (typeof entry.username === 'string' && typeof entry.password === 'string') return { username: entry.username, password: entry.password, source: file }
  }
  return undefined
}
