/** Store errors built in more than one place, so that each keeps one code, message and hint. */
import { ConflictError, NotFoundError } from '../lib/errors.js'

export function storeNotFound(root: string): NotFoundError {
  return new NotFoundError(`Model store ${root} does not exist`, { code: 'STORE_NOT_FOUND', hint: 'Check --store or MODEL_STORE_ROOT.', details: { root } })
}

export function versionExists(agent: string, version: string, path: string): ConflictError {
  return new ConflictError(`Version ${version} of agent ${agent} already exists`, {
    code: 'VERSION_EXISTS',
    hint: 'Finalized versions are immutable: choose a new version name.',
    details: { agent, version, path },
  })
}

export function versionNotFound(agent: string, version: string): NotFoundError {
  return new NotFoundError(`Version ${version} of agent ${agent} does not exist`, {
    code: 'VERSION_NOT_FOUND',
    hint: `List the versions with \`modelforge store list --agent ${agent}\`.`,
    details: { agent, version },
  })
}

export function notStaged(agent: string, version: string, staging: string): NotFoundError {
  return new NotFoundError(`Version ${version} of agent ${agent} is not staged (${staging} does not exist)`, {
    code: 'NOT_STAGED',
    hint: `Stage it first: \`modelforge store stage ${agent} ${version}\` prints the directory to fill.`,
    details: { agent, version, path: staging },
  })
}
