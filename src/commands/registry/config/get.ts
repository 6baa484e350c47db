import { Args } from '@oclif/core'
import { BaseCommand, registryFlag, resolveStore, storeFlag } from '../../../lib/base-command.js'
import { getPreferences, withRegistry } from '../../../registry/index.js'

export default class RegistryConfigGet extends BaseCommand {
  static summary = "The model registry's preferences (one key, or all)"
  static description = 'Policy keys (download.allowedSources, download.requireApproval) apply to fetch when the store has a registry, over MODELFORGE_CONFIG. See docs/registry.md.'
  static examples = ['<%= config.bin %> registry config get --store ./model-store', '<%= config.bin %> registry config get download.allowedSources --json']
  static args = { key: Args.string({ description: 'dotted key, e.g. download.allowedSources' }) }
  static flags = { store: storeFlag, registry: registryFlag }

  async run(): Promise<{ preferences: Record<string, unknown> }> {
    const { args, flags } = await this.parse(RegistryConfigGet)
    const preferences = await withRegistry({ store: resolveStore(flags.store), url: flags.registry }, (db) => getPreferences(db, args.key))
    if (Object.keys(preferences).length === 0) this.say(args.key ? `${args.key} is not set` : 'No preferences set')
    for (const [k, v] of Object.entries(preferences)) this.say(`${k} = ${JSON.stringify(v)}`)
    return { preferences }
  }
}
