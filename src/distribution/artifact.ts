/**
 * A store version as an OCI artifact (image-spec 1.1), and the checks a pulled one must pass.
 *
 * Layout (docs/distribution.md): an image manifest with the CNCF ModelPack artifactType and config (model-spec
 * v1), one raw layer per file of the version (no tar: the layer digest is the file's sha256 that manifest.json
 * already holds, so nothing is hashed twice and a file shared by versions is stored once), its path in
 * `org.opencontainers.image.title` and `org.cncf.model.filepath`, and the version's manifest.json as the last
 * layer, of modelforge's own media type (ModelPack has no type for a packager's record of the version).
 * Everything in it comes from manifest.json, so pushing a version twice gives the same manifest digest.
 */
import { createHash } from 'node:crypto'
import { posix } from 'node:path'
import { IntegrityError } from '../lib/errors.js'
import { checksumFilesV1, filesChecksumOf, MANIFEST_NAME, parseManifest, type Manifest } from '../publish/manifest.js'

export const MEDIA_TYPES = {
  imageManifest: 'application/vnd.oci.image.manifest.v1+json',
  artifactType: 'application/vnd.cncf.model.manifest.v1+json',
  config: 'application/vnd.cncf.model.config.v1+json',
  weight: 'application/vnd.cncf.model.weight.v1.raw',
  weightConfig: 'application/vnd.cncf.model.weight.config.v1.raw',
  doc: 'application/vnd.cncf.model.doc.v1.raw',
  code: 'application/vnd.cncf.model.code.v1.raw',
  versionManifest: 'application/vnd.modelforge.version.manifest.v1+json',
} as const

export const TITLE = 'org.opencontainers.image.title'
export const FILEPATH = 'org.cncf.model.filepath'

export interface Descriptor {
  mediaType: string
  digest: string
  size: number
  annotations?: Record<string, string>
}

export interface ImageManifest {
  schemaVersion: 2
  mediaType: string
  artifactType?: string
  config: Descriptor
  layers: Descriptor[]
  annotations?: Record<string, string>
}

/** ModelPack's layer type for a file of a version, by its name. */
export function layerMediaType(path: string): string {
  const base = posix.basename(path).toLowerCase()
  if (/\.(onnx|onnx\.data|onnx_data|plan|engine|trt|safetensors|bin|pt|pth|ckpt|gguf)$/.test(base)) return MEDIA_TYPES.weight
  if (/\.py$/.test(base)) return MEDIA_TYPES.code
  if (/\.(md|log)$/.test(base) || /^(license|readme|notice)(\..*)?$/.test(base)) return MEDIA_TYPES.doc
  return MEDIA_TYPES.weightConfig
}

const sha = (bytes: Buffer | string): string => `sha256:${createHash('sha256').update(bytes).digest('hex')}`
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : typeof v === 'number' ? String(v) : undefined)

function defined(o: Record<string, string | undefined>): Record<string, string> {
  return Object.fromEntries(Object.entries(o).filter((e): e is [string, string] => e[1] !== undefined))
}

export interface BuiltArtifact {
  manifest: ImageManifest
  manifestBytes: Buffer
  digest: string
  config: Buffer
  /** manifest.json of the version, as stored (the last layer). */
  versionManifest: Buffer
}

