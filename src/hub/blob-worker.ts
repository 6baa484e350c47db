/** Worker-thread entry for downloadBlobInThread (blob-thread.ts): one blob download, progress relayed in batches. */
import { parentPort, workerData } from 'node:worker_threads'
import type { BlobJob, ThreadMessage } from './blob-thread.js'
import { serializeError } from './blob-thread.js'
import { downloadBlob } from './download.js'
import { HubHttp } from './http.js'

const job = workerData as BlobJob
const port = parentPort!
const http = new HubHttp(job.http)
const controller = new AbortController()
port.on('message', (m) => {
  if (m === 'abort') controller.abort()
})

// Progress is sent at most every 256 KiB (and at the end) to keep messages few.
let pending = 0
const send = (m: ThreadMessage): void => port.postMessage(m)
const flushBytes = (): void => {
  if (pending !== 0) send({ type: 'bytes', delta: pending })
  pending = 0
}

downloadBlob({
  ...job,
  http,
  signal: controller.signal,
  onBytes: (delta) => {
    pending += delta
    if (pending >= 256 * 1024 || pending < 0) flushBytes()
  },
}).then(
  (result) => {
    flushBytes()
    send({ type: 'done', result, requests: http.requests })
  },
  (err: unknown) => {
    flushBytes()
    send({ type: 'failed', error: serializeError(err), requests: http.requests })
  },
)
