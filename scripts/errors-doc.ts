/**
 * docs/errors.md from the error-code catalogue (src/lib/error-codes.ts): `npm run docs:errors` writes it,
 * test/lib/error-codes.test.ts fails when the file and the catalogue differ.
 */
import { writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { ERROR_CODES } from '../src/lib/error-codes.js'

const MEANING: Record<number, string> = {
  1: 'a bug in modelforge',
  2: 'usage: bad flags, arguments, names, or paths of the wrong kind',
  3: 'an external tool, the network or the machine (disk full, I/O) failed',
  4: 'validation or integrity failed: a file whose content is broken or fails a check',
  5: 'conflict: the version exists, a lock is held, a path exists',
  6: 'not found',
  7: 'refused: by policy (allowed sources, approval) or by the operating system (permissions, read-only)',
  130: 'interrupted: stopped by Ctrl-C (SIGINT) or SIGTERM',
}

export function renderErrorsDoc(): string {
  const lines = [
    '# Error codes',
    '',
    '<!-- Generated from src/lib/error-codes.ts by `npm run docs:errors`; edit the catalogue, not this file. -->',
    '',
    'Every error modelforge reports has one of these codes, and each code has one exit code. With `--json`',
    'the code is `error.code` in the one JSON object on stdout; without it, stderr holds `Error: <message>` and',
    '`Hint: <what to do>`. The hint below is the general one; the message and hint of an actual error are',
    'more precise (they name the file, the flag, the holder of a lock). The rule behind the exit codes is in',
    '[architecture.md](architecture.md#errors-and-exit-codes). For a stack trace of a bug (exit 1), rerun with',
    '`DEBUG=modelforge*`.',
    '',
  ]
  for (const exit of [1, 2, 3, 4, 5, 6, 7, 130]) {
    lines.push(`## Exit ${exit}: ${MEANING[exit]}`, '', '| code | meaning | what to do |', '|---|---|---|')
    for (const [code, info] of Object.entries(ERROR_CODES)) {
      if (info.exit === exit) lines.push(`| \`${code}\` | ${info.summary} | ${info.hint.replaceAll('|', '\\|')} |`)
    }
    lines.push('')
  }
  return lines.join('\n')
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  writeFileSync(new URL('../docs/errors.md', import.meta.url), renderErrorsDoc())
}
