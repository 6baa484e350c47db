/**
 * openSession: what a service calls at start-up to get its model. It resolves `current` once (the version
 * directory never changes under it), picks the ONNX file the version serves, and opens an onnxruntime
 * session on it. In development, with strict mode off and nothing published, it can fall back to a model
 * in the Hugging Face cache: offline only, this module never touches the network.
 *
 * Which file: the manifest's artifact with kind onnx and role serve (build-engine's onnx target), else
 * model.onnx (a trt version's fp32 model, a toy-store or Python-made version).
 */
import { existsSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { hubCacheDir, storeRoot, strictStore } from '../lib/env.js'
import { IntegrityError, NotFoundError } from '../lib/errors.js'
import { resolveCachedSnapshot } from '../hub/cache.js'
import { readManifest, type LegacyManifest, type Manifest } from '../publish/manifest.js'
import { closeModel, loadModel, runModel, type LoadedModel, type LoadOptions, type ValueInfo } from '../validate/runtime.js'
import type { TensorMap } from '../validate/tensors.js'
import { resolveCurrent, type ReaderOptions } from './resolve.js'

export interface OpenSessionOptions extends ReaderOptions {
  /** A repo id whose cached snapshot is used when the store has no version for the agent (strict off only). */
  fallbackModelId?: string
  /** The fallback's revision (default main). */
  revision?: string
  /** The HF cache of the fallback (default HF_HUB_CACHE, HF_HOME/hub, ~/.cache/huggingface/hub). */
  cacheDir?: string
  /** A file of the version to load instead of the one it serves (e.g. 'fp32/model.onnx'). */
  artifact?: string
  /** onnxruntime session options (execution providers, threads). */
  sessionOptions?: LoadOptions['sessionOptions']
}

export interface ModelSession {
  agent: string
  /** store: a published version; hf-cache: the fallback model. */
  source: 'store' | 'hf-cache'
  /** The version directory (or the HF snapshot directory): read side files (tokenizer, config) from here. */
  dir: string
  version: string | null
  /** The .onnx file loaded. */
  model: string
  manifest: Manifest | LegacyManifest | null
  /** The onnxruntime InferenceSession itself. */
  session: LoadedModel['session']
  inputs: ValueInfo[]
  outputs: ValueInfo[]
  run(feeds: TensorMap, outputNames?: string[]): Promise<TensorMap>
  close(): Promise<void>
}

/** The file a version serves to onnxruntime. */
export function servedOnnx(manifest: Manifest | LegacyManifest | null): string {
  const artifacts = Array.isArray(manifest?.artifacts) ? (manifest.artifacts as { path?: unknown; kind?: unknown; role?: unknown }[]) : []
  const serve = artifacts.find((a) => a.kind === 'onnx' && a.role === 'serve' && typeof a.path === 'string')
  return (serve?.path as string | undefined) ?? 'model.onnx'
}

async function open(agent: string, source: ModelSession['source'], dir: string, version: string | null, model: string, manifest: ModelSession['manifest'], o: OpenSessionOptions): Promise<ModelSession> {
  const loaded = await loadModel(model, o.sessionOptions ? { sessionOptions: o.sessionOptions } : {})
  return {
    agent, source, dir, version, model, manifest,
    session: loaded.session, inputs: loaded.inputs, outputs: loaded.outputs,
    run: (feeds, names) => runModel(loaded, feeds, names),
    close: () => closeModel(loaded),
  }
}

export async function openSession(agent: string, options: OpenSessionOptions = {}): Promise<ModelSession> {
  const strict = options.strict ?? strictStore()
  const resolved = resolveCurrent(agent, { ...options, strict })
  if (resolved) {
    const manifest = (await readManifest(resolved.path)).manifest
    const rel = options.artifact ?? servedOnnx(manifest)
    const model = resolve(resolved.path, rel)
    if (!model.startsWith(resolved.path + '/') || !existsSync(model)) {
      throw new IntegrityError(`${agent} ${resolved.version ?? resolved.channel} has no ${rel} (${resolved.path})`, {
        code: 'ARTIFACT_MISSING',
        hint: options.artifact ? `Name a file of the version (see \`modelforge store show ${agent}\`).` : `The version is damaged: run \`modelforge store verify ${agent}\` and publish a new version.`,
        details: { agent, version: resolved.version, path: model },
      })
    }
    return open(agent, 'store', resolved.path, resolved.version, model, manifest, options)
  }
  // Only "nothing published" falls back: a damaged store threw above (resolveChannel's integrity errors).
  if (!options.fallbackModelId) {
    throw new NotFoundError(`No published version of ${agent} in ${resolve(options.root ?? storeRoot())}`, {
      code: 'MODEL_UNAVAILABLE',
      hint: `Publish one with \`modelforge build-engine --agent ${agent} --model-id <repo|dir>\`, or give fallbackModelId (a model in the HF cache) for development.`,
      details: { agent },
    })
  }
  const cacheDir = options.cacheDir ?? hubCacheDir()
  const snapshot = await resolveCachedSnapshot(options.fallbackModelId, { revision: options.revision, cacheDir })
  const model = ['model.onnx', 'onnx/model.onnx'].map((f) => join(snapshot, f)).find((f) => existsSync(f))
  if (!model) {
    throw new NotFoundError(`${options.fallbackModelId} is in the HF cache (${snapshot}) but holds no model.onnx or onnx/model.onnx`, {
      code: 'FALLBACK_NO_ONNX',
      hint: 'Fetch a repo that ships an ONNX export, or publish a version with `modelforge build-engine`.',
      details: { repo: options.fallbackModelId, snapshot },
    })
  }
  return open(agent, 'hf-cache', snapshot, null, model, null, options)
}
