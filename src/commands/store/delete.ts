import { Args, Flags } from '@oclif/core'
import { BaseCommand, resolveStore, storeFlag, registryFlag } from '../../lib/base-command.js'
import { recordStoreWrites } from '../../registry/index.js'
import { ModelStore, type DeleteResult } from '../../publish/store.js'

export default class StoreDelete extends BaseCommand {
  static summary = 'Remove one finalized version that no channel points to'
  static description = `Removes <version> of <agent> under the agent's writer lock, and records it in the audit log. A version
that current or any other channel points to is refused: point the channel elsewhere first. The version is
renamed aside before its files are deleted, so a crash leaves either the whole version or a leftover that
\`store gc\` removes, never a half version. --dry-run only checks.

Exit codes: 0 deleted (or would be, with --dry-run); 2 a bad agent or version name; 5 a channel points to
the version (VERSION_IN_USE, naming the channels) or another writer holds the lock; 6 no such store, agent
or version; 7 a version of another account (PERMISSION_DENIED, naming its owner: a finalized version is
read-only, and only its owner or root may make it writable to remove it; checked before anything is
changed, also by --dry-run); 3 or 7 when the operating system refuses (a full disk, permissions, an
immutable file).`
  static examples = [
    '<%= config.bin %> store delete scout v1 --dry-run',
    '<%= config.bin %> store delete scout v1 --store ./model-store --json',
  ]
  static args = {
    agent: Args.string({ description: 'agent name', required: true }),
    version: Args.string({ description: 'finalized version to remove', required: true }),
  }
  static flags = {
    store: storeFlag,
    registry: registryFlag,
    'dry-run': Flags.boolean({ description: 'only check that the version exists and no channel points to it' }),
  }

  async run(): Promise<DeleteResult> {
    const { args, flags } = await this.parse(StoreDelete)
    const store = new ModelStore(resolveStore(flags.store))
    const r = this.withWarnings(await recordStoreWrites({ store: store.root, url: flags.registry }, () => store.delete(args.agent, args.version, { dryRun: flags['dry-run'] })))
    this.say(r.dryRun ? `${r.agent}: would delete ${r.version} (no channel points to it)` : `${r.agent}: deleted ${r.version}`)
    return r
  }
}
