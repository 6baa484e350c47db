/**
 * What the registry says about a version, derived from what the store holds: its manifest and the small
 * JSON files beside it (config.json, generation_config.json). Nothing here is stored only in the registry,
 * so a registry is always rebuilt by a sync (docs/registry.md lists every key).
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { type LegacyManifest, type Manifest } from '../publish/manifest.js'

export interface ArtifactRow {
  path: string
  artifactType: string
  sha256: string
  sizeBytes: number
  cachePath: string
  sourceUri: string | null
}

export interface VersionFacts {
  capabilities: Record<string, unknown>
  metrics: Record<string, unknown>
  defaultParameters: Record<string, unknown>
  artifacts: ArtifactRow[]
  vendor: string | null
  description: string | null
}

const TOKENIZER_FILES = new Set(['tokenizer.json', 'tokenizer_config.json', 'vocab.txt', 'merges.txt', 'special_tokens_map.json', 'spiece.model', 'sentencepiece.bpe.model', 'vocab.json', 'added_tokens.json', 'tokenizer.model'])
const CONFIG_FILES = new Set(['config.json', 'generation_config.json', 'genai_config.json', 'modules.json', 'sentence_bert_config.json', 'engine.json'])

/** The artifact type of a file: the manifest's `artifacts[].kind` when it names the file, else by its name. */
export function artifactType(path: string, kinds: ReadonlyMap<string, string>): string {
  const known = kinds.get(path)
  if (known) return known
  const base = path.split('/').pop()!
  if (TOKENIZER_FILES.has(base)) return 'tokenizer'
  if (CONFIG_FILES.has(base)) return 'config'
  if (/\.onnx$/.test(base)) return 'onnx'
  if (/\.onnx[._]data$|\.onnx\.data$/.test(base)) return 'onnx-external-data'
  if (/\.(plan|engine|trt)$/.test(base)) return 'tensorrt-engine'
  if (/\.safetensors$/.test(base)) return 'safetensors'
  if (/\.(bin|pt|pth|ckpt)$/.test(base)) return 'pytorch'
  if (/\.(json|jsonl|txt|md|log)$/.test(base)) return 'metadata'
  return 'file'
}

function readJson(path: string): Record<string, unknown> | null {
  try {
    const v = JSON.parse(readFileSync(path, 'utf8')) as unknown
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null
  } catch {
    return null
  }
}

const obj = (v: unknown): Record<string, unknown> => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {})
const defined = (o: Record<string, unknown>): Record<string, unknown> => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined && v !== null))

/** Extreme values across validation outputs, so a search can sort on one number per version. */
function validationSummary(validation: Record<string, unknown>): Record<string, unknown> {
  const outputs = Array.isArray(validation.outputs) ? (validation.outputs as Record<string, unknown>[]) : []
  const nums = (k: string): number[] => outputs.map((o) => o[k]).filter((x): x is number => typeof x === 'number' && Number.isFinite(x))
  const cos = nums('cosine')
  const abs = nums('max_abs_err')
  return defined({
    ...validation,
    min_cosine: cos.length ? Math.min(...cos) : undefined,
    max_abs_err: abs.length ? Math.max(...abs) : undefined,
  })
}

export function deriveFacts(dir: string, manifest: Manifest | LegacyManifest, legacy: boolean): VersionFacts {
  const m = manifest as Partial<Manifest>
  const build = obj(m.build)
  const source = obj(m.source)
  const metadata = obj(m.metadata)
  const artifactsList = Array.isArray(m.artifacts) ? (m.artifacts as Record<string, unknown>[]) : []
  const kinds = new Map(artifactsList.filter((a) => typeof a.path === 'string' && typeof a.kind === 'string').map((a) => [a.path as string, a.kind as string]))
  const files = legacy ? [] : (m.files ?? [])
  const serve = artifactsList.find((a) => a.role === 'serve') ?? artifactsList[0]
  // Read only what the manifest lists (a legacy manifest lists nothing: try), so a sync of a thousand
  // versions does not pay two failed opens each.
  const has = (name: string): boolean => legacy || files.some((f) => f.path === name)
  const config = (has('config.json') ? readJson(join(dir, 'config.json')) : null) ?? {}
  const generation = has('generation_config.json') ? readJson(join(dir, 'generation_config.json')) : null

  const sourceFiles = new Set(Array.isArray(source.files) ? (source.files as { path?: string }[]).map((f) => f.path) : [])
  const repo = typeof source.repo === 'string' ? source.repo : undefined
  const commit = typeof source.commit === 'string' ? source.commit : undefined
  const artifacts: ArtifactRow[] = files.map((f) => ({
    path: f.path,
    artifactType: artifactType(f.path, kinds),
    sha256: f.sha256,
    sizeBytes: f.size,
    cachePath: join(dir, f.path),
    sourceUri: repo && commit && sourceFiles.has(f.path) ? `hf://${repo}@${commit}/${f.path}` : null,
  }))
  const types = [...new Set(artifacts.map((a) => a.artifactType))].sort()
  const id2label = obj(config.id2label)
  const architectures = Array.isArray(config.architectures) ? config.architectures : []
  const engine = artifactsList.find((a) => a.kind === 'tensorrt-engine')
  const maxSeq = [config.max_position_embeddings, config.n_positions, config.max_seq_length].find((v) => typeof v === 'number')

  const capabilities = defined({
    task: build.task ?? metadata.task,
    architecture: architectures[0],
    model_type: config.model_type,
    precision: serve?.precision ?? build.precision,
    target: build.target,
    artifact_types: types,
    max_sequence_length: maxSeq,
    labels: Object.keys(id2label).length ? Object.keys(id2label).sort((a, b) => Number(a) - Number(b)).map((k) => id2label[k]) : undefined,
    gpu_required: engine !== undefined,
    compute_capability: build.compute_capability ?? obj(engine?.gpu).compute_capability,
    tensorrt_version: build.tensorrt_version ?? engine?.tensorrt_version,
    size_bytes: legacy ? undefined : files.reduce((a, f) => a + f.size, 0),
    files: legacy ? undefined : files.length,
    source_repo: repo,
    // `--capability key=value` of finalize and build-engine, kept in the manifest: they win over derived keys.
    ...obj(m.capabilities),
  })
  const metrics = defined({
    validation: m.validation ? validationSummary(obj(m.validation)) : undefined,
    performance: m.performance ? obj(m.performance) : undefined,
    quantize: build.quantize ? obj(obj(build.quantize).accuracy) : undefined,
  })
  return {
    capabilities,
    metrics,
    defaultParameters: generation ?? {},
    artifacts,
    vendor: repo?.includes('/') ? repo.split('/')[0]! : null,
    description: typeof metadata.description === 'string' ? metadata.description : null,
  }
}
