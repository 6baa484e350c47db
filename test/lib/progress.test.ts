import { spawnSync } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { formatBytes, nestProgress, planSteps, runStep, type ProgressEvent } from '../../src/lib/progress.js'

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')

/**
 * A caller that owns the terminal (as a command or the pipeline does) runs two steps under one task list:
 * the first calls a library function whose own steps, and a sub-step per file, nest under it.
 */
const PIPELINE = `
  import { withTaskList } from './src/lib/tasks.ts'
  import { nestProgress, planSteps, runStep } from './src/lib/progress.ts'
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
  async function library(progress, fail) {
    planSteps(progress, [{ id: 'list', title: 'list files' }, { id: 'download', title: 'download files' }])
    await runStep(progress, 'list', async (s) => { s.message('3 files'); await sleep(5) }, { title: () => 'listed 3 files' })
    await runStep(progress, 'download', async (s) => {
      const ids = s.plan(['a.bin', 'b.bin', 'c.bin'].map((f) => ({ id: f, title: f })), 2)
      await Promise.all(ids.map((id, i) => runStep(progress, id, async (f) => {
        f.bytes(5, 10)
        await sleep(20 * (i + 1))
        if (fail && i === 1) throw new Error('b.bin is corrupt')
      }, { title: () => id.split('/').pop() + ' verified' })))
    })
  }
  const fail = process.argv.includes('fail')
  try {
    const out = await withTaskList(async (progress) => {
      planSteps(progress, [{ id: 'fetch', title: 'Fetch' }, { id: 'finalize', title: 'Finalize' }])
      await runStep(progress, 'fetch', (s) => library(nestProgress(progress, s.id), fail))
      await runStep(progress, 'finalize', async (s) => { s.message('hashed 1 KiB of 1 KiB') })
      return 'RESULT'
    }, { quiet: process.argv.includes('quiet') })
    process.stdout.write(out)
  } catch (err) {
    process.stdout.write('THROWN ' + err.message)
  }
`

function run(env: Record<string, string | undefined>, ...args: string[]) {
  return spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', PIPELINE, '--', ...args], {
    cwd: root,
    env: { ...process.env, ...env },
    encoding: 'utf8',
  })
}

const lines = (text: string): string[] => text.split('\n').filter(Boolean)

