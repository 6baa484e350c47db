/**
 * An OCI reference as Docker and ORAS write it: `host[:port]/repository[:tag|@sha256:digest]`, with the
 * grammar of the distribution spec (repository components, tags of at most 128 characters). The host is
 * required: modelforge never guesses Docker Hub. Plain HTTP only towards the loopback or with --plain-http.
 */
import { UsageError } from '../lib/errors.js'

export interface OciReference {
  /** host[:port], as written (the key of ~/.docker/config.json's auths). */
  registry: string
  repository: string
  tag?: string
  /** sha256:<64 hex> */
  digest?: string
  /** http:// rather than https:// */
  plainHttp: boolean
}

const COMPONENT = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*'
const REPOSITORY = new RegExp(`^${COMPONENT}(?:/${COMPONENT})*$`)
const TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/
const DIGEST = /^sha256:[0-9a-f]{64}$/
const HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$/

export function isLoopback(registry: string): boolean {
  const host = registry.replace(/:[0-9]+$/, '')
  return host === 'localhost' || host === '[::1]' || /^127(?:\.[0-9]{1,3}){3}$/.test(host)
}

function invalid(ref: string, why: string): UsageError {
  return new UsageError(`${JSON.stringify(ref)} is not an OCI reference: ${why}`, {
    code: 'OCI_REFERENCE_INVALID',
    hint: 'Write it as host[:port]/repository[:tag] or host[:port]/repository@sha256:<digest>, e.g. registry.internal:5000/models/scout:v3.',
  })
}

export function parseReference(ref: string, options: { plainHttp?: boolean; defaultTag?: string } = {}): OciReference {
  const slash = ref.indexOf('/')
  if (slash <= 0) throw invalid(ref, 'it names no registry host')
  const registry = ref.slice(0, slash)
  if (!HOST.test(registry) || !(registry.includes('.') || registry.includes(':') || registry === 'localhost')) {
    throw invalid(ref, `${JSON.stringify(registry)} is not a registry host (a name with a dot or a port, or localhost)`)
  }
  let rest = ref.slice(slash + 1)
  let digest: string | undefined
  const at = rest.indexOf('@')
  if (at >= 0) {
    digest = rest.slice(at + 1)
    rest = rest.slice(0, at)
    if (!DIGEST.test(digest)) throw invalid(ref, `${JSON.stringify(digest)} is not a sha256:<64 lowercase hex> digest`)
  }
  let tag: string | undefined
  const colon = rest.lastIndexOf(':')
  if (colon >= 0) {
    tag = rest.slice(colon + 1)
    rest = rest.slice(0, colon)
    if (!TAG.test(tag)) throw invalid(ref, `${JSON.stringify(tag)} is not a tag (letters, digits, _ . -, at most 128, not starting with . or -)`)
  }
  if (!REPOSITORY.test(rest) || rest.length > 255) throw invalid(ref, `${JSON.stringify(rest)} is not a repository (lowercase components separated by /)`)
  if (tag === undefined && digest === undefined && options.defaultTag !== undefined) {
    if (!TAG.test(options.defaultTag)) throw invalid(ref, `it has no tag, and ${JSON.stringify(options.defaultTag)} cannot be one`)
    tag = options.defaultTag
  }
  return { registry, repository: rest, tag, digest, plainHttp: options.plainHttp === true || isLoopback(registry) }
}

/** The reference as text, by digest when it has one. */
export function formatReference(r: OciReference, by: 'tag' | 'digest' = r.digest ? 'digest' : 'tag'): string {
  const base = `${r.registry}/${r.repository}`
  if (by === 'digest' && r.digest) return `${base}@${r.digest}`
  return r.tag ? `${base}:${r.tag}` : base
}
