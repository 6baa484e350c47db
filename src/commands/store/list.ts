import { Flags } from '@oclif/core'
import { BaseCommand, resolveStore, storeFlag } from '../../lib/base-command.js'
import { formatBytes } from '../../lib/progress.js'
import { ModelStore, type AgentSummary } from '../../publish/store.js'

export default class StoreList extends BaseCommand {
  static summary = 'List agents, their versions and channels'
  static description = `A missing store lists no agents (exit 0), unless STRICT_MODEL_STORE=1, which makes it an error (exit 6);
a missing --agent is exit 6 either way. Versions whose manifest is missing or broken are listed with the
problem, and so are channels that point nowhere (-> ?). An alias (a link to another agent's directory) is
listed as \`<name>  alias: <agent>\` with that agent's channels, a broken one with its problem (--agent of
a broken alias is exit 4).`
  static examples = ['<%= config.bin %> store list --store ./model-store', '<%= config.bin %> store list --agent scout --json']
  static flags = {
    store: storeFlag,
    agent: Flags.string({ description: 'only this agent' }),
  }

  async run(): Promise<AgentSummary[]> {
    const { flags } = await this.parse(StoreList)
    const agents = await new ModelStore(resolveStore(flags.store)).list(flags.agent)
    if (agents.length === 0) this.say('No agents.')
    for (const a of agents) {
      if (a.aliasProblem !== undefined) {
        this.say(`${a.agent}  ALIAS PROBLEM: ${a.aliasProblem}`)
        continue
      }
      const channels = Object.entries(a.channels).map(([c, v]) => `${c} -> ${v ?? '?'}`).join(', ')
      this.say(`${a.agent}${a.alias ? `  alias: ${a.alias}` : ''}${channels ? `  (${channels})` : ''}`)
      // Listing the whole store, an alias's versions are those its agent lists under its own name.
      if (a.alias && flags.agent === undefined) continue
      for (const v of a.versions) {
        const marks = Object.entries(a.channels).filter(([, x]) => x === v.version).map(([c]) => c)
        const facts = v.manifestError
          ? `MANIFEST PROBLEM: ${v.manifestError}`
          : v.legacy ? 'legacy manifest' : `${v.files} files, ${formatBytes(v.bytes ?? 0)}`
        this.say(`  ${v.version.padEnd(24)} ${v.created_at}  ${facts}${marks.length ? `  [${marks.join(', ')}]` : ''}`)
      }
    }
    return agents
  }
}
