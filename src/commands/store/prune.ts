import { Args, Flags } from '@oclif/core'
import { formatBytes } from '../../lib/progress.js'
import { BaseCommand, resolveStore, storeFlag, registryFlag } from '../../lib/base-command.js'
import { recordStoreWrites } from '../../registry/index.js'
import { ModelStore, type EvictResult, type PruneResult } from '../../publish/store.js'
import { evictToBound } from '../../distribution/index.js'
import { parseByteSize } from '../../publish/options.js'
import { hostname } from 'node:os'
import { UsageError } from '../../lib/errors.js'

export default class StorePrune extends BaseCommand {
  static summary = 'Remove old versions, keeping the newest N and every version a channel points to'
  static description = `Versions are judged by their manifests: the newest N by created_at are kept, with every version a
channel points to. A directory of versions/ whose manifest is missing, unreadable or names another
version or agent is never counted and never removed: it is named, to be inspected and removed by hand.
A channel that is dangling or leads outside the agent protects nothing and is named; whatever --keep
says, prune never leaves the agent without an intact version (it then keeps the newest that verifies).
A version to remove that belongs to another account is refused before anything is removed (exit 7,
PERMISSION_DENIED naming its owner): only its owner or root may remove a read-only version.

With --max-bytes (a node cache's bound; store.maxBytes applies it after every store pull), no agent is
named: across the whole store, versions no channel points to are removed least recently used first
(last finalized, pulled, or served by a channel, from the audit log) until the intact versions hold at
most that many bytes. Each removal is audited as evict and reported to the model registry as evicted on
--node (default the hostname).`
  static examples = [
    '<%= config.bin %> store prune scout --keep 3 --dry-run',
    '<%= config.bin %> store prune scout --keep 2 --store ./model-store',
    '<%= config.bin %> store prune --max-bytes 40GiB --store /srv/model-store --node gpu-07',
  ]
  static args = { agent: Args.string({ description: 'agent name (not with --max-bytes, which bounds the whole store)' }) }
  static flags = {
    store: storeFlag,
    registry: registryFlag,
    keep: Flags.integer({ description: 'versions to keep [default: store.keep of MODELFORGE_CONFIG, else 3]', min: 0 }),
    'dry-run': Flags.boolean({ description: 'only report what would be removed' }),
    'max-bytes': Flags.string({ description: 'evict versions no channel points to, least recently used first, until the store holds at most this (500MB, 40GiB)', helpValue: '<size>' }),
    node: Flags.string({ description: 'with --max-bytes: the node id the model registry records the evictions for [default: the hostname]', helpValue: '<id>' }),
  }

  async run(): Promise<PruneResult | EvictResult> {
    const { args, flags } = await this.parse(StorePrune)
    if (flags['max-bytes'] !== undefined) {
      if (args.agent !== undefined || flags.keep !== undefined) throw new UsageError('--max-bytes bounds the whole store: give it without an agent and without --keep', { code: 'USAGE', hint: 'store prune --max-bytes 40GiB, or store prune <agent> --keep 3.' })
      return this.evict(parseByteSize(flags['max-bytes']), flags)
    }
    if (args.agent === undefined) throw new UsageError('Name the agent to prune, or bound the whole store with --max-bytes', { code: 'USAGE', hint: 'store prune scout --keep 3, or store prune --max-bytes 40GiB.' })
    const agent = args.agent
    const store = new ModelStore(resolveStore(flags.store))
    const r = this.withWarnings(await recordStoreWrites({ store: store.root, url: flags.registry }, () => store.prune(agent, { keep: flags.keep, dryRun: flags['dry-run'] })))
    const verb = r.dryRun ? 'would remove' : 'removed'
    this.say(r.removed.length ? `${r.agent}: ${verb} ${r.removed.join(', ')}` : `${r.agent}: nothing to remove`)
    this.say(`kept ${r.kept.join(', ') || 'none'}${r.protected.length ? ` (channels point to ${r.protected.join(', ')})` : ''}`)
    if (r.lastIntact) this.say(`kept ${r.lastIntact} beyond --keep: it is the newest version that verifies, and nothing else kept is intact`)
    for (const c of r.brokenChannels) this.say(`channel ${c.channel} protects nothing: ${c.problem}`)
    for (const u of r.unrecognised) this.say(`left ${u.version} alone: ${u.problem} (prune only removes versions it can judge; inspect it, then remove it by hand)`)
    return r
  }

  private async evict(maxBytes: number, flags: { store?: string; registry?: string; 'dry-run'?: boolean; node?: string }): Promise<EvictResult> {
    const store = new ModelStore(resolveStore(flags.store))
    const r = this.withWarnings(await evictToBound({ store: store.root, url: flags.registry }, flags.node ?? hostname(), maxBytes, { dryRun: flags['dry-run'] }))
    const verb = r.dryRun ? 'would evict' : 'evicted'
    this.say(r.evicted.length ? `${verb} ${r.evicted.map((e) => `${e.agent}/${e.version}`).join(', ')}` : 'nothing to evict')
    this.say(`the store holds ${formatBytes(r.bytesAfter)}${r.dryRun ? ' after that' : ''} (bound ${formatBytes(maxBytes)}, was ${formatBytes(r.bytesBefore)})${r.overBudget ? ': still over, what is left is what channels point to' : ''}`)
    return r
  }
}
