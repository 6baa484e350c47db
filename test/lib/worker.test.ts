import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { siblingModule, startThread, ThreadExitError, type Thread } from '../../src/lib/worker.js'

const ECHO_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads')
parentPort.on('message', (m) => {
  if (m === 'exit') process.exit(3)
  if (m === 'throw') throw new Error('thrown in the thread')
  parentPort.postMessage(workerData + ' ' + m)
})`
const ECHO_MODULE = new URL('../helpers/echo-thread.ts', import.meta.url)

/** Starts a thread, sends `message`, and settles with its first answer or failure. */
function ask(entry: string | URL, message: string): Promise<{ answer?: string; failure?: Error }> {
  return new Promise((resolve) => {
    const thread: Thread = startThread<string>(entry, {
      name: 'test thread',
      workerData: 'hello',
      onMessage: (m) => {
        resolve({ answer: m })
        void thread.stop()
      },
      onFailure: (failure) => resolve({ failure }),
    })
    thread.post(message)
  })
}

describe('lib/worker', () => {
  for (const [kind, entry] of [['inline CommonJS source', ECHO_SOURCE], ['module file (.ts through tsx)', ECHO_MODULE]] as const) {
    it(`${kind}: answers, and a thread that exits unasked or throws is a failure, not a hang`, async () => {
      expect(await ask(entry, 'world')).toEqual({ answer: 'hello world' })
      const exited = await ask(entry, 'exit')
      expect(exited.failure).toBeInstanceOf(ThreadExitError)
      expect(exited.failure).toMatchObject({ exitCode: 3, message: 'the test thread exited with code 3' })
      expect((await ask(entry, 'throw')).failure?.message).toBe('thrown in the thread')
    })
  }

  it('stop() is no failure, and nothing is reported after it', async () => {
    const failures: Error[] = []
    const thread = startThread(ECHO_SOURCE, { name: 'test thread', onMessage: () => undefined, onFailure: (e) => failures.push(e) })
    await thread.stop()
    await new Promise((r) => setTimeout(r, 50))
    expect(failures).toEqual([])
  })

  it('siblingModule picks the .ts next to a source file and the .js next to a compiled one', () => {
    expect(siblingModule('file:///x/src/hub/blob-thread.ts', 'blob-worker').href).toBe('file:///x/src/hub/blob-worker.ts')
    expect(siblingModule('file:///x/dist/hub/blob-thread.js', 'blob-worker').href).toBe('file:///x/dist/hub/blob-worker.js')
  })

  it('threads of both kinds start from a `node --input-type=module -e` parent (they must not inherit that flag)', () => {
    const script = `
      import { startThread } from ${JSON.stringify(join(process.cwd(), 'src/lib/worker.ts'))}
      const ask = (entry) => new Promise((resolve, reject) => {
        const t = startThread(entry, { name: 't', workerData: 'hi', onMessage: (m) => { resolve(m); void t.stop() }, onFailure: reject })
        t.post('there')
      })
      process.stdout.write([await ask(${JSON.stringify(ECHO_SOURCE)}), await ask(new URL(${JSON.stringify(ECHO_MODULE.href)}))].join(','))`
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' })
    expect(r.stderr).toBe('')
    expect(r.stdout).toBe('hi there,hi there')
  })
})
