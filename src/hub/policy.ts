/**
 * Download policy from MODELFORGE_CONFIG: download.allowedSources (globs over repo ids, e.g.
 * "sentence-transformers/*"; "*" does not cross "/") and download.requireApproval (then the caller must
 * pass --yes / approved: true). Checked before any request is made. Both functions take a config that went
 * through checkConfig (lib/env.ts), so a wrong value is reported by its key before it is acted on.
 */
import { minimatch } from 'minimatch'
import { type ModelforgeConfig } from '../lib/env.js'
import { PolicyError } from '../lib/errors.js'

/** Refuses a repo id that no allowedSources glob matches (absent list: everything allowed). */
export function checkSourceAllowed(repoId: string, config: ModelforgeConfig, configFile?: string): void {
  const allowed = config.download?.allowedSources
  if (allowed === undefined) return
  if (allowed.some((glob) => minimatch(repoId, glob, { nocase: true }))) return
  throw new PolicyError(`Fetching ${repoId} is not allowed by policy: it matches none of download.allowedSources (${allowed.join(', ') || 'empty list'})`, {
    code: 'SOURCE_NOT_ALLOWED',
    hint: `Ask for ${repoId} to be added to download.allowedSources in ${configFile ?? 'the MODELFORGE_CONFIG file'}.`,
    details: { repo: repoId, allowedSources: allowed },
  })
}

/** Refuses a download without approval when download.requireApproval is set. */
export function checkApproval(repoId: string, config: ModelforgeConfig, approved: boolean): void {
  if (!config.download?.requireApproval || approved) return
  throw new PolicyError(`Downloading ${repoId} requires approval (download.requireApproval is set)`, {
    code: 'APPROVAL_REQUIRED',
    hint: 'Rerun with --yes to approve this download.',
    details: { repo: repoId },
  })
}
