import { Args, Flags } from '@oclif/core'
import { BaseCommand, finalizeFlags, resolveStore, storeFlag, registryFlag } from '../../lib/base-command.js'
import { recordStoreWrites } from '../../registry/index.js'
import { formatBytes } from '../../lib/progress.js'
import { checksums } from '../../publish/manifest.js'
import { parseMetadata } from '../../publish/options.js'
import { ModelStore, type ImportResult } from '../../publish/store.js'

export default class StoreImport extends BaseCommand {
  static summary = 'Copy a directory or files into a new version, finalize it and publish it, in one step'
  static description = `A directory becomes the version's tree; one or more files become files at its top level. The source is
checked first (it is never written): symlinks, fifos, devices, sockets and a top-level manifest.json are
refused as finalize refuses them, and two files of the same name too. Then it is copied into the staging
directory (reflinks where the filesystem can clone; hard links with --link where the OS allows, copies
elsewhere) and finalized exactly as \`store finalize\` does. It is published to current, or to --channel,
unless --no-publish is given. A failure at any step leaves no version and no staging directory.

With --link, a file that already is as read-only as a version's files (no write bits, readable as the
store grants, of the store's group: \`chmod -R a=rX\`) is the source file itself: finalize leaves it as it
is, and its owner writing into it in place afterwards changes the published version (see docs/store.md).
Any other file is copied: making it read-only in the version would change the source's mode.

Exit codes: 0 imported; 2 a bad name, flag or source list (a directory with other sources, two files of
one name); 3 a full disk or an I/O error; 4 a symlink, fifo, device, socket, bad file name or top-level
manifest.json in the source, or a channel that is no link; 5 the version exists or is being staged, or
another writer holds the lock; 6 a source that does not exist; 7 permission denied or a read-only store.`
  static examples = [
    '<%= config.bin %> store import scout v4 ./export/scout --metadata dataset=news-2026',
    '<%= config.bin %> store import scout v4 model.onnx config.json --channel staging --store ./model-store',
    '<%= config.bin %> store import scout v4 /data/exports/scout --link --no-publish --metadata-file train.json',
  ]
  static args = {
    agent: Args.string({ description: 'agent name', required: true }),
    version: Args.string({ description: 'new version name', required: true }),
    source: Args.string({ description: 'a directory (the version\'s tree), or files (its top level)', required: true, multiple: true }),
  }
  static flags = {
    store: storeFlag,
    registry: registryFlag,
    link: Flags.boolean({ description: 'hard-link the files that are read-only already instead of copying them, where the OS allows (same filesystem); copy the others' }),
    ...finalizeFlags,
    publish: Flags.boolean({ description: 'point current (or --channel) at the new version', default: true, allowNo: true }),
    channel: Flags.string({ description: 'channel to publish to instead of current', helpValue: '<channel>' }),
  }

  async run(): Promise<ImportResult> {
    const { args, flags } = await this.parse(StoreImport)
    const metadata = parseMetadata(flags.metadata, flags['metadata-file'])
    const store = new ModelStore(resolveStore(flags.store))
    const r = this.withWarnings(await recordStoreWrites({ store: store.root, url: flags.registry }, () => this.withProgress((progress) => store.import(args.agent, args.version, args.source, {
      link: flags.link, metadata, publish: flags.publish, channel: flags.channel, legacyChecksum: flags['legacy-checksum'], progress,
    }))))
    const how = [[r.linked, 'hard-linked'], [r.reflinked, 'cloned'], [r.copied, 'copied']].filter(([n]) => Number(n) > 0).map(([n, w]) => `${n} ${w}`).join(', ')
    this.say(`Imported ${r.agent}/${r.version}: ${r.files} files${how ? ` (${how})` : ''}, ${formatBytes(r.bytes)}, ${checksums(r)}`)
    this.say(r.channel ? `${r.channel} -> ${r.version}${r.previous ? ` (was ${r.previous})` : ''}` : 'current unchanged (--no-publish)')
    return r
  }
}
