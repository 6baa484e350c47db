import { Args, Flags } from '@oclif/core'
import { BaseCommand, resolveStore, storeFlag } from '../../lib/base-command.js'
import { ModelStore, type PruneResult } from '../../publish/store.js'

export default class StorePrune extends BaseCommand {
  static summary = 'Remove old versions, keeping the newest N and every version a channel points to'
  static examples = ['<%= config.bin %> store prune scout --keep 3 --dry-run', '<%= config.bin %> store prune scout --keep 2 --store ./model-store']
  static args = { agent: Args.string({ description: 'agent name', required: true }) }
  static flags = {
    store: storeFlag,
    keep: Flags.integer({ description: 'versions to keep [default: store.keep of MODELFORGE_CONFIG, else 3]', min: 0 }),
    'dry-run': Flags.boolean({ description: 'only report what would be removed' }),
  }

  async run(): Promise<PruneResult> {
    const { args, flags } = await this.parse(StorePrune)
    const r = this.withWarnings(await new ModelStore(resolveStore(flags.store)).prune(args.agent, { keep: flags.keep, dryRun: flags['dry-run'] }))
    const verb = r.dryRun ? 'would remove' : 'removed'
    this.say(r.removed.length ? `${r.agent}: ${verb} ${r.removed.join(', ')}` : `${r.agent}: nothing to remove`)
    this.say(`kept ${r.kept.join(', ') || 'none'}${r.protected.length ? ` (channels point to ${r.protected.join(', ')})` : ''}`)
    return r
  }
}
