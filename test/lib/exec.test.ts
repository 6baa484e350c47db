import { describe, expect, it } from 'vitest'
import { canRun, run } from '../../src/lib/exec.js'
import { ExternalError } from '../../src/lib/errors.js'

describe('exec', () => {
  it('runs a program and returns its output and exit code', async () => {
    const r = await run(process.execPath, ['-e', 'process.stdout.write("hi"); process.stderr.write("warn")'])
    expect(r).toMatchObject({ exitCode: 0, stdout: 'hi', stderr: 'warn' })
    expect(r.durationMs).toBeGreaterThan(0)
  })

  it('streams lines as they arrive, from both streams', async () => {
    const lines: string[] = []
    await run(process.execPath, ['-e', 'console.log("a\\nb"); console.error("c"); process.stdout.write("tail")'], {
      onLine: (line, stream) => lines.push(`${stream}:${line}`),
    })
    expect(lines).toEqual(expect.arrayContaining(['stdout:a', 'stdout:b', 'stderr:c', 'stdout:tail']))
    expect(lines).toHaveLength(4)
  })

  it('turns a missing program into an external error (exit 3) with the hint', async () => {
    const err = await run('/nonexistent/trtexec', [], { missingHint: 'Set TRTEXEC.' }).catch((e) => e)
    expect(err).toBeInstanceOf(ExternalError)
    expect(err.exitCode).toBe(3)
    expect(err.code).toBe('TOOL_NOT_FOUND')
    expect(err.hint).toBe('Set TRTEXEC.')
  })

  it('turns a non-zero exit into an external error carrying the output tail', async () => {
    const err = await run(process.execPath, ['-e', 'console.error("[E] engine build failed"); process.exit(7)']).catch((e) => e)
    expect(err).toBeInstanceOf(ExternalError)
    expect(err.message).toContain('exited with code 7')
    expect(err.message).toContain('[E] engine build failed')
    expect(err.details).toMatchObject({ exitCode: 7 })
  })

  it('a failure carries the tail of stdout and stderr interleaved, as trtexec writes [I] and [E] lines', async () => {
    // Pauses between the streams: two pipes carry no order of their own, so the writer paces them.
    const script = 'const w = (s, l) => new Promise((r) => s.write(l + "\\n", () => setTimeout(r, 20))); (async () => { for (let i = 0; i < 30; i++) console.log("[I] step " + i); await w(process.stdout, "[I] done"); await w(process.stderr, "[E] Error[4]: network invalid"); await w(process.stdout, "&&&& FAILED"); process.exit(1) })()'
    const err = await run(process.execPath, ['-e', script]).catch((e) => e)
    const lines = (err.message as string).split('\n').slice(1)
    expect(lines).toHaveLength(20)
    expect(lines.slice(-3)).toEqual(['[I] done', '[E] Error[4]: network invalid', '&&&& FAILED'])
  })

  it('logs every spawn under DEBUG=modelforge:exec (argv, cwd, exit, duration), on stderr only', async () => {
    const { spawnSync } = await import('node:child_process')
    const script = "import { run } from './src/lib/exec.ts'; await run(process.execPath, ['-e', 'process.exit(0)'])"
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { env: { ...process.env, DEBUG: 'modelforge*' }, encoding: 'utf8' })
    expect(r.stdout).toBe('')
    expect(r.stderr).toMatch(/modelforge:exec spawn .*node.* \[ '-e', 'process\.exit\(0\)' \] cwd=/)
    expect(r.stderr).toMatch(/modelforge:exec exit .*node code=0 signal=- \d+ms/)
  })

  it('lets the caller inspect a failure with reject: false', async () => {
    const r = await run(process.execPath, ['-e', 'process.exit(3)'], { reject: false })
    expect(r.exitCode).toBe(3)
  })

  it('kills a program that outlives its timeout', async () => {
    const err = await run(process.execPath, ['-e', 'setTimeout(() => {}, 10000)'], { timeout: 200 }).catch((e) => e)
    expect(err).toBeInstanceOf(ExternalError)
    expect(err.code).toBe('TOOL_TIMEOUT')
  })

  it('a timeout error carries what the program printed before it was stopped', async () => {
    const err = await run(process.execPath, ['-e', 'console.log("[I] Start parsing network model."); setTimeout(() => {}, 10000)'], { timeout: 500 }).catch((e) => e)
    expect(err.code).toBe('TOOL_TIMEOUT')
    expect(err.details).toMatchObject({ timeoutMs: 500, signal: 'SIGTERM' })
    expect(err.details.output).toContain('[I] Start parsing network model.')
  })

  it('an abort stops the program: SIGTERM, then SIGKILL after the grace period for one that traps SIGTERM', async () => {
    const controller = new AbortController()
    let pid = 0
    // The child ignores SIGTERM, as a program busy in a native call may; only SIGKILL ends it.
    const script = 'process.on("SIGTERM", () => console.log("ignored")); console.log("pid " + process.pid); setInterval(() => {}, 1000)'
    const started = performance.now()
    const err = await run(process.execPath, ['-e', script], {
      signal: controller.signal,
      killGraceMs: 300,
      onLine: (line) => {
        const m = /^pid (\d+)$/.exec(line)
        if (m) {
          pid = Number(m[1])
          controller.abort()
        }
      },
    }).catch((e) => e)
    expect(err).toBeInstanceOf(ExternalError)
    expect(err.code).toBe('TOOL_CANCELLED')
    expect(err.details.signal).toBe('SIGKILL')
    expect(performance.now() - started).toBeGreaterThanOrEqual(300)
    expect(() => process.kill(pid, 0)).toThrow(expect.objectContaining({ code: 'ESRCH' }))
  })

  it('reports the signal that ended a program', async () => {
    const r = await run(process.execPath, ['-e', 'process.kill(process.pid, "SIGSEGV")'], { reject: false })
    expect(r.signal).toBe('SIGSEGV')
    expect(r.exitCode).toBe(-1)
  })

  it('canRun answers without throwing', async () => {
    expect(await canRun(process.execPath, ['--version'])).toBe(true)
    expect(await canRun('/nonexistent/tool')).toBe(false)
  })
})
