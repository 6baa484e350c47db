import { Args, Flags } from '@oclif/core'
import { BaseCommand, resolveStore, storeFlag, registryFlag } from '../../lib/base-command.js'
import { recordStoreWrites } from '../../registry/index.js'
import { ModelStore, type ChannelChange } from '../../publish/store.js'

export default class StorePromote extends BaseCommand {
  static summary = 'Point current (or another channel) at a finalized version'
  static description = `The version is verified first (every file against its manifest, as \`store verify\` does): one that
fails is refused with exit 4 naming each problem, and the channel stays where it was. Exits 6 when the
agent or version does not exist.`
  static examples = ['<%= config.bin %> store promote scout v2', '<%= config.bin %> store promote scout v3 --channel staging --store ./model-store']
  static args = {
    agent: Args.string({ description: 'agent name', required: true }),
    version: Args.string({ description: 'finalized version', required: true }),
  }
  static flags = {
    store: storeFlag,
    registry: registryFlag,
    channel: Flags.string({ description: 'channel to move', default: 'current' }),
  }

  async run(): Promise<ChannelChange> {
    const { args, flags } = await this.parse(StorePromote)
    const store = new ModelStore(resolveStore(flags.store))
    const r = this.withWarnings(await recordStoreWrites({ store: store.root, url: flags.registry }, () => store.promote(args.agent, args.version, flags.channel)))
    this.say(`${r.agent} ${r.channel} -> ${r.version}${r.previous ? ` (was ${r.previous})` : ''}`)
    return r
  }
}
