/**
 * The CLI's own contract beyond each command: an unknown command, a topic without a command and an extra
 * argument are usage errors (exit 2), one JSON object under --json; -h is --help.
 */
import { describe, expect, it } from 'vitest'
import { cli } from '../helpers/store-helpers.js'

function json(stdout: string): { status: number; error?: { code: string; message: string; hint?: string } } {
  return JSON.parse(stdout)
}

describe('the CLI as a whole', () => {
  it.each([
    ['an unknown command', ['nope', '--json'], 'COMMAND_UNKNOWN', /Unknown command "nope"/],
    ['an unknown command in a topic', ['store', 'nope', '--json'], 'COMMAND_UNKNOWN', /Unknown command "store nope"/],
    ['a topic without a command', ['store', '--json'], 'COMMAND_MISSING', /"store" is a topic, not a command: name one of store current, .*store verify/],
    ['an extra argument', ['store', 'list', 'extra', '--json'], 'USAGE', /Unexpected argument: extra/],
    ['an unknown flag', ['store', 'list', '--nope', '--json'], 'USAGE', /Nonexistent flag: --nope/],
  ])('%s under --json: exit 2 and one JSON error object on stdout, nothing on stderr', (_what, args, code, message) => {
    const r = cli(args)
    expect(r.code).toBe(2)
    expect(r.stderr).toBe('')
    const body = json(r.stdout)
    expect(body.status).toBe(2)
    expect(body.error?.code).toBe(code)
    expect(body.error?.message).toMatch(message)
    expect(body.error?.hint).toBeTruthy()
  })

  it('without --json the same errors exit 2 with Error: and Hint: lines; a typo gets a suggestion', () => {
    const typo = cli(['storee', 'list'])
    expect(typo.code).toBe(2)
    expect(typo.stdout).toBe('')
    expect(typo.stderr).toBe('Error: Unknown command "storee list"\nHint: Did you mean `store list`? `modelforge --help` lists every command.\n')
    const topic = cli(['store'])
    expect(topic.code).toBe(2)
    // The topic's help for a person, then the error.
    expect(topic.stdout).toContain('store verify')
    expect(topic.stderr).toMatch(/^Error: "store" is a topic, not a command/)
    expect(topic.stderr).toMatch(/\nHint: For example `modelforge store current --help`\.\n$/)
  })

  it('-h works as --help, for the CLI and for a command', () => {
    for (const args of [['-h'], ['store', 'list', '-h'], ['fetch', '-h']]) {
      const short = cli(args)
      const long = cli(args.map((a) => (a === '-h' ? '--help' : a)))
      expect(short.code, args.join(' ')).toBe(0)
      expect(short.stdout).toBe(long.stdout)
      expect(short.stdout).toMatch(/USAGE/)
    }
  })
})