/** The OCI artifact of a version, from its manifest.json bytes alone. */
export function buildArtifact(versionManifest: Buffer, m: Manifest): BuiltArtifact {
  const serving = (m.artifacts ?? []).find((a) => a.role === 'serve') ?? m.artifacts?.[0]
  const build = m.build ?? {}
  const source = m.source ?? {}
  const precision = str(serving?.precision) ?? str(build.precision)
  const gpu = (serving?.gpu ?? {}) as Record<string, unknown>
  const files = [...m.files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
  const layers: Descriptor[] = files.map((f) => ({
    mediaType: layerMediaType(f.path),
    digest: `sha256:${f.sha256}`,
    size: f.size,
    annotations: { [FILEPATH]: f.path, [TITLE]: f.path },
  }))
  layers.push({ mediaType: MEDIA_TYPES.versionManifest, digest: sha(versionManifest), size: versionManifest.length, annotations: { [TITLE]: MANIFEST_NAME } })
  const format = files.some((f) => /\.(plan|engine|trt)$/.test(f.path)) ? 'tensorrt' : files.some((f) => f.path.endsWith('.onnx')) ? 'onnx' : undefined
  const config = Buffer.from(JSON.stringify({
    descriptor: defined({ createdAt: m.created_at, name: m.agent, version: m.version, revision: str(source.commit), sourceURL: str(source.repo) ? `https://huggingface.co/${str(source.repo)}` : undefined }),
    modelfs: { type: 'layers', diffIds: layers.slice(0, -1).map((l) => l.digest) },
    config: defined({ format, precision }),
  }))
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.imageManifest,
    artifactType: MEDIA_TYPES.artifactType,
    config: { mediaType: MEDIA_TYPES.config, digest: sha(config), size: config.length },
    layers,
    annotations: defined({
      'org.opencontainers.image.created': m.created_at,
      'org.opencontainers.image.version': m.version,
      'io.modelforge.agent': m.agent,
      'io.modelforge.version': m.version,
      'io.modelforge.checksum': `${m.checksum_algorithm}:${m.checksum}`,
      'io.modelforge.source.repo': str(source.repo),
      'io.modelforge.source.commit': str(source.commit),
      'io.modelforge.precision': precision,
      'io.modelforge.compute-capability': str(build.compute_capability) ?? str(gpu.compute_capability),
      'io.modelforge.tensorrt-version': str(build.tensorrt_version) ?? str(serving?.tensorrt_version),
    }),
  }
  const manifestBytes = Buffer.from(JSON.stringify(manifest))
  return { manifest, manifestBytes, digest: sha(manifestBytes), config, versionManifest }
}

function refuse(what: string, why: string, details: Record<string, unknown> = {}): IntegrityError {
  return new IntegrityError(`${what} is not a modelforge artifact that can be pulled: ${why}`, {
    code: 'OCI_ARTIFACT_INVALID',
    hint: 'Nothing was written to the store. Push versions with modelforge store push; check the reference.',
    details,
  })
}

/**
 * Why a layer path cannot be a file of a version, or null: the store's file-name rules (relative, no `.` or
 * `..` or empty segment, no NUL, CR, LF or backslash, not the version's own manifest.json).
 */
export function layerPathProblem(path: unknown): string | null {
  if (typeof path !== 'string' || path === '') return 'no title'
  if (path.length > 4096) return 'a path over 4096 characters'
  if (/[\0\r\n\\]/.test(path)) return 'a NUL, carriage return, newline or backslash'
  if (path.startsWith('/')) return 'an absolute path'
  if (path.split('/').some((s) => s === '' || s === '.' || s === '..')) return 'an empty, . or .. segment'
  if (path === MANIFEST_NAME) return 'the name of the version\'s own manifest.json'
  return null
}

export interface PulledLayout {
  manifest: ImageManifest
  /** The version's files, as the layers declare them. */
  files: { path: string; digest: string; sha256: string; size: number }[]
  versionManifestLayer: Descriptor
}

