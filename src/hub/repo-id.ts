/**
 * Repo ids as the Hub and huggingface_hub's validate_repo_id read them: [namespace/]name, where a
 * canonical model (gpt2, bert-base-uncased) has no namespace. Every area that takes a repo id from the user
 * parses it here, so that an id one command accepts is not refused by another.
 */
import { UsageError } from '../lib/errors.js'

export interface RepoId {
  /** The user or organisation; absent for canonical models. */
  namespace?: string
  name: string
  /** As given: namespace/name, or name alone. */
  id: string
}

// Restricted to what the Hub allows (a name of at most 96 characters); "--" and ".." would also make the
// cache folder name models--<namespace>--<name> ambiguous or let it escape the cache.
const REPO_ID_RE = /^(?:([A-Za-z0-9][\w.-]*)\/)?([A-Za-z0-9][\w.-]{0,95})$/

export function parseRepoId(text: string): RepoId {
  const m = REPO_ID_RE.exec(text)
  if (!m || text.includes('--') || text.includes('..') || text.endsWith('.git')) {
    throw new UsageError(`Invalid repo id "${text}"`, {
      code: 'INVALID_REPO_ID',
      hint: 'Use the form org/name (letters, digits, "-", "_", "."; no "--" or ".."), e.g. google-bert/bert-base-uncased.',
    })
  }
  return { ...(m[1] ? { namespace: m[1] } : {}), name: m[2]!, id: text }
}
