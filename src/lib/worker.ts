/**
 * Starting a worker thread the one right way, for the store's hashing threads, the hub's blob hasher and
 * its download thread:
 *
 *  - execArgv []: a thread inherits the parent's node flags, and one such as --input-type=module (any
 *    `node --input-type=module -e` script) turns an inline CommonJS source into ESM, where `require` is
 *    undefined;
 *  - a thread that exits without being stopped (killed, out of memory, a crash in its native code) is a
 *    failure, reported once, so that whatever waits for its answer fails instead of hanging;
 *  - a module entry is the compiled .js next to the caller, or, when running from the TypeScript sources
 *    (tests, tsx), the .ts file loaded through tsx's loader registered inside the thread (a thread's
 *    execArgv does not take --import).
 */
import { createRequire } from 'node:module'
import { pathToFileURL } from 'node:url'
import { Worker } from 'node:worker_threads'

/** A thread ended that nobody stopped. */
export class ThreadExitError extends Error {
  constructor(
    readonly exitCode: number,
    what: string,
  ) {
    super(`the ${what} exited with code ${exitCode}`)
    this.name = 'ThreadExitError'
  }
}

export interface ThreadOptions<M> {
  /** Names the thread in a ThreadExitError ("the hashing worker exited with code 1"). */
  name: string
  workerData?: unknown
  onMessage: (message: M) => void
  /** At most once, never after stop(): an error thrown in the thread, or a ThreadExitError. */
  onFailure: (err: Error) => void
}

export interface Thread {
  post(message: unknown): void
  /** Ends the thread; its exit is then no failure. */
  stop(): Promise<void>
}

/** The module `name` next to `callerUrl` (import.meta.url): .ts when the caller runs from sources, else .js. */
export function siblingModule(callerUrl: string, name: string): URL {
  return new URL(`./${name}${callerUrl.endsWith('.ts') ? '.ts' : '.js'}`, callerUrl)
}

function tsxBootstrap(entry: URL): string {
  // The package's ESM build of its API: the CommonJS one cannot register from an eval'd worker.
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx/esm/api').replace(/\.cjs$/, '.mjs')).href
  return `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry.href)}) })`
}

/** `entry`: an inline CommonJS source, or the URL of a module file (see siblingModule). */
export function startThread<M>(entry: string | URL, options: ThreadOptions<M>): Thread {
  const common = { workerData: options.workerData, execArgv: [] }
  const worker =
    typeof entry === 'string'
      ? new Worker(entry, { ...common, eval: true })
      : entry.href.endsWith('.ts')
        ? new Worker(tsxBootstrap(entry), { ...common, eval: true })
        : new Worker(entry, common)
  let done = false
  const fail = (err: Error): void => {
    if (done) return
    done = true
    options.onFailure(err)
  }
  worker.on('message', (m: M) => {
    if (!done) options.onMessage(m)
  })
  worker.on('error', fail)
  worker.on('messageerror', fail)
  worker.on('exit', (code) => fail(new ThreadExitError(code, options.name)))
  return {
    post: (message) => worker.postMessage(message),
    stop: async () => {
      done = true
      await worker.terminate()
    },
  }
}
