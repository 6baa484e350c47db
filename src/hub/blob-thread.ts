/**
 * Runs downloadBlob for a large file in a worker thread. Measured reason: in the CLI process (oclif and its
 * dependencies loaded) V8 ran about ten times more mark-compact collections during a 1 GiB download than in
 * a bare isolate (65 vs 6, `--trace-gc`), all of them triggered by the 64 KiB buffers Node allocates per
 * socket read, which cost about 0.6 s per GiB. A worker has a small, fresh heap; the main thread only
 * relays progress. Errors come back as data and are rebuilt as the same exit-coded classes.
 */
import { errorFromCode, InternalError, ModelforgeError } from '../lib/errors.js'
import { siblingModule, startThread } from '../lib/worker.js'
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

export function serializeError(err: unknown): SerializedError {
  if (err instanceof ModelforgeError) return { name: err.name, message: err.message, code: err.code, hint: err.hint, details: err.details }
  const e = err as { name?: string; message?: string }
  return { name: e?.name ?? 'Error', message: e?.message ?? String(err) }
}

function rebuild(e: SerializedError): Error {
  if (e.name === 'CancelledError') return new CancelledError()
  if (e.code) return errorFromCode(e.code, e.message, { hint: e.hint, details: e.details })
  return new InternalError(`download thread: ${e.message}`, { code: 'DOWNLOAD_THREAD', hint: 'This is a bug in modelforge; rerun to resume the download.' })
}

export function downloadBlobInThread(req: BlobRequest): Promise<BlobResult> {
  const { http, onBytes, signal, ...rest } = req
  const job: BlobJob = { ...rest, http: (http as HubHttp).options() }
  return new Promise<BlobResult>((resolve, reject) => {
    let settled = false
    const finish = (fn: () => void): void => {
      if (settled) return
      settled = true
      signal?.removeEventListener('abort', onAbort)
      fn()
      void thread.stop()
    }
    // The compiled blob-worker.js next to this file, or blob-worker.ts when running from the sources.
    const thread = startThread<ThreadMessage>(siblingModule(import.meta.url, 'blob-worker'), {
      name: 'download thread',
      workerData: job,
      onMessage: (m) => {
        if (m.type === 'bytes') onBytes?.(m.delta)
        else {
          http.requests += m.requests
          if (m.type === 'done') finish(() => resolve(m.result))
          else finish(() => reject(rebuild(m.error)))
        }
      },
      onFailure: (err) => finish(() => reject(rebuild(serializeError(err)))),
    })
    const onAbort = (): void => thread.post('abort')
    signal?.addEventListener('abort', onAbort)
    if (signal?.aborted) onAbort()
  })
}
