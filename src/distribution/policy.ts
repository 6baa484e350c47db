/**
 * distribution.allowedRegistries (MODELFORGE_CONFIG, or the model registry's preferences over it): the OCI
 * registry hosts push and pull may talk to, as host[:port] globs. Checked before any request is made.
 */
import { minimatch } from 'minimatch'
import { loadConfig, type ModelforgeConfig } from '../lib/env.js'
import { PolicyError } from '../lib/errors.js'
import { fetchPolicy, type RegistryTarget } from '../registry/index.js'
import { type OciReference } from './reference.js'

/** The policy in force for a store: the model registry's preferences over MODELFORGE_CONFIG when it has one. */
export async function distributionPolicy(target: RegistryTarget): Promise<ModelforgeConfig> {
  return (await fetchPolicy(target)) ?? loadConfig()
}

export function checkRegistryAllowed(ref: OciReference, config: ModelforgeConfig): void {
  const allowed = config.distribution?.allowedRegistries
  if (allowed === undefined) return
  if (allowed.some((glob) => minimatch(ref.registry, glob, { nocase: true }))) return
  throw new PolicyError(`The OCI registry ${ref.registry} is not allowed by policy: it matches none of distribution.allowedRegistries (${allowed.join(', ') || 'empty list'})`, {
    code: 'OCI_REGISTRY_NOT_ALLOWED',
    hint: `Use an allowed registry, or ask for ${ref.registry} to be added to distribution.allowedRegistries.`,
    details: { registry: ref.registry, allowedRegistries: allowed },
  })
}
