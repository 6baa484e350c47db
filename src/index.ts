/**
 * The modelforge library API. Commands are thin wrappers over these; services import them directly.
 */
export * from './lib/errors.js'
export { storeRoot, strictStore, hubCacheDir, loadConfig, type ModelforgeConfig } from './lib/env.js'
export * as onnx from './onnx/index.js'
export { resolveCachedSnapshot, resolveCachedCommit, repoCache, type ResolveCachedOptions } from './hub/index.js'
export { ModelStore, assertVerified, currentHistory } from './publish/store.js'
export type { StoreOptions, FinalizeOptions, FinalizeResult, ChannelChange, VerifyReport, VerifyProblem, VersionInfo, AgentSummary, PruneResult, GcResult, ManifestExtras } from './publish/store.js'
export { resolveCurrent, resolveChannel, type ResolvedChannel } from './publish/current.js'
export { validateName, nameProblem } from './publish/names.js'
export { checksumFilesV1, legacyChecksum, readManifest, parseManifest, sha256sumText, MANIFEST_SCHEMA, CHECKSUM_ALGORITHM, type Manifest, type LegacyManifest, type ManifestFile } from './publish/manifest.js'
export { hashFiles, hashFile } from './publish/hash.js'
export { exportModel, EXPORTERS, type Exporter, type ExportOptions, type ExportResult, type ExportedFile } from './onnx/export/index.js'
export { openCheckpoint, readSafetensorsHeader, parseSafetensorsHeader, writeSafetensors, SafetensorsCheckpoint, f16ToF32, bf16ToF32, type TensorInfo, type SafetensorsHeader } from './onnx/safetensors.js'
export { externalDataFiles, externalDataRefs, readExternalTensor, inlineExternalData, type ExternalDataRef } from './onnx/external-data.js'
