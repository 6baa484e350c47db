/**
 * The start-up fast path of bin/run.js. Agents and scripts call `modelforge store current <agent>` very
 * often; loading oclif (and through the command index, listr2 and protobufjs) costs several times Node's
 * own start-up. This module answers exactly the plain form
 *
 *     store current <agent> [--store <dir> | --store=<dir>] [--json]
 *
 * with the same stdout, stderr and exit code as the oclif command (src/commands/store/current.ts), importing
 * only the lean resolver. Anything else (help, other flags, other commands) returns false and oclif runs.
 */
import { jsonText, renderError, successEnvelope } from './lib/render.js'
import { storeRoot } from './lib/env.js'
import { currentReport, renderCurrent } from './publish/current.js'

interface Parsed {
  agent: string
  store?: string
  json: boolean
}

/** The arguments of the plain form, or null when oclif must handle them. */
export function parseFastPath(argv: string[]): Parsed | null {
  if (argv[0] !== 'store' || argv[1] !== 'current') return null
  let agent: string | undefined
  let store: string | undefined
  let json = false
  const rest = argv.slice(2)
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i]!
    if (a === '--json') {
      if (json) return null
      json = true
    } else if (a === '--store' || a.startsWith('--store=')) {
      if (store !== undefined) return null
      const value = a === '--store' ? rest[++i] : a.slice('--store='.length)
      if (!value || value.startsWith('-')) return null
      store = value
    } else if (a.startsWith('-') || agent !== undefined) {
      return null
    } else {
      agent = a
    }
  }
  return agent === undefined ? null : { agent, store, json }
}

/** Handles the plain `store current` form and returns true, or returns false to let oclif run. */
export async function fastPath(argv: string[]): Promise<boolean> {
  const args = parseFastPath(argv)
  if (!args) return false
  try {
    const report = currentReport(storeRoot(args.store), args.agent)
    if (args.json) {
      process.stdout.write(jsonText(successEnvelope(report)))
    } else {
      const { stdout, stderr } = renderCurrent(report)
      process.stdout.write(stdout)
      process.stderr.write(stderr)
    }
    process.exitCode = 0
  } catch (err) {
    renderError(err, args.json, { doing: 'running `modelforge store current`' })
  }
  return true
}