describe('progress reported by library steps, rendered by the caller', () => {
  it('two steps, one nesting a library call, render as one plain task list on stderr under CI', () => {
    const r = run({ CI: 'true' })
    expect(r.status).toBe(0)
    expect(r.stdout).toBe('RESULT')
    const out = lines(r.stderr)
    // One renderer: every step is started and completed exactly once, in order, children inside parents.
    for (const title of ['Fetch', 'list files', 'download files', 'a.bin', 'b.bin', 'c.bin', 'Finalize']) {
      expect(out.filter((l) => l === `[STARTED] ${title}`), title).toHaveLength(1)
    }
    const at = (line: string): number => out.indexOf(line)
    expect(at('[STARTED] Fetch')).toBe(0)
    expect(at('[STARTED] list files')).toBeGreaterThan(at('[STARTED] Fetch'))
    expect(at('[COMPLETED] listed 3 files')).toBeLessThan(at('[STARTED] download files'))
    for (const f of ['a.bin', 'b.bin', 'c.bin']) {
      expect(at(`[STARTED] ${f}`)).toBeGreaterThan(at('[STARTED] download files'))
      expect(at(`[COMPLETED] ${f} verified`)).toBeLessThan(at('[COMPLETED] download files'))
    }
    // Two at a time, as planned: c.bin starts only once a.bin is done.
    expect(at('[STARTED] c.bin')).toBeGreaterThan(at('[COMPLETED] a.bin verified'))
    expect(at('[COMPLETED] download files')).toBeLessThan(at('[COMPLETED] Fetch'))
    expect(at('[COMPLETED] Fetch')).toBeLessThan(at('[STARTED] Finalize'))
    expect(out).toContain('[OUTPUT] hashed 1 KiB of 1 KiB')
    expect(out[out.length - 1]).toBe('[COMPLETED] Finalize')
    // Plain mode: no cursor movement or colour escapes.
    expect(r.stderr).not.toContain('\u001b[')
  })

  it('a failure is shown once, on the step that failed, and the caller gets the library error', () => {
    const r = run({ CI: 'true' }, 'fail')
    expect(r.status).toBe(0)
    expect(r.stdout).toBe('THROWN b.bin is corrupt')
    expect(r.stderr.match(/b\.bin is corrupt/g)).toHaveLength(1)
    expect(r.stderr).toContain('[FAILED] b.bin')
    expect(r.stderr).not.toContain('Finalize')
  })

  it('prints nothing when quiet (--json)', () => {
    const r = run({ CI: 'true' }, 'quiet')
    expect(r.stdout).toBe('RESULT')
    expect(r.stderr).toBe('')
  })

  it('library calls given no progress print nothing, on a TTY or not', () => {
    const script = `
      import { planSteps, runStep } from './src/lib/progress.ts'
      planSteps(undefined, [{ id: 'a', title: 'a' }])
      await runStep(undefined, 'a', async (s) => { s.message('x'); s.bytes(1, 2) })
      process.stdout.write('done')
    `
    for (const env of [{ CI: 'true' }, { CI: undefined, LISTR_FORCE_TTY: '1' }]) {
      const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: root, env: { ...process.env, ...env }, encoding: 'utf8' })
      expect(r.stdout).toBe('done')
      expect(r.stderr).toBe('')
    }
  })

  it('runStep reports start, end with duration and final title, or the error; nestProgress re-parents a callee', async () => {
    const events: ProgressEvent[] = []
    const progress = nestProgress((e) => events.push(e), 'outer')
    planSteps(progress, [{ id: 'x', title: 'x' }])
    await runStep(progress, 'x', async (s) => s.plan([{ id: 'y', title: 'y' }]), { title: (ids) => `planned ${ids.join(',')}` })
    const boom = new Error('boom')
    await expect(runStep(progress, 'z', async () => { throw boom })).rejects.toBe(boom)
    await expect(runStep(progress, 'w', async () => { throw boom }, { skipped: () => 'cut short' })).rejects.toBe(boom)
    expect(events.map((e) => e.type)).toEqual(['plan', 'start', 'plan', 'end', 'start', 'end', 'start', 'end'])
    expect(events[0]).toEqual({ type: 'plan', parent: 'outer', steps: [{ id: 'outer/x', title: 'x' }] })
    expect(events[2]).toEqual({ type: 'plan', parent: 'outer/x', steps: [{ id: 'outer/x/y', title: 'y' }] })
    expect(events[3]).toMatchObject({ type: 'end', step: 'outer/x', title: 'planned x/y' })
    expect(events[5]).toMatchObject({ type: 'end', step: 'outer/z', error: boom })
    expect(events[7]).toMatchObject({ type: 'end', step: 'outer/w', skipped: 'cut short' })
    expect((events[3] as { durationMs: number }).durationMs).toBeGreaterThanOrEqual(0)
  })

  it('formats byte counts for titles', () => {
    expect(formatBytes(512)).toBe('512 B')
    expect(formatBytes(1536)).toBe('1.5 KiB')
    expect(formatBytes(2 * 1024 ** 3)).toBe('2.0 GiB')
  })
})

describe('library entry points are silent by default', () => {
  it('createToyStore, validateModel and a store finalize print nothing, even on a TTY', () => {
    const script = `
      import { mkdtempSync, writeFileSync } from 'node:fs'
      import { tmpdir } from 'node:os'
      import { join } from 'node:path'
      import { createToyStore } from './src/toy/toy-store.ts'
      import { validateModel } from './src/validate/validate.ts'
      import { ModelStore } from './src/publish/store.ts'
      const dir = mkdtempSync(join(tmpdir(), 'mf-silent-'))
      const toy = await createToyStore(join(dir, 'store'), { agents: ['scout'], versions: 1 })
      const model = join(toy.agents[0].currentPath, 'model.onnx')
      await validateModel({ candidate: model, reference: model })
      const store = new ModelStore(join(dir, 'store'))
      writeFileSync(join(await store.stage('scout', 'v9'), 'f.bin'), 'x')
      await store.finalize('scout', 'v9')
      process.stdout.write('done')
    `
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: root, env: { ...process.env, CI: undefined, LISTR_FORCE_TTY: '1' }, encoding: 'utf8' })
    expect(r.stdout).toBe('done')
    expect(r.stderr).toBe('')
  })
})
