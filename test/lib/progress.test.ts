import { spawnSync } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { formatBytes } from '../../src/lib/progress.js'

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')

// Runs two tasks through createTasks in a child process, as a command would, and captures both streams.
function runTasks(env: Record<string, string>, quiet: boolean) {
  const script = `
    import { createTasks } from './src/lib/progress.ts'
    await createTasks([
      { title: 'hash files', task: async (_, t) => { t.output = 'model.onnx'; } },
      { title: 'write manifest', task: async () => {} },
    ], { quiet: ${quiet} }).run()
    process.stdout.write('RESULT')
  `
  return spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: root,
    env: { ...process.env, ...env },
    encoding: 'utf8',
  })
}

describe('progress', () => {
  it('prints plain lines on stderr under CI, keeping stdout for results', () => {
    const r = runTasks({ CI: 'true' }, false)
    expect(r.status).toBe(0)
    expect(r.stdout).toBe('RESULT')
    expect(r.stderr).toContain('hash files')
    expect(r.stderr).toContain('write manifest')
    // No cursor movement or colour escapes in plain mode.
    expect(r.stderr).not.toContain('\u001b[')
  })

  it('prints nothing when quiet (--json)', () => {
    const r = runTasks({ CI: 'true' }, true)
    expect(r.stdout).toBe('RESULT')
    expect(r.stderr).toBe('')
  })

  it('formats byte counts for titles', () => {
    expect(formatBytes(512)).toBe('512 B')
    expect(formatBytes(1536)).toBe('1.5 KiB')
    expect(formatBytes(2 * 1024 ** 3)).toBe('2.0 GiB')
  })
})
