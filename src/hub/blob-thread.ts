/**
 * Runs downloadBlob for a large file in a worker thread. Measured reason: in the CLI process (oclif and its
 * dependencies loaded) V8 ran about ten times more mark-compact collections during a 1 GiB download than in
 * a bare isolate (65 vs 6, `--trace-gc`), all of them triggered by the 64 KiB buffers Node allocates per
 * socket read, which cost about 0.6 s per GiB. A worker has a small, fresh heap; the main thread only
 * relays progress. Errors come back as data and are rebuilt as the same exit-coded classes.
 */
import { createRequire } from 'node:module'
import { pathToFileURL } from 'node:url'
import { Worker } from 'node:worker_threads'
import {
  ConflictError,
  ExternalError,
  IntegrityError,
  InternalError,
  ModelforgeError,
  NotFoundError,
  PolicyError,
  UsageError,
  type ErrorOptions,
} from '../lib/errors.js'
import type { BlobRequest, BlobResult } from './download.js'
import { CancelledError, type HubHttp, type HubHttpOptions } from './http.js'

/** A BlobRequest without its functions and objects: what crosses to the thread. */
export type BlobJob = Omit<BlobRequest, 'http' | 'onBytes' | 'signal'> & { http: HubHttpOptions }

export interface SerializedError {
  name: string
  message: string
  code?: string
  hint?: string
  details?: Record<string, unknown>
}

export type ThreadMessage =
  | { type: 'bytes'; delta: number }
  | { type: 'done'; result: BlobResult; requests: number }
  | { type: 'failed'; error: SerializedError; requests: number }

const CLASSES: Record<string, new (message: string, options?: ErrorOptions) => ModelforgeError> = {
  UsageError,
  ExternalError,
  IntegrityError,
  ConflictError,
  NotFoundError,
  PolicyError,
  InternalError,
}

export function serializeError(err: unknown): SerializedError {
  if (err instanceof ModelforgeError) return { name: err.name, message: err.message, code: err.code, hint: err.hint, details: err.details }
  const e = err as { name?: string; message?: string }
  return { name: e?.name ?? 'Error', message: e?.message ?? String(err) }
}

function rebuild(e: SerializedError): Error {
  if (e.name === 'CancelledError') return new CancelledError()
  const Class = CLASSES[e.name]
  if (Class) return new Class(e.message, { code: e.code, hint: e.hint, details: e.details })
  return new InternalError(`download thread: ${e.message}`, { code: 'DOWNLOAD_THREAD', hint: 'This is a bug in modelforge; rerun to resume the download.' })
}

/**
 * The worker: the compiled blob-worker.js next to this file; when running from the TypeScript sources
 * (tests), blob-worker.ts loaded through tsx's loader, registered inside the thread (a worker's execArgv
 * does not take --import).
 */
function startWorker(job: BlobJob): Worker {
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./blob-worker.js', import.meta.url), { workerData: job, execArgv: [] })
  // The package's ESM build of its API (the CommonJS one cannot register from an eval'd worker).
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx/esm/api').replace(/\.cjs$/, '.mjs')).href
  const entry = new URL('./blob-worker.ts', import.meta.url).href
  const code = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}) })`
  return new Worker(code, { eval: true, workerData: job, execArgv: [] })
}

export function downloadBlobInThread(req: BlobRequest): Promise<BlobResult> {
  const { http, onBytes, signal, ...rest } = req
  const job: BlobJob = { ...rest, http: (http as HubHttp).options() }
  return new Promise<BlobResult>((resolve, reject) => {
    const worker = startWorker(job)
    let settled = false
    const finish = (fn: () => void): void => {
      if (settled) return
      settled = true
      signal?.removeEventListener('abort', onAbort)
      fn()
      void worker.terminate()
    }
    const onAbort = (): void => worker.postMessage('abort')
    signal?.addEventListener('abort', onAbort)
    if (signal?.aborted) onAbort()
    worker.on('message', (m: ThreadMessage) => {
      if (m.type === 'bytes') onBytes?.(m.delta)
      else {
        http.requests += m.requests
        if (m.type === 'done') finish(() => resolve(m.result))
        else finish(() => reject(rebuild(m.error)))
      }
    })
    worker.on('error', (err) => finish(() => reject(rebuild(serializeError(err)))))
    worker.on('exit', (code) => finish(() => reject(rebuild({ name: 'Error', message: `the download thread exited with code ${code}` }))))
  })
}
