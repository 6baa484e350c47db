import { Args } from '@oclif/core'
import { BaseCommand, resolveStore, storeFlag } from '../../lib/base-command.js'
import { ModelStore } from '../../publish/store.js'

export default class StoreStage extends BaseCommand {
  static summary = 'Create the staging directory of a new version and print its path'
  static description = `For shell writers: fill the printed directory, then run \`store finalize\`. Refuses when the version
or its staging directory already exists (exit 5).`
  static examples = ['dir=$(<%= config.bin %> store stage scout v3 --store ./model-store) && cp model.onnx "$dir"/']
  static args = {
    agent: Args.string({ description: 'agent name', required: true }),
    version: Args.string({ description: 'new version name', required: true }),
  }
  static flags = { store: storeFlag }

  async run(): Promise<{ agent: string; version: string; path: string }> {
    const { args, flags } = await this.parse(StoreStage)
    const path = await new ModelStore(resolveStore(flags.store)).stage(args.agent, args.version)
    this.say(path)
    return { agent: args.agent, version: args.version, path }
  }
}
