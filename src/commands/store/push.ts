import { Args, Flags } from '@oclif/core'
import { BaseCommand, registryFlag, resolveStore, storeFlag } from '../../lib/base-command.js'
import { formatBytes } from '../../lib/progress.js'
import { pushFromStore, type PushResult } from '../../distribution/index.js'

export default class StorePush extends BaseCommand {
  static summary = 'Push a finalized version to an OCI registry, as an artifact nodes pull by digest'
  static description = `The version becomes an OCI artifact (image-spec 1.1, CNCF ModelPack media types): one raw layer per
file, whose digest is the file's sha256 from manifest.json, and manifest.json itself as the last layer.
Pushing the same version twice gives the same manifest digest. Blobs the registry has are skipped (HEAD),
blobs this store pushed to another repository of the registry are mounted, the others are uploaded (in
chunks above 32 MiB, resumed after a broken connection), and the manifest is written last.

REF is host[:port]/repository[:tag] (the tag defaults to the version name). TLS, except towards localhost
or 127.0.0.1, or with --plain-http. Credentials: MODELFORGE_OCI_USERNAME and MODELFORGE_OCI_PASSWORD, else
~/.docker/config.json as docker login writes it; never printed. distribution.allowedRegistries
(MODELFORGE_CONFIG or the model registry's preferences) is checked before any request.

Exit codes: 2 a bad reference; 3 the registry unreachable, failing or refusing the credentials; 4 a file
whose bytes the registry refused (run store verify); 6 no such agent or version; 7 a registry the policy
does not allow. See docs/distribution.md.`
  static examples = [
    '<%= config.bin %> store push scout v3 registry.internal:5000/models/scout',
    '<%= config.bin %> store push scout v3 localhost:5000/models/scout:stable --store ./model-store --json',
    '<%= config.bin %> store push scout v3 build-cache:5000/models/scout --plain-http',
  ]
  static args = {
    agent: Args.string({ description: 'agent name', required: true }),
    version: Args.string({ description: 'finalized version', required: true }),
    ref: Args.string({ description: 'host[:port]/repository[:tag]', required: true }),
  }
  static flags = {
    store: storeFlag,
    registry: registryFlag,
    'plain-http': Flags.boolean({ description: 'talk HTTP rather than HTTPS to a registry that is not on the loopback' }),
  }

  async run(): Promise<PushResult> {
    const { args, flags } = await this.parse(StorePush)
    const r = this.withWarnings(await this.withProgress((progress) => pushFromStore({ store: resolveStore(flags.store), url: flags.registry }, args.agent, args.version, args.ref, { plainHttp: flags['plain-http'], progress })))
    this.say(`Pushed ${r.agent}/${r.version} to ${r.ref}`)
    this.say(`  ${r.pinned}`)
    this.say(`  ${r.blobs} blobs: ${r.uploaded} uploaded (${formatBytes(r.bytesUploaded)}), ${r.present} already there, ${r.mounted} mounted`)
    return r
  }
}
