/**
 * Progress for long work: listr2 with its default renderer on a TTY, and plain lines ("simple" renderer)
 * when not a TTY or when CI is set. Progress always goes to stderr so that --json keeps stdout to the one
 * JSON object; with --json the tasks run silently.
 */
import { Listr, ListrLogger, ProcessOutput, type ListrTask } from 'listr2'
import { plainOutput } from './env.js'

export interface ProgressOptions {
  /** --json: no progress output at all. */
  quiet?: boolean
  concurrent?: boolean | number
}

export function createTasks<Ctx extends object>(tasks: ListrTask<Ctx>[], options: ProgressOptions = {}): Listr<Ctx> {
  const output = new ProcessOutput(process.stderr, process.stderr)
  return new Listr<Ctx>(tasks, {
    concurrent: options.concurrent ?? false,
    exitOnError: true,
    registerSignalListeners: true,
    silentRendererCondition: () => Boolean(options.quiet),
    fallbackRendererCondition: () => plainOutput(),
    rendererOptions: { formatOutput: 'wrap', removeEmptyLines: true, logger: new ListrLogger({ processOutput: output }) },
    fallbackRendererOptions: { logger: new ListrLogger({ useIcons: false, processOutput: output }) },
  })
}

/** Human-readable bytes, for progress titles. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let i = 0
  let v = n
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024
    i++
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`
}
