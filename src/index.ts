/**
 * The modelforge library API. Commands are thin wrappers over these; services import them directly.
 */
export * from './lib/errors.js'
export { storeRoot, strictStore, hubCacheDir, loadConfig, type ModelforgeConfig } from './lib/env.js'
export * as onnx from './onnx/index.js'
export { resolveCachedSnapshot, resolveCachedCommit, repoCache, type ResolveCachedOptions } from './hub/index.js'
