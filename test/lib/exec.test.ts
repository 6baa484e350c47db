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

  it('lets the caller inspect a failure with reject: false', async () => {
    const r = await run(process.execPath, ['-e', 'process.exit(3)'], { reject: false })
    expect(r.exitCode).toBe(3)
  })

  it('kills a program that outlives its timeout', async () => {
    const err = await run(process.execPath, ['-e', 'setTimeout(() => {}, 10000)'], { timeout: 200 }).catch((e) => e)
    expect(err).toBeInstanceOf(ExternalError)
    expect(err.code).toBe('TOOL_TIMEOUT')
  })

  it('canRun answers without throwing', async () => {
    expect(await canRun(process.execPath, ['--version'])).toBe(true)
    expect(await canRun('/nonexistent/tool')).toBe(false)
  })
})
