/**
 * Removing a whole finalized version, for prune and delete. A recursive delete killed half-way would leave
 * a version with files missing under its own name, so the version is first renamed to a hidden
 * `.prune-<version>-<hex>.tmp` name (one rename: atomic), and only that is deleted. A crash at any instant
 * leaves either the whole version or a leftover that no valid version name can match, which `store gc`
 * removes whatever its age. The caller holds the agent's lock and fsyncs the versions directory after.
 */
import { randomBytes } from 'node:crypto'
import { rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { fsyncDir, TEMP_SUFFIX } from '../lib/fs.js'

/** The prefix of a version being removed; gc removes `<PRUNE_PREFIX>...<TEMP_SUFFIX>` entries whatever their age. */
export const PRUNE_PREFIX = '.prune-'

/** Renames versions/<version> aside (durably), then deletes it; returns the name it had while deleted. */
export async function discardVersion(versionsDir: string, version: string): Promise<string> {
  const doomed = join(versionsDir, `${PRUNE_PREFIX}${version}-${randomBytes(4).toString('hex')}${TEMP_SUFFIX}`)
  await rename(join(versionsDir, version), doomed)
  await fsyncDir(versionsDir)
  await rm(doomed, { recursive: true, force: true })
  return doomed
}
