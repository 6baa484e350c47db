import { Args } from '@oclif/core'
import { BaseCommand, resolveStore, storeFlag, registryFlag } from '../../lib/base-command.js'
import { recordStoreWrites } from '../../registry/index.js'
import { ModelStore, type ChannelChange } from '../../publish/store.js'

export default class StoreRollback extends BaseCommand {
  static summary = 'Point current back at the version it pointed to before (from the audit log)'
  static description = `Repeat it to go further back. It goes to the newest earlier version that is still intact: versions
that are gone or fail verification are skipped, and each one skipped is named. When current is dangling
or leads outside the agent, it goes to the newest intact version the log names. Exits 6 when the audit
log holds no earlier current version or all of them are gone, and 4 when the ones left fail
verification; point current explicitly with \`store promote\` then.`
  static examples = ['<%= config.bin %> store rollback scout --store ./model-store']
  static args = { agent: Args.string({ description: 'agent name', required: true }) }
  static flags = { store: storeFlag, registry: registryFlag }

  async run(): Promise<ChannelChange> {
    const { args, flags } = await this.parse(StoreRollback)
    const store = new ModelStore(resolveStore(flags.store))
    const r = this.withWarnings(await recordStoreWrites({ store: store.root, url: flags.registry }, () => store.rollback(args.agent)))
    for (const x of r.skipped ?? []) this.say(`skipped ${x.version}: ${x.reason}`)
    this.say(`${r.agent} current -> ${r.version} (was ${r.previous ?? 'none'})`)
    return r
  }
}
