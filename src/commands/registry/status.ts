import { BaseCommand, registryFlag, resolveStore, storeFlag } from '../../lib/base-command.js'
import { registryStatus, withRegistry, type RegistryStatus } from '../../registry/index.js'

export default class RegistryStatusCommand extends BaseCommand {
  static summary = 'What the model registry holds and what it is behind the store by'
  static description = `Counts the registry's rows and compares it with the store without writing either: versions it lacks, versions it still calls present that the store no longer has, channels that moved, audit records not mirrored. \`registry sync\` closes every gap. Exits 6 when the store has no registry. See docs/registry.md.`
  static examples = ['<%= config.bin %> registry status --store ./model-store', '<%= config.bin %> registry status --registry postgres://modelforge@127.0.0.1:5432/models --json']
  static flags = { store: storeFlag, registry: registryFlag }

  async run(): Promise<RegistryStatus> {
    const { flags } = await this.parse(RegistryStatusCommand)
    const store = resolveStore(flags.store)
    const s = await withRegistry({ store, url: flags.registry }, (db) => registryStatus(db, store))
    this.say(`Registry ${s.registry.location} (${s.registry.kind}, schema ${s.registry.schema}) for ${s.store}`)
    this.say(`  ${s.counts.models} models, ${s.counts.versions} versions (${s.counts.gone} gone), ${s.counts.artifacts} artifacts, ${s.counts.aliases} aliases, ${s.counts.events} events, ${s.counts.nodes} nodes`)
    if (s.inSync) this.say('  in sync with the store')
    else {
      this.say('  behind the store (run modelforge registry sync):')
      for (const v of s.behind.versions) this.say(`    version not indexed: ${v}`)
      for (const v of s.behind.gone) this.say(`    gone from the store: ${v}`)
      for (const a of s.behind.aliases) this.say(`    channel moved: ${a}`)
      if (s.behind.events > 0) this.say(`    ${s.behind.events} audit records not mirrored`)
    }
    return s
  }
}
