import { Args } from '@oclif/core'
import { BaseCommand, registryFlag, resolveStore, storeFlag } from '../../lib/base-command.js'
import { formatBytes } from '../../lib/progress.js'
import { showModel, showVersion, withRegistry, type VersionDetail, type VersionRow, type ModelRow } from '../../registry/index.js'

export default class RegistryShow extends BaseCommand {
  static summary = "An agent's versions, or one version's capabilities, metrics, artifacts, availability and events"
  static description = 'Exits 6 when the registry knows no such agent or version, or the store has no registry. See docs/registry.md.'
  static examples = ['<%= config.bin %> registry show scout --store ./model-store', '<%= config.bin %> registry show scout v2 --json']
  static args = {
    agent: Args.string({ description: 'agent name', required: true }),
    version: Args.string({ description: 'version [default: every version, newest first]' }),
  }
  static flags = { store: storeFlag, registry: registryFlag }

  async run(): Promise<VersionDetail | { model: ModelRow; versions: VersionRow[] }> {
    const { args, flags } = await this.parse(RegistryShow)
    const target = { store: resolveStore(flags.store), url: flags.registry }
    if (args.version === undefined) {
      const r = await withRegistry(target, (db) => showModel(db, args.agent))
      this.say(`${r.model.agent}${r.model.vendor ? ` (${r.model.vendor})` : ''}: ${r.model.versions} versions${r.model.gone ? `, ${r.model.gone} gone` : ''}`)
      for (const v of r.versions) this.say(`  ${v.version}  ${v.state}${v.aliases.length ? `  [${v.aliases.join(', ')}]` : ''}${v.tags.archived ? '  archived' : ''}  ${v.createdAt}`)
      return r
    }
    const v = await withRegistry(target, (db) => showVersion(db, args.agent, args.version!))
    this.say(`${v.agent} ${v.version} (${v.state}${v.aliases.length ? `; ${v.aliases.join(', ')}` : ''}${v.tags.archived ? '; archived' : ''})`)
    this.say(`  checksum     ${v.checksum ?? '-'}`)
    this.say(`  path         ${v.path}`)
    this.say(`  capabilities ${JSON.stringify(v.capabilities)}`)
    this.say(`  metrics      ${JSON.stringify(v.metrics)}`)
    for (const a of v.artifacts) this.say(`  ${a.artifactType.padEnd(18)} ${a.path}  ${formatBytes(a.sizeBytes)}  ${a.sha256}`)
    for (const n of v.availability) this.say(`  node ${n.nodeId}: ${n.status} (${n.lastCheckedAt})`)
    for (const e of v.events) this.say(`  ${e.time}  ${e.action}${e.alias ? ` ${e.alias}` : ''}  ${e.actor ?? ''}`)
    return v
  }
}
