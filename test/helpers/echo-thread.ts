/** A module worker for test/lib/worker.test.ts: echoes, exits or throws on request. */
import { parentPort, workerData } from 'node:worker_threads'

const greeting: string = String(workerData)
parentPort!.on('message', (m: string) => {
  if (m === 'exit') process.exit(3)
  if (m === 'throw') throw new Error('thrown in the thread')
  parentPort!.postMessage(`${greeting} ${m}`)
})
