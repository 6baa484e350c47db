import { Args, Flags } from '@oclif/core'
import { BaseCommand, resolveStore, storeFlag, registryFlag } from '../../lib/base-command.js'
import { recordStoreWrites } from '../../registry/index.js'
import { ModelStore, type PruneResult } from '../../publish/store.js'

export default class StorePrune extends BaseCommand {
  static summary = 'Remove old versions, keeping the newest N and every version a channel points to'
  static description = `Versions are judged by their manifests: the newest N by created_at are kept, with every version a
channel points to. A directory of versions/ whose manifest is missing, unreadable or names another
version or agent is never counted and never removed: it is named, to be inspected and removed by hand.
A channel that is dangling or leads outside the agent protects nothing and is named; whatever --keep
says, prune never leaves the agent without an intact version (it then keeps the newest that verifies).
A version to remove that belongs to another account is refused before anything is removed (exit 7,
PERMISSION_DENIED naming its owner): only its owner or root may remove a read-only version.`
  static examples = ['<%= config.bin %> store prune scout --keep 3 --dry-run', '<%= config.bin %> store prune scout --keep 2 --store ./model-store']
  static args = { agent: Args.string({ description: 'agent name', required: true }) }
  static flags = {
    store: storeFlag,
    registry: registryFlag,
    keep: Flags.integer({ description: 'versions to keep [default: store.keep of MODELFORGE_CONFIG, else 3]', min: 0 }),
    'dry-run': Flags.boolean({ description: 'only report what would be removed' }),
  }

  async run(): Promise<PruneResult> {
    const { args, flags } = await this.parse(StorePrune)
    const store = new ModelStore(resolveStore(flags.store))
    const r = this.withWarnings(await recordStoreWrites({ store: store.root, url: flags.registry }, () => store.prune(args.agent, { keep: flags.keep, dryRun: flags['dry-run'] })))
    const verb = r.dryRun ? 'would remove' : 'removed'
    this.say(r.removed.length ? `${r.agent}: ${verb} ${r.removed.join(', ')}` : `${r.agent}: nothing to remove`)
    this.say(`kept ${r.kept.join(', ') || 'none'}${r.protected.length ? ` (channels point to ${r.protected.join(', ')})` : ''}`)
    if (r.lastIntact) this.say(`kept ${r.lastIntact} beyond --keep: it is the newest version that verifies, and nothing else kept is intact`)
    for (const c of r.brokenChannels) this.say(`channel ${c.channel} protects nothing: ${c.problem}`)
    for (const u of r.unrecognised) this.say(`left ${u.version} alone: ${u.problem} (prune only removes versions it can judge; inspect it, then remove it by hand)`)
    return r
  }
}
