/** What services call to read the store (docs/readers.md). */
export { resolveCurrent, type ReaderOptions } from './resolve.js'
export { openSession, servedOnnx, type OpenSessionOptions, type ModelSession } from './session.js'
export { checkEngine, assertEngineFits, type CheckEngineOptions, type EngineCheck } from './check-engine.js'