/** Checks an OCI manifest's shape and every layer before anything is downloaded. */
export function checkArtifact(bytes: Buffer, what: string): PulledLayout {
  let m: ImageManifest
  try {
    m = JSON.parse(bytes.toString('utf8')) as ImageManifest
  } catch (err) {
    throw refuse(what, `its manifest is not JSON (${(err as Error).message})`)
  }
  if (m === null || typeof m !== 'object' || m.schemaVersion !== 2 || m.mediaType !== MEDIA_TYPES.imageManifest) throw refuse(what, `it is not an OCI image manifest (mediaType ${JSON.stringify((m as { mediaType?: unknown })?.mediaType)})`)
  if (!Array.isArray(m.layers)) throw refuse(what, 'it has no layers')
  const digestOk = (d: unknown): d is string => typeof d === 'string' && /^sha256:[0-9a-f]{64}$/.test(d)
  const sizeOk = (n: unknown): n is number => Number.isSafeInteger(n) && (n as number) >= 0
  const manifests = m.layers.filter((l) => l?.mediaType === MEDIA_TYPES.versionManifest)
  if (manifests.length !== 1) throw refuse(what, `it holds ${manifests.length} layers of type ${MEDIA_TYPES.versionManifest}, not one`)
  const versionManifestLayer = manifests[0]!
  if (!digestOk(versionManifestLayer.digest) || !sizeOk(versionManifestLayer.size) || versionManifestLayer.size > 16 * 1024 * 1024) throw refuse(what, 'its manifest.json layer has a bad digest or size')
  const files: PulledLayout['files'] = []
  const seen = new Set<string>()
  for (const l of m.layers) {
    if (l === versionManifestLayer) continue
    const path = l?.annotations?.[TITLE] ?? l?.annotations?.[FILEPATH]
    const problem = layerPathProblem(path)
    if (problem) throw refuse(what, `a layer's path ${JSON.stringify(path ?? null)} has ${problem}`, { path })
    const p = path as string
    if (seen.has(p)) throw refuse(what, `two layers are titled ${JSON.stringify(p)}`, { path: p })
    seen.add(p)
    if (!digestOk(l.digest)) throw refuse(what, `the layer ${JSON.stringify(p)} has a digest that is not sha256:<64 hex>`, { path: p })
    if (!sizeOk(l.size)) throw refuse(what, `the layer ${JSON.stringify(p)} declares a size that is not a whole number of bytes`, { path: p })
    files.push({ path: p, digest: l.digest, sha256: l.digest.slice('sha256:'.length), size: l.size })
  }
  // A file may not also be a directory of another (a and a/b): the tree could not hold both.
  for (const p of seen) {
    for (let i = p.indexOf('/'); i > 0; i = p.indexOf('/', i + 1)) {
      if (seen.has(p.slice(0, i))) throw refuse(what, `${JSON.stringify(p.slice(0, i))} is both a file and a directory of ${JSON.stringify(p)}`, { path: p })
    }
  }
  return { manifest: m, files, versionManifestLayer }
}

/** The manifest.json carried inside must list exactly the layers' files and digests, and its checksum must be theirs. */
export function checkVersionManifest(bytes: Buffer, layout: PulledLayout, what: string): Manifest {
  let parsed
  try {
    parsed = parseManifest(JSON.parse(bytes.toString('utf8')), `${what} manifest.json`)
  } catch (err) {
    throw refuse(what, `its manifest.json cannot be read (${(err as Error).message})`)
  }
  if (parsed.kind !== 'v1') throw refuse(what, 'its manifest.json is a legacy one, without the files list')
  const m = parsed.manifest
  const key = (f: { path: string; sha256: string; size: number }): string => `${f.path}\0${f.sha256}\0${f.size}`
  const declared = new Set(layout.files.map(key))
  const listed = new Set(m.files.map(key))
  const missing = m.files.filter((f) => !declared.has(key(f))).map((f) => f.path)
  const extra = layout.files.filter((f) => !listed.has(key(f))).map((f) => f.path)
  if (missing.length > 0 || extra.length > 0 || m.files.length !== layout.files.length) {
    throw refuse(what, `its manifest.json and its layers disagree${missing.length ? `; listed without a matching layer: ${missing.join(', ')}` : ''}${extra.length ? `; layers it does not list: ${extra.join(', ')}` : ''}`, { missing, extra })
  }
  if (checksumFilesV1(layout.files) !== filesChecksumOf(m)) throw refuse(what, 'the checksum of its manifest.json is not that of its files')
  return m
}
