/**
 * How library code reports long work. Library steps never render: they send these events to a `Progress`
 * callback that the caller gives them, and do nothing when it gives none (library calls are silent by
 * default). The caller that owns the terminal (a command, or the pipeline) turns the events into its one
 * listr2 task list (src/lib/tasks.ts); a service embedding the library can log them or ignore them.
 *
 * A library entry point first announces the steps it will run (`plan`), then reports each one: `start`, any
 * number of `title` / `message` / `bytes`, and `end` with its duration (and its error when it failed). A
 * step may announce sub-steps of its own (a plan whose `parent` is that step), e.g. one per downloaded file.
 * Step ids are unique within one call; nestProgress() puts a callee's steps under a step of the caller.
 */

export interface StepInfo {
  id: string
  title: string
}

export type ProgressEvent =
  /** The steps that follow (under `parent`, or at the top level); `concurrency` of them run at once (default 1). */
  | { type: 'plan'; parent?: string; steps: StepInfo[]; concurrency?: number }
  | { type: 'start'; step: string }
  | { type: 'title'; step: string; title: string }
  | { type: 'message'; step: string; text: string }
  | { type: 'bytes'; step: string; done: number; total: number }
  /** `error` is set when the step failed; `skipped` when it had nothing to do. */
  | { type: 'end'; step: string; durationMs: number; title?: string; error?: unknown; skipped?: string }

export type Progress = (event: ProgressEvent) => void

/** What a running step reports through. */
export interface StepReporter {
  readonly id: string
  title(title: string): void
  message(text: string): void
  bytes(done: number, total: number): void
  /** Announces sub-steps of this step; returns their full ids, in order. */
  plan(steps: StepInfo[], concurrency?: number): string[]
}

/** Announces the top-level steps of a library call. */
export function planSteps(progress: Progress | undefined, steps: StepInfo[], concurrency?: number): void {
  progress?.({ type: 'plan', steps, ...(concurrency ? { concurrency } : {}) })
}

export interface RunStepOptions<T> {
  /** The step's final title, from its result. */
  title?: (result: T) => string | undefined
  /** A reason when this error means the step was cut short rather than failed (it is still rethrown). */
  skipped?: (error: unknown) => string | undefined
}

/**
 * Runs fn as step `id` (announced before by a plan): reports its start, and its end with the duration and
 * the final title, or with the error fn threw (which is rethrown).
 */
export async function runStep<T>(progress: Progress | undefined, id: string, fn: (step: StepReporter) => Promise<T>, options: RunStepOptions<T> = {}): Promise<T> {
  const report = progress ?? (() => undefined)
  const started = performance.now()
  report({ type: 'start', step: id })
  const step: StepReporter = {
    id,
    title: (title) => report({ type: 'title', step: id, title }),
    message: (text) => report({ type: 'message', step: id, text }),
    bytes: (doneBytes, total) => report({ type: 'bytes', step: id, done: doneBytes, total }),
    plan: (steps, concurrency) => {
      const full = steps.map((s) => ({ id: `${id}/${s.id}`, title: s.title }))
      report({ type: 'plan', parent: id, steps: full, ...(concurrency ? { concurrency } : {}) })
      return full.map((s) => s.id)
    },
  }
  try {
    const result = await fn(step)
    const title = options.title?.(result)
    report({ type: 'end', step: id, durationMs: performance.now() - started, ...(title ? { title } : {}) })
    return result
  } catch (error) {
    const skipped = options.skipped?.(error)
    report({ type: 'end', step: id, durationMs: performance.now() - started, ...(skipped ? { skipped } : { error }) })
    throw error
  }
}

/** Reports a step that had nothing to do (it still gets a start and an end, so renderers close it). */
export function skipStep(progress: Progress | undefined, id: string, reason: string): void {
  progress?.({ type: 'start', step: id })
  progress?.({ type: 'end', step: id, durationMs: 0, skipped: reason })
}

/**
 * The callee's events as sub-steps of the caller's step `parent`: its top-level plan becomes a plan under
 * `parent`, and its step ids are prefixed so that they cannot collide with the caller's.
 */
export function nestProgress(progress: Progress | undefined, parent: string): Progress | undefined {
  if (!progress) return undefined
  const prefix = `${parent}/`
  return (e) => {
    if (e.type === 'plan') {
      progress({ ...e, parent: e.parent === undefined ? parent : prefix + e.parent, steps: e.steps.map((s) => ({ ...s, id: prefix + s.id })) })
    } else {
      progress({ ...e, step: prefix + e.step })
    }
  }
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
