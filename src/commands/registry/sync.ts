import { Flags } from '@oclif/core'
import { BaseCommand, registryFlag, resolveStore, storeFlag } from '../../lib/base-command.js'
import { syncStore, type SyncResult } from '../../registry/index.js'

export default class RegistrySync extends BaseCommand {
  static summary = 'Reconcile the model registry with the store: versions, artifacts, aliases and the audit log'
  static description = `Reads every manifest, channel link and audit record of the store and writes what the registry lacks or holds otherwise; versions gone from the store are marked gone, not forgotten. Idempotent: a second sync writes nothing, and an agent whose manifests, channels and audit records are byte for byte what it was last synced from is skipped without being parsed (--full reads and compares it anyway, after registry rows were edited by hand). Each agent is one transaction, so a sync that is killed leaves the registry consistent and the next sync finishes the work. Without --registry or MODELFORGE_REGISTRY_URL it creates the embedded registry (PGlite) in <store>/.modelforge/registry. Exit codes: 2 a malformed URL or a registry newer than this modelforge, 3 the server unreachable or refusing the credentials, 4 a corrupt embedded registry, 5 another process holds the embedded one. See docs/registry.md.`
  static examples = [
    '<%= config.bin %> registry sync --store ./model-store',
    '<%= config.bin %> registry sync --store ./model-store --registry postgres://modelforge@db.internal:5432/models --json',
    '<%= config.bin %> registry sync --store ./model-store --full',
  ]
  static flags = {
    store: storeFlag,
    registry: registryFlag,
    full: Flags.boolean({ description: 'Read and compare every agent, even those unchanged since the last sync', default: false }),
  }

  async run(): Promise<SyncResult> {
    const { flags } = await this.parse(RegistrySync)
    const r = await this.withProgress((progress) => syncStore({ store: resolveStore(flags.store), url: flags.registry }, { progress, full: flags.full }))
    this.say(`Synced ${r.agents.length} agents of ${r.store} into ${r.registry.location}: ${r.changed === 0 ? 'already up to date' : `${r.changed} rows written`}`)
    this.say(`  versions: ${r.versionsAdded} added, ${r.versionsUpdated} updated, ${r.versionsGone} marked gone; ${r.artifacts} artifacts, ${r.aliases} aliases, ${r.events} events${r.unchanged.length > 0 ? `; ${r.unchanged.length} agents unchanged since the last sync` : ''}`)
    for (const s of r.skipped) this.say(`  skipped ${s.agent}/${s.version}: ${s.reason}`)
    return r
  }
}
