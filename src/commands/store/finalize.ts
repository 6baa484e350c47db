import { Args, Flags } from '@oclif/core'
import { BaseCommand, finalizeFlags, resolveStore, storeFlag, registryFlag, capabilityFlag } from '../../lib/base-command.js'
import { parseCapabilities, recordStoreWrites } from '../../registry/index.js'
import { formatBytes } from '../../lib/progress.js'
import { checksums } from '../../publish/manifest.js'
import { parseMetadata } from '../../publish/options.js'
import { ModelStore, type FinalizeResult } from '../../publish/store.js'

export default class StoreFinalize extends BaseCommand {
  static summary = 'Hash a staged version, write its manifest, make it immutable and publish it as current'
  static description = `Refuses (exit 4) a staged tree holding symlinks, special files, file names sha256sum would escape, a
manifest.json of the caller's, or no files at all (an empty version is allowed with --allow-empty).
A finalize that failed after writing its own manifest.json can be run again. The version is made
read-only before it is renamed into place: no write bits, read (and traverse) bits for whoever may read
versions/; a file with other hard links that would need a new mode is replaced by a copy, so that the
other names keep theirs. A directory of another account is refused (exit 7): only its owner can chmod it.`
  static examples = [
    '<%= config.bin %> store finalize scout v3 --metadata dataset=news-2026 --metadata accuracy=0.91',
    '<%= config.bin %> store finalize scout v3 --metadata-file train.json --no-publish --store ./model-store',
  ]
  static args = {
    agent: Args.string({ description: 'agent name', required: true }),
    version: Args.string({ description: 'staged version name', required: true }),
  }
  static flags = {
    store: storeFlag,
    registry: registryFlag,
    capability: capabilityFlag,
    ...finalizeFlags,
    publish: Flags.boolean({ description: 'point current at the new version', default: true, allowNo: true }),
    'allow-empty': Flags.boolean({ description: 'publish a version that holds no files (refused otherwise, exit 4)' }),
  }

  async run(): Promise<FinalizeResult> {
    const { args, flags } = await this.parse(StoreFinalize)
    const metadata = parseMetadata(flags.metadata, flags['metadata-file'])
    const store = new ModelStore(resolveStore(flags.store))
    const capabilities = parseCapabilities(flags.capability ?? [])
    const manifest = Object.keys(capabilities).length > 0 ? { capabilities } : undefined
    const r = this.withWarnings(await recordStoreWrites({ store: store.root, url: flags.registry }, () => this.withProgress((progress) => store.finalize(args.agent, args.version, { metadata, manifest, publish: flags.publish, allowEmpty: flags['allow-empty'], legacyChecksum: flags['legacy-checksum'], progress }))))
    this.say(`Finalized ${r.agent}/${r.version}: ${r.files} files, ${formatBytes(r.bytes)}, ${checksums(r)}`)
    this.say(r.published ? `current -> ${r.version}${r.previous ? ` (was ${r.previous})` : ''}` : 'current unchanged (--no-publish)')
    return r
  }
}
