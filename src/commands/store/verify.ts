import { Args } from '@oclif/core'
import { BaseCommand, resolveStore, storeFlag } from '../../lib/base-command.js'
import { assertVerified, ModelStore, type VerifyReport } from '../../publish/store.js'

export default class StoreVerify extends BaseCommand {
  static summary = 'Check versions against their manifests (exit 4 naming each modified, missing or extra file)'
  static description = `Without arguments checks every version of every agent; with an agent, all its versions; with a version,
that one. Manifests written by the original Python ModelStore are checked with its checksum algorithm,
in the order os.walk lists the tree here and in sorted order; the report says which matched.
Every problem is reported and the check goes on: a version, manifest or file that cannot be read is a
problem of that version, and the other versions are still checked (exit 4 at the end). An alias is
checked as the agent it leads to; a broken alias is a problem of its own.

A version whose files or directories became writable, or are not of the store root's group, is reported
with a Warning: line on stderr (\`warnings\` of its report under --json): no failure, the exit code stays 0
when every file matches.`
  static examples = ['<%= config.bin %> store verify --store ./model-store', '<%= config.bin %> store verify scout v2 --json']
  static args = {
    agent: Args.string({ description: 'agent name' }),
    version: Args.string({ description: 'version name' }),
  }
  static flags = { store: storeFlag }

  async run(): Promise<VerifyReport[]> {
    const { args, flags } = await this.parse(StoreVerify)
    const reports = await new ModelStore(resolveStore(flags.store)).verify(args.agent, args.version)
    for (const r of reports.filter((x) => x.ok)) this.say(`ok  ${r.agent}/${r.version}  (${r.alias ? `alias: ${r.alias}; ` : ''}${r.files} files, ${r.algorithm}${r.checksumOrder ? `, ${r.checksumOrder} order` : ''})`)
    this.withWarnings({ warnings: reports.flatMap((r) => (r.warnings ?? []).map((w) => `${r.agent}/${r.version ?? '?'}: ${w}`)) })
    assertVerified(reports)
    if (reports.length === 0) this.say('Nothing to verify.')
    return reports
  }
}
