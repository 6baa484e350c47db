import { Config, Flags } from '@oclif/core'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { BaseCommand } from '../../src/lib/base-command.js'
import { ConflictError } from '../../src/lib/errors.js'

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')

class Greet extends BaseCommand {
  static flags = { name: Flags.string({ required: true }), fail: Flags.string() }
  async run(): Promise<{ greeting: string }> {
    const { flags } = await this.parse(Greet)
    if (flags.fail === 'conflict') throw new ConflictError('scout v1 exists', { code: 'VERSION_EXISTS', hint: 'Use another version.' })
    if (flags.fail === 'bug') throw new TypeError('undefined is not a function')
    this.say(`hello ${flags.name}`)
    return { greeting: `hello ${flags.name}` }
  }
}

let config: Config
beforeAll(async () => {
  config = await Config.load(root)
})

async function invoke(argv: string[]): Promise<{ stdout: string; stderr: string; exitCode: number | undefined }> {
  let stdout = ''
  let stderr = ''
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => ((stdout += String(chunk)), true))
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => ((stderr += String(chunk)), true))
  process.exitCode = undefined
  try {
    // Command.run goes through oclif's _run, which calls our catch(); errors are rethrown only by oclif's
    // own handler, which the real bin/run.js installs.
    await Greet.run(argv, config).catch(() => undefined)
  } finally {
    out.mockRestore()
    err.mockRestore()
  }
  const exitCode = typeof process.exitCode === 'number' ? process.exitCode : undefined
  process.exitCode = undefined
  return { stdout, stderr, exitCode }
}

afterEach(() => {
  process.exitCode = undefined
})

describe('BaseCommand', () => {
  it('wraps a result in the {status, result} envelope under --json', async () => {
    const { stdout, exitCode } = await invoke(['--name', 'ada', '--json'])
    expect(JSON.parse(stdout)).toEqual({ status: 0, result: { greeting: 'hello ada' } })
    expect(exitCode ?? 0).toBe(0)
  })

  it('prints human output without --json', async () => {
    const { stdout } = await invoke(['--name', 'ada'])
    expect(stdout).toContain('hello ada')
    expect(stdout).not.toContain('{')
  })

  it('keeps the documented exit code and error body under --json', async () => {
    const { stdout, exitCode } = await invoke(['--name', 'ada', '--fail', 'conflict', '--json'])
    expect(exitCode).toBe(5)
    expect(JSON.parse(stdout)).toEqual({
      status: 5,
      error: { code: 'VERSION_EXISTS', message: 'scout v1 exists', hint: 'Use another version.' },
    })
  })

  it('prints the message and hint on stderr without --json', async () => {
    const { stderr, stdout, exitCode } = await invoke(['--name', 'ada', '--fail', 'conflict'])
    expect(exitCode).toBe(5)
    expect(stderr).toContain('Error: scout v1 exists')
    expect(stderr).toContain('Hint: Use another version.')
    expect(stdout).toBe('')
  })

  it('reports a bug as exit 1 and a parse error as exit 2', async () => {
    expect((await invoke(['--name', 'ada', '--fail', 'bug'])).exitCode).toBe(1)
    const parse = await invoke(['--nope', '--json'])
    expect(parse.exitCode).toBe(2)
    expect(JSON.parse(parse.stdout)).toMatchObject({ status: 2, error: { code: 'USAGE' } })
  })
})
