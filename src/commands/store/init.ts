import { Flags } from '@oclif/core'
import { BaseCommand, resolveStore, storeFlag } from '../../lib/base-command.js'
import { ModelStore, type InitResult } from '../../publish/store.js'

export default class StoreInit extends BaseCommand {
  static summary = 'Create or adopt a store root for trainers of one group and agents in other accounts'
  static description = `Gives the store's own directories (the root, .modelforge, .modelforge/locks, every agent directory and
its versions/) the group, the setgid bit (everything created below inherits the group) and group read,
write and traverse, so that any trainer of the group can stage, take the locks and publish; the audit log
gets the group and group read and write. What the agents hold (versions, staging directories) gets the
group and no other change: a finalized version stays read-only. Other bits are left as they are: agents
outside the group read through them. Without --group, the root's current group is used. A missing root
is created. Idempotent: a second run changes nothing; the result lists every change.

Exit codes: 0 done; 2 --group names no group of this system (GROUP_NOT_FOUND), or the root is a file;
7 a directory of another owner, or a group this account is not a member of (run it as root): nothing
was changed.`
  static examples = [
    'sudo <%= config.bin %> store init --group mf-trainers --store /srv/model-store',
    '<%= config.bin %> store init --store ./model-store --json',
  ]
  static flags = {
    store: storeFlag,
    group: Flags.string({ description: 'the group trainers share (name or gid) [default: the root\'s group]', helpValue: '<group>' }),
  }

  async run(): Promise<InitResult> {
    const { flags } = await this.parse(StoreInit)
    const r = this.withWarnings(await new ModelStore(resolveStore(flags.store)).init({ group: flags.group }))
    const group = r.group.name ? `${r.group.name} (gid ${r.group.gid})` : `gid ${r.group.gid}`
    for (const c of r.changed) {
      if (c.change === 'created') this.say(`created ${c.path} (${c.to})`)
      else if (c.entries !== undefined) this.say(`${c.path}: group of ${c.entries} ${c.entries === 1 ? 'entry' : 'entries'} -> ${c.to}`)
      else this.say(`${c.path}: ${c.change} ${c.from} -> ${c.to}`)
    }
    for (const s of r.skipped) this.say(`left ${s.path} alone: ${s.reason}`)
    this.say(r.changed.length > 0 ? `Store ${r.root} is set up for group ${group}.` : `Store ${r.root} is set up for group ${group}: nothing to change.`)
    return r
  }
}
