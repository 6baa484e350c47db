import { Args, Flags } from '@oclif/core'
import { BaseCommand, resolveStore, storeFlag } from '../../lib/base-command.js'
import { currentReport, renderCurrent, type CurrentReport } from '../../publish/current.js'

export default class StoreCurrent extends BaseCommand {
  static summary = 'Print the absolute path of the current version of an agent'
  static description = `Resolves the agent's \`current\` link once and prints the version directory it points to; read from that
directory, which never changes. Prints nothing (exit 0) when the agent has no current version, unless
STRICT_MODEL_STORE=1, which makes a missing store, agent or current version an error (exit 6).
An alias (a link in the store root to another agent's directory) prints that agent's version; --json says
both names. The plain form of this command is answered without loading the rest of the CLI, for speed.`
  static examples = [
    '<%= config.bin %> store current scout --store ./model-store',
    '<%= config.bin %> store current scout --channel staging --json',
  ]
  static args = { agent: Args.string({ description: 'agent name', required: true }) }
  static flags = {
    store: storeFlag,
    channel: Flags.string({ description: 'channel to resolve instead of current', default: 'current' }),
  }

  async run(): Promise<CurrentReport> {
    const { args, flags } = await this.parse(StoreCurrent)
    const report = currentReport(resolveStore(flags.store), args.agent, flags.channel)
    if (!this.jsonEnabled()) {
      const { stdout, stderr } = renderCurrent(report)
      process.stdout.write(stdout)
      process.stderr.write(stderr)
    }
    return report
  }
}
