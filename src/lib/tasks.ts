/**
 * The one listr2 task list of a command (or of the pipeline), fed by the progress events of the library
 * calls it makes (src/lib/progress.ts). Only callers that own the terminal use this module; library code
 * reports and never renders, so however deep the calls nest there is one renderer writing to stderr.
 *
 * listr2 with its default renderer on a TTY, and plain lines ("simple" renderer) when not a TTY or when CI
 * is set; always on stderr so that --json keeps stdout to the one JSON object; nothing at all when quiet.
 *
 * listr2 wants its tasks before it runs, while a library call learns its steps as it goes (the files of a
 * repository are known once it is listed). So the list is built from the `plan` events: the first top-level
 * plan creates the root, and a step that plans sub-steps returns them as its subtasks. Each task only waits
 * for its step's events; the work itself runs in the library call.
 */
import { Listr, ListrLogger, ProcessOutput, type ListrTask, type ListrTaskWrapper, type ListrDefaultRenderer, type ListrSimpleRenderer } from 'listr2'
import { plainOutput } from './env.js'
import { formatBytes, type Progress, type ProgressEvent, type StepInfo } from './progress.js'

export interface TaskListOptions {
  /** --json: no progress output at all. */
  quiet?: boolean
  /**
   * The caller stops its work itself on SIGINT (BaseCommand.withInterrupt): listr2's own handler, which
   * exits 127 at once, stays off so that the work can end cleanly and exit 130.
   */
  callerHandlesSigint?: boolean
}

type Wrapper = ListrTaskWrapper<object, ListrDefaultRenderer, ListrSimpleRenderer>
type End = Extract<ProgressEvent, { type: 'end' }>

interface Deferred<T> {
  promise: Promise<T>
  resolve(value: T): void
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void
  const promise = new Promise<T>((r) => (resolve = r))
  return { promise, resolve }
}

interface StepState {
  info: StepInfo
  task?: Wrapper
  /** Title and output that arrived before listr started the task. */
  title?: string
  output?: string
  outputAt: number
  titleAt: number
  children: Deferred<{ steps: string[]; concurrency: number }>
  end: Deferred<End>
  ended: boolean
}

/** Thrown by a task whose failure was already shown by a sub-task: an empty message prints nothing again. */
class AlreadyShown extends Error {
  constructor() {
    super('')
  }
}

function rootOptions(options: TaskListOptions) {
  const output = new ProcessOutput(process.stderr, process.stderr)
  return {
    concurrent: false,
    exitOnError: true,
    registerSignalListeners: !options.callerHandlesSigint,
    fallbackRendererCondition: () => plainOutput(),
    rendererOptions: { formatOutput: 'wrap' as const, removeEmptyLines: true, logger: new ListrLogger({ processOutput: output }) },
    fallbackRendererOptions: { logger: new ListrLogger({ useIcons: false, processOutput: output }) },
  }
}

/**
 * Runs fn with a Progress that renders its events as one task list, and returns (or throws) what fn does.
 * The rendering never changes the outcome: a failed renderer is ignored, fn's own error is what is thrown.
 */
