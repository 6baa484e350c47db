import { Flags } from '@oclif/core'
import { BaseCommand, registryFlag, resolveStore, storeFlag } from '../../lib/base-command.js'
import { parseCapabilities, searchVersions, withRegistry, type VersionRow } from '../../registry/index.js'

export default class RegistrySearch extends BaseCommand {
  static summary = 'Versions by capability, alias, file hash, artifact type or node, sorted by a metric'
  static description = `--capability key=value is repeatable and matches by jsonb containment: every pair must be in the version's capabilities (values that read as JSON are JSON: gpu_required=false, max_sequence_length=512; dotted keys nest). Versions gone from the store are left out unless --include-gone. Exit 2 for a malformed flag, 6 when the store has no registry. See docs/registry.md.`
  static examples = [
    '<%= config.bin %> registry search --capability task=text-classification --capability precision=fp16 --sort performance.throughput_qps',
    '<%= config.bin %> registry search --alias production --json',
    '<%= config.bin %> registry search --sha256 9f2c...e1 --include-gone',
    '<%= config.bin %> registry search --artifact-type tensorrt-engine --available-on gpu-node-7 --limit 5',
  ]
  static flags = {
    store: storeFlag,
    registry: registryFlag,
    capability: Flags.string({ description: 'key=value the capabilities must contain (repeatable)', multiple: true, helpValue: '<key=value>' }),
    agent: Flags.string({ description: 'only this agent' }),
    alias: Flags.string({ description: 'versions this alias (channel) points to, e.g. production' }),
    sha256: Flags.string({ description: 'versions holding a file with this SHA-256' }),
    'artifact-type': Flags.string({ description: 'versions holding an artifact of this type (onnx, tensorrt-engine, safetensors, tokenizer, config, ...)' }),
    'available-on': Flags.string({ description: 'versions a node reports available', helpValue: '<node>' }),
    sort: Flags.string({ description: 'dotted path of a metric to sort on, e.g. performance.throughput_qps or validation.min_cosine', helpValue: '<metric path>' }),
    order: Flags.string({ description: 'sort order', options: ['desc', 'asc'], default: 'desc' }),
    limit: Flags.integer({ description: 'at most this many versions', default: 50, min: 1 }),
    'include-gone': Flags.boolean({ description: 'include versions gone from the store', default: false }),
  }

  async run(): Promise<{ versions: VersionRow[] }> {
    const { flags } = await this.parse(RegistrySearch)
    const capabilities = parseCapabilities(flags.capability ?? [])
    const versions = await withRegistry({ store: resolveStore(flags.store), url: flags.registry }, (db) => searchVersions(db, {
      capabilities,
      agent: flags.agent,
      alias: flags.alias,
      sha256: flags.sha256,
      artifactType: flags['artifact-type'],
      availableOn: flags['available-on'],
      sort: flags.sort,
      order: flags.order as 'asc' | 'desc',
      limit: flags.limit,
      includeGone: flags['include-gone'],
    }))
    if (versions.length === 0) this.say('No version matches')
    for (const v of versions) {
      const sort = v.sortValue !== undefined ? `  ${flags.sort}=${v.sortValue ?? '-'}` : ''
      this.say(`${v.agent} ${v.version}${v.aliases.length ? `  [${v.aliases.join(', ')}]` : ''}${v.state === 'gone' ? '  gone' : ''}${sort}`)
    }
    return { versions }
  }
}
