import { Args, Flags } from '@oclif/core'
import { BaseCommand } from '../lib/base-command.js'
import { createToyStore, DEFAULT_AGENTS, type ToyStoreResult } from '../toy/toy-store.js'

export default class ToyStore extends BaseCommand {
  static summary = 'Create a demo model store of real, tiny ONNX models'
  static description = `For each agent, builds --versions tiny ONNX models in TypeScript (a bag-of-words classifier or a
mean-pooled embedding network with deterministic weights, with config.json and vocab.txt/labels.json),
stages and finalizes them through the store, leaves current on the newest, then runs every current model in
onnxruntime-node and verifies the store before reporting success.`
  static examples = [
    '<%= config.bin %> toy-store demo-store',
    '<%= config.bin %> toy-store demo-store --agents scout,memory --versions 3 --json',
  ]
  static args = { dir: Args.string({ description: 'store directory to create or add to', required: true }) }
  static flags = {
    agents: Flags.string({ description: 'comma-separated agent names, each listed once (letters, digits, ".", "_", "-")', default: DEFAULT_AGENTS.join(',') }),
    versions: Flags.integer({ description: 'versions per agent, 1 to 100 (v1 ... vN; current ends on the newest)', default: 2, min: 1, max: 100 }),
  }

  async run(): Promise<ToyStoreResult> {
    const { args, flags } = await this.parse(ToyStore)
    const agents = flags.agents.split(',').map((a) => a.trim()).filter(Boolean)
    const r = await this.withProgress((progress) => createToyStore(args.dir, { agents, versions: flags.versions, progress }))
    this.say(`Toy store ${r.root}: ${r.agents.length} agents, ${r.verified} versions verified`)
    for (const a of r.agents) {
      const what = a.check.predictions ? `predicts ${a.check.predictions.join(', ')}` : `cosine similarity ${a.check.similarity!.toFixed(3)}`
      this.say(`  ${a.agent.padEnd(12)} ${a.kind.padEnd(10)} current -> ${a.current}  (${a.check.output} [${a.check.shape.join(', ')}], ${what})`)
    }
    return r
  }
}