export async function withTaskList<T>(fn: (progress: Progress) => Promise<T>, options: TaskListOptions = {}): Promise<T> {
  if (options.quiet) return fn(() => undefined)
  const steps = new Map<string, StepState>()
  const throttleMs = plainOutput() ? 2000 : 100
  let rendering: Promise<unknown> = Promise.resolve()

  const state = (id: string): StepState | undefined => steps.get(id)
  const setTitle = (st: StepState, title: string, throttle = false): void => {
    const now = Date.now()
    if (throttle && now - st.titleAt < throttleMs) return
    st.titleAt = now
    st.title = title
    if (st.task) st.task.title = title
  }
  const setOutput = (st: StepState, text: string, throttle: boolean): void => {
    const now = Date.now()
    if (throttle && now - st.outputAt < throttleMs) return
    st.outputAt = now
    st.output = text
    if (st.task) st.task.output = text
  }

  const makeTask = (st: StepState): ListrTask<object, ListrDefaultRenderer, ListrSimpleRenderer> => ({
    title: st.info.title,
    task: async (_ctx, task) => {
      st.task = task
      if (st.title !== undefined) task.title = st.title
      if (st.output !== undefined) task.output = st.output
      const next = await Promise.race([st.children.promise, st.end.promise])
      if ('type' in next) return finish(st, next)
      const kids = next.steps.map((id) => makeTask(state(id)!))
      const concurrent = next.concurrency > 1 ? next.concurrency : false
      // Untitled (so invisible) wrappers: the sub-steps, then a wait that keeps this task open until its
      // own step ends (it may still work after its sub-steps, and may fail there).
      return task.newListr([
        // exitOnError false: a failed sub-step is shown by its own task; the step's end decides the rest.
        { task: (_c, wrapper) => wrapper.newListr(kids, { concurrent, exitOnError: false }) },
        { task: async () => finish(st, await st.end.promise, true) },
      ], { exitOnError: true })
    },
  })

  // Errors a task has shown already: the steps around a failed one fail without repeating its message.
  const shown = new Set<unknown>()
  const finish = (st: StepState, end: End, hasChildren = false): void => {
    if (end.error !== undefined) {
      if (shown.has(end.error) || end.error instanceof AlreadyShown) throw new AlreadyShown()
      shown.add(end.error)
      const message = end.error instanceof Error ? end.error.message : String(end.error)
      // The wrapper of a step with sub-steps is untitled; its own failure is said on the step's task.
      if (hasChildren) {
        if (st.task) st.task.output = `failed: ${message}`
        throw new AlreadyShown()
      }
      throw end.error instanceof Error ? end.error : new Error(message)
    }
    if (end.skipped && st.task) st.task.skip(end.skipped)
  }

  const onEvent = (e: ProgressEvent): void => {
    if (e.type === 'plan') {
      for (const s of e.steps) {
        steps.set(s.id, { info: s, outputAt: 0, titleAt: 0, children: deferred(), end: deferred(), ended: false })
      }
      if (e.parent === undefined) {
        // Top-level plans of successive library calls render one after the other, never at once.
        const list = new Listr<object, 'default', 'simple'>(e.steps.map((s) => makeTask(state(s.id)!)), {
          ...rootOptions(options),
          concurrent: (e.concurrency ?? 1) > 1 ? e.concurrency : false,
        })
        rendering = rendering.then(() => list.run().catch(() => undefined))
      } else {
        state(e.parent)?.children.resolve({ steps: e.steps.map((s) => s.id), concurrency: e.concurrency ?? 1 })
      }
      return
    }
    const st = state(e.step)
    if (!st) return
    switch (e.type) {
      case 'start':
        return
      case 'title':
        // Titles follow byte counts in some steps: throttled like output, the final one comes with `end`.
        return setTitle(st, e.title, true)
      case 'message':
        return setOutput(st, e.text, false)
      case 'bytes':
        return setOutput(st, `${formatBytes(e.done)} / ${formatBytes(e.total)} (${e.total ? Math.floor((e.done / e.total) * 100) : 100}%)`, e.done < e.total)
      case 'end':
        if (e.title) setTitle(st, e.title)
        st.ended = true
        st.end.resolve(e)
    }
  }

  try {
    const result = await fn(onEvent)
    // A planned step the call never ran (it found nothing to do) is closed rather than left waiting.
    for (const st of steps.values()) {
      if (!st.ended) st.end.resolve({ type: 'end', step: st.info.id, durationMs: 0, skipped: 'not needed' })
    }
    return result
  } catch (err) {
    // Steps the failure left open (a caller's step around the failed one, siblings cut short) end failed
    // too, so that the list closes; their tasks print nothing more than the failed step already did.
    for (const st of steps.values()) {
      if (!st.ended) st.end.resolve({ type: 'end', step: st.info.id, durationMs: 0, error: new AlreadyShown() })
    }
    throw err
  } finally {
    await rendering
  }
}
