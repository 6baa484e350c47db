import { Args } from '@oclif/core'
import { BaseCommand, resolveStore, storeFlag } from '../../lib/base-command.js'
import { ModelStore } from '../../publish/store.js'
import type { LegacyManifest, Manifest } from '../../publish/manifest.js'

export default class StoreShow extends BaseCommand {
  static summary = 'Print the manifest of a version (default: the current one)'
  static description = `Exits 6 for a missing store, agent, version or current version (STRICT_MODEL_STORE=1 or not), and 4 for
a manifest that is missing or broken, or a current link that dangles or leads outside the agent. Given an
alias (a link to another agent's directory), it shows that agent's manifest and says so on stderr.`
  static examples = ['<%= config.bin %> store show scout', '<%= config.bin %> store show scout v2 --store ./model-store --json']
  static args = {
    agent: Args.string({ description: 'agent name', required: true }),
    version: Args.string({ description: 'version (default: current)' }),
  }
  static flags = { store: storeFlag }

  async run(): Promise<Manifest | LegacyManifest> {
    const { args, flags } = await this.parse(StoreShow)
    const store = new ModelStore(resolveStore(flags.store))
    const manifest = await store.manifest(args.agent, args.version)
    // stdout stays the manifest alone (scripts parse it); the alias is said beside it.
    const alias = store.aliasOf(args.agent)
    if (alias && !this.jsonEnabled()) process.stderr.write(`${args.agent} is an alias of ${alias}\n`)
    this.say(JSON.stringify(manifest, null, 2))
    return manifest
  }
}
