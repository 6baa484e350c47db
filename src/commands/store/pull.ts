import { Args, Flags } from '@oclif/core'
import { BaseCommand, registryFlag, resolveStore, storeFlag } from '../../lib/base-command.js'
import { formatBytes } from '../../lib/progress.js'
import { pullToStore, type NodePullResult } from '../../distribution/index.js'

export default class StorePull extends BaseCommand {
  static summary = 'Pull a version from an OCI registry into the store, verified, by digest'
  static description = `The tag is resolved to a digest once; everything after is by digest. The artifact is checked before
anything is downloaded (layer paths by the store's file-name rules, sizes, digests, and the manifest.json
it carries, which must list exactly its layers). Blobs are downloaded into the store's
.modelforge/pulls/<digest>/, each checked against its size and sha256; a pull that was cut or killed
continues from the bytes it has. The version is then finalized, unpublished, and its checksum must be
the pushed one; only then does --publish move current (or --channel). A version the store has already,
with the same files, is verified and left as it is.

With a model registry (--registry, MODELFORGE_REGISTRY_URL or the embedded one), the node (--node,
default the hostname) is recorded as loading, then available or failed, and the registry is synced.

Exit codes: 2 a bad reference or name; 3 the registry unreachable, failing or refusing the credentials;
4 an artifact that is not a modelforge version, or a blob whose bytes are not the declared ones (nothing
is published); 5 the store holds that version with other files, or another pull of it is running; 6 no
such repository or tag; 7 a registry the policy does not allow. See docs/distribution.md.`
  static examples = [
    '<%= config.bin %> store pull registry.internal:5000/models/scout:v3 --publish',
    '<%= config.bin %> store pull registry.internal:5000/models/scout@sha256:4f1c...e9 --channel production --publish --node gpu-07',
    '<%= config.bin %> store pull localhost:5000/models/scout:v3 --agent scout-canary --version v3 --store /srv/model-store --json',
  ]
  static args = {
    ref: Args.string({ description: 'host[:port]/repository:tag or host[:port]/repository@sha256:<digest>', required: true }),
  }
  static flags = {
    store: storeFlag,
    registry: registryFlag,
    agent: Flags.string({ description: 'agent to pull into [default: the pushed agent]', helpValue: '<agent>' }),
    version: Flags.string({ description: 'version name to pull as [default: the pushed version]', helpValue: '<version>' }),
    publish: Flags.boolean({ description: 'point current (or --channel) at the pulled version' }),
    channel: Flags.string({ description: 'channel --publish moves instead of current', helpValue: '<channel>' }),
    node: Flags.string({ description: 'node id the model registry records availability for [default: the hostname]', helpValue: '<id>' }),
    'plain-http': Flags.boolean({ description: 'talk HTTP rather than HTTPS to a registry that is not on the loopback' }),
  }

  async run(): Promise<NodePullResult> {
    const { args, flags } = await this.parse(StorePull)
    const r = this.withWarnings(await this.withProgress((progress) => pullToStore({ store: resolveStore(flags.store), url: flags.registry }, args.ref, {
      agent: flags.agent, version: flags.version, publish: flags.publish, channel: flags.channel,
      node: flags.node, plainHttp: flags['plain-http'], progress,
    })))
    this.say(r.unchanged ? `${r.agent}/${r.version} is in the store already, intact (${r.pinned})` : `Pulled ${r.pinned} as ${r.agent}/${r.version}: ${r.files} files, ${formatBytes(r.bytes)} (${formatBytes(r.bytesDownloaded)} downloaded${r.blobsResumed ? `, ${r.blobsResumed} blobs resumed` : ''})`)
    if (r.channel) this.say(`${r.channel} -> ${r.version}${r.previous ? ` (was ${r.previous})` : ''}`)
    return r
  }
}
