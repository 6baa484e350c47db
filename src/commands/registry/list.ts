import { Flags } from '@oclif/core'
import { BaseCommand, registryFlag, resolveStore, storeFlag } from '../../lib/base-command.js'
import { listModels, withRegistry, type ModelRow } from '../../registry/index.js'

export default class RegistryList extends BaseCommand {
  static summary = 'The agents the model registry knows, with their version counts and aliases'
  static description = 'Exits 6 when the store has no registry. See docs/registry.md.'
  static examples = ['<%= config.bin %> registry list --store ./model-store', '<%= config.bin %> registry list --agent scout --json']
  static flags = { store: storeFlag, registry: registryFlag, agent: Flags.string({ description: 'only this agent' }) }

  async run(): Promise<{ models: ModelRow[] }> {
    const { flags } = await this.parse(RegistryList)
    const models = await withRegistry({ store: resolveStore(flags.store), url: flags.registry }, (db) => listModels(db, flags.agent))
    if (models.length === 0) this.say('No agents in the registry (modelforge registry sync indexes the store)')
    for (const m of models) {
      const aliases = Object.entries(m.aliases).map(([a, v]) => `${a} -> ${v}`).join(', ')
      this.say(`${m.agent}  ${m.versions} versions${m.gone ? ` (+${m.gone} gone)` : ''}${aliases ? `  ${aliases}` : ''}`)
    }
    return { models }
  }
}
