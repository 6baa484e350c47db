import { Args, Flags } from '@oclif/core'
import { BaseCommand, registryFlag, resolveStore } from '../lib/base-command.js'
import { fetchPolicy } from '../registry/index.js'
import { formatBytes } from '../lib/progress.js'
import { fetchModel, type FetchResult } from '../hub/fetch.js'

export default class Fetch extends BaseCommand {
  static summary = 'Bring a Hugging Face model repository into the local HF cache, offline-first'
  static description = [
    'Resolves the revision from the cache first: when every wanted file is already there, no request is made. Otherwise resolves the revision to a commit once, lists its files, downloads what is missing (resumed with HTTP Range after an interruption), verifies size and hash (sha256 for LFS files, git blob sha1 for the others) and only then links the snapshot and writes refs/ and trees/.',
    "The cache is the Hugging Face layout, shared with Python's huggingface_hub. A local directory is used as is.",
    'From the cache, an LFS file\'s sha256 is the one its listing gives (sha256From "listing"); --verify re-hashes every file of the result and exits 4 naming any that no longer matches. A cached file of the wrong size, or a ref that holds no commit, is reported as damaged (exit 4), not as missing.',
    'Exit codes: 2 invalid repo id, revision, token, HF_ENDPOINT or flags, or a cache directory that is a file, 3 network or Hub failure, 4 integrity failure (a download, a damaged cache file or ref), 5 a blob locked by another fetch for too long, 6 not cached while offline or not found on the Hub, 7 refused by policy (MODELFORGE_CONFIG). See docs/fetch.md.',
  ].join('\n\n')
  static examples = [
    '<%= config.bin %> fetch sentence-transformers/all-MiniLM-L6-v2',
    '<%= config.bin %> fetch google-bert/bert-base-uncased --revision main --include "*.json" --include "*.safetensors" --json',
    '<%= config.bin %> fetch Xenova/bert-base-uncased --include "onnx/model.onnx" --include "*.json" --exclude "onnx/*_fp16.onnx"',
    'HF_HUB_OFFLINE=1 <%= config.bin %> fetch org/name --revision v1.0 --cache-dir /models/hf',
    'HF_HUB_OFFLINE=1 <%= config.bin %> fetch org/name --verify',
  ]
  static args = {
    model: Args.string({ description: 'repo id (org/name) on the Hub, or a local model directory', required: true }),
  }
  static flags = {
    revision: Flags.string({ description: 'branch, tag or 40-hex commit (an abbreviated commit resolves from the cache) [default: main]' }),
    include: Flags.string({
      description: 'glob of files to fetch (repeatable); replaces the default set of config, tokenizer, weights and ONNX files; an included .onnx brings its external data',
      multiple: true,
    }),
    exclude: Flags.string({ description: 'glob of files to leave out (repeatable)', multiple: true }),
    offline: Flags.boolean({ description: 'never touch the network (also HF_HUB_OFFLINE=1); exit 6 if the cache cannot satisfy the request', default: false }),
    refresh: Flags.boolean({ description: "ask the Hub for the revision's current commit even if the cache knows one", default: false }),
    'cache-dir': Flags.string({ description: 'Hugging Face cache [default: $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub]', helpValue: '<dir>' }),
    token: Flags.string({ description: 'Hub access token [default: $HF_TOKEN]; never printed', helpValue: '<token>' }),
    yes: Flags.boolean({ description: 'approve the download when the policy (download.requireApproval) asks for it', default: false }),
    store: Flags.string({ description: 'model store whose model registry holds the policy (download.allowedSources, download.requireApproval) over MODELFORGE_CONFIG, when it has one [default: $MODEL_STORE_ROOT, else ./model-store]', helpValue: '<dir>' }),
    registry: registryFlag,
    verify: Flags.boolean({ description: 're-hash every file of the result from the cache (sha256, git blob sha1) and exit 4 naming any that no longer matches', default: false }),
  }

  async run(): Promise<FetchResult> {
    const { args, flags } = await this.parse(Fetch)
    const config = await fetchPolicy({ store: resolveStore(flags.store), url: flags.registry })
    const result = this.withWarnings(await this.withProgress((progress) => fetchModel(args.model, {
      config,
      revision: flags.revision,
      include: flags.include,
      exclude: flags.exclude,
      offline: flags.offline || undefined,
      refresh: flags.refresh,
      cacheDir: flags['cache-dir'],
      token: flags.token,
      approved: flags.yes,
      verify: flags.verify,
      progress,
    })))
    if (result.source === 'local') {
      this.say(`Local model directory ${result.snapshot}: ${result.files.length} files, nothing fetched`)
      return result
    }
    const how = result.fromCache
      ? 'from the cache, no request made'
      : `${formatBytes(result.bytesDownloaded)} downloaded${result.bytesResumed ? ` (${formatBytes(result.bytesResumed)} resumed)` : ''}, ${result.requests} requests`
    this.say(`${result.repo}@${result.revision} -> ${result.commit} (${how})`)
    this.say(`snapshot: ${result.snapshot}`)
    for (const f of result.files) this.say(`  ${f.path}  ${formatBytes(f.size)}  ${f.hashAlgorithm === 'sha256' ? 'sha256' : 'sha1'}:${f.blob}${f.fromCache ? '' : '  (new)'}`)
    if (result.verified) this.say(`${result.files.length} files re-hashed from the cache: every one matches its ${result.files.some((f) => f.hashAlgorithm === 'git-sha1') ? 'sha256 or git blob sha1' : 'sha256'}`)
    return result
  }
}
