import { Args } from '@oclif/core'
import { BaseCommand, registryFlag, resolveStore, storeFlag } from '../../../lib/base-command.js'
import { parsePreferenceValue, setPreference, withRegistry } from '../../../registry/index.js'

export default class RegistryConfigSet extends BaseCommand {
  static summary = 'Set a model registry preference (a JSON value, or a plain string)'
  static description = 'Keys MODELFORGE_CONFIG knows are checked as it checks them (exit 2 for a wrong value); other keys are stored as given. See docs/registry.md.'
  static examples = [
    `<%= config.bin %> registry config set download.allowedSources '["sentence-transformers/*","org/*"]' --store ./model-store`,
    '<%= config.bin %> registry config set download.requireApproval true',
  ]
  static args = {
    key: Args.string({ description: 'dotted key', required: true }),
    value: Args.string({ description: 'JSON value (true, 3, ["a/*"]) or a string', required: true }),
  }
  static flags = { store: storeFlag, registry: registryFlag }

  async run(): Promise<{ key: string; value: unknown; previous: unknown }> {
    const { args, flags } = await this.parse(RegistryConfigSet)
    const r = await withRegistry({ store: resolveStore(flags.store), url: flags.registry }, (db) => setPreference(db, args.key, parsePreferenceValue(args.value)))
    this.say(`${r.key} = ${JSON.stringify(r.value)}${r.previous !== null ? ` (was ${JSON.stringify(r.previous)})` : ''}`)
    return r
  }
}
