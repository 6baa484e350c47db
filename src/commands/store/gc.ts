import { Flags } from '@oclif/core'
import { BaseCommand, resolveStore, storeFlag, registryFlag } from '../../lib/base-command.js'
import { recordStoreWrites } from '../../registry/index.js'
import { parseDuration } from '../../publish/options.js'
import { ModelStore, type GcResult } from '../../publish/store.js'

export default class StoreGc extends BaseCommand {
  static summary = 'Remove leftover temporary links and stale staging directories'
  static description = `Removes temporary links left by an interrupted publish, versions an interrupted prune was deleting,
and staging directories in which nothing (at any depth) changed for longer than --older-than. A change
is judged by ctime, which the kernel sets and no tool sets back, so a tree copied in with \`cp -a\` or
moved in with \`mv\` (old mtimes) is as young as the copy. Agents whose lock a live writer holds are
skipped. The work directories of pulls that failed or were killed and never rerun
(.modelforge/pulls/<digest>/, partial blobs) go by the same age; a running pull's are kept. --older-than 0 removes every staging directory, including
one a shell writer is still filling. What this account may not remove (a leftover of another account's
read-only version, a staging directory holding another account's directories) is refused before
anything is removed: exit 7, PERMISSION_DENIED naming the owner.`
  static examples = ['<%= config.bin %> store gc --store ./model-store', '<%= config.bin %> store gc --older-than 0 --json']
  static flags = {
    store: storeFlag,
    registry: registryFlag,
    'older-than': Flags.string({ description: 'age of staging directories and abandoned pulls to remove: 30m, 24h, 7d, or 0 for all', default: '24h' }),
  }

  async run(): Promise<GcResult> {
    const { flags } = await this.parse(StoreGc)
    const store = new ModelStore(resolveStore(flags.store))
    const r = this.withWarnings(await recordStoreWrites({ store: store.root, url: flags.registry }, () => store.gc({ olderThanMs: parseDuration(flags['older-than']) })))
    for (const x of r.removed) this.say(`removed ${x.kind} ${x.path}`)
    for (const s of r.skipped) this.say(`skipped ${s.agent}: ${s.reason}`)
    if (r.removed.length === 0) this.say('Nothing to remove.')
    return r
  }
}
