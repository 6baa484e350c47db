/** build-engine (docs/build-engine.md): the pipeline that composes fetch, export, quantize, build and validate with the store. */
export { runBuildEngine, STEPS as BUILD_ENGINE_STEPS, type BuildEngineResult, type BuildEngineOptions, type Artifact, type StepTiming, type ValidationMetrics, type PerformanceMetrics } from './build-engine.js'
export { TARGETS, ONNX_PRECISIONS, type Target } from './options.js'
export { buildKey, buildKeyInputs, canonicalJson, BUILD_KEY_SCHEMA } from './build-key.js'
export { dateVersion, freeVersion } from './naming.js'
export { summaryMarkdown } from './summary.js'
