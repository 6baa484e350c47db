/**
 * The oclif entry of bin/run.js (after its fast path), there so that the CLI keeps its contract where oclif
 * alone would not: an unknown command, a topic named without a command, or an extra argument is a usage
 * error (exit 2) printed as every other error is, one JSON object under --json; oclif's own handler would
 * print " ›   Error: command x not found" even under --json, and exit 0 with the topic's help.
 */
import { Config, flush, run } from '@oclif/core'
import { fillShellForOclif, restoreShell } from './lib/env.js'
import { UsageError } from './lib/errors.js'
import { renderError } from './lib/render.js'

/** The command words: the arguments before the first flag (and before `--`). */
function leadingWords(argv: string[]): string[] {
  const words: string[] = []
  for (const a of argv) {
    if (a.startsWith('-')) break
    words.push(a)
  }
  return words
}

function distance(a: string, b: string): number {
  // Levenshtein over two short words; a dependency for eight lines would not pay.
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const cur = [i]
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1))
    prev = cur
  }
  return prev[b.length]!
}

function suggestions(config: Config, words: string[]): string[] {
  const typed = words.join(' ')
  const ids = config.commands.filter((c) => !c.hidden).map((c) => c.id.replaceAll(':', ' '))
  const sameStart = ids.filter((id) => id.startsWith(`${words[0]} `) || id === words[0])
  const near = ids.filter((id) => distance(id.slice(0, typed.length + 2), typed) <= 2)
  return [...new Set([...near, ...sameStart])].sort().slice(0, 8)
}

export async function main(argv: string[], dir: string): Promise<void> {
  const end = argv.indexOf('--')
  const json = (end < 0 ? argv : argv.slice(0, end)).includes('--json')
  fillShellForOclif()
  try {
    const config = await Config.load(dir)
    const words = leadingWords(argv)
    if (words.length === 0) {
      await run(argv, config)
      return
    }
    // The longest run of leading words that names a command is the command; what follows is its arguments.
    for (let n = words.length; n > 0; n--) {
      const id = words.slice(0, n).join(':')
      if (config.findCommand(id)) {
        await run([id, ...argv.slice(n)], config)
        return
      }
    }
    const topic = config.findTopic(words.join(':'))
    if (topic) {
      const commands = config.commands.filter((c) => c.id.startsWith(`${topic.name}:`)).map((c) => c.id.replaceAll(':', ' ')).sort()
      // A person gets the topic's help first, as oclif shows it, then the error (and exit 2) below it.
      if (!json) await run([...words, '--help'], config)
      throw new UsageError(`"${words.join(' ')}" is a topic, not a command: name one of ${commands.join(', ')}`, {
        code: 'COMMAND_MISSING',
        hint: `For example \`${config.bin} ${commands[0] ?? words.join(' ')} --help\`.`,
        details: { topic: topic.name, commands },
      })
    }
    const near = suggestions(config, words)
    throw new UsageError(`Unknown command "${words.join(' ')}"`, {
      code: 'COMMAND_UNKNOWN',
      hint: near.length > 0 ? `Did you mean ${near.map((c) => `\`${c}\``).join(', ')}? \`${config.bin} --help\` lists every command.` : `\`${config.bin} --help\` lists every command.`,
      details: { command: words.join(' '), suggestions: near },
    })
  } catch (err) {
    // oclif's own exit (this.exit(n) in a command, or help) carries its code; anything else is rendered.
    const exit = (err as { oclif?: { exit?: number } })?.oclif?.exit
    if (exit !== undefined && exit !== 2 && !(err instanceof UsageError)) {
      process.exitCode = exit
      return
    }
    renderError(err, json)
  } finally {
    restoreShell()
    await flush()
  }
}
