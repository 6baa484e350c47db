/**
 * The layer rules of eslint.config.js, shown on imports written into each area: every restricted kind fails
 * lint with its message, the allowed ones pass. The tree itself passing is `npm run lint` (and CI).
 */
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ESLint } from 'eslint'
import { beforeAll, describe, expect, it } from 'vitest'

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
let eslint: ESLint
beforeAll(() => {
  eslint = new ESLint({ cwd: root })
})

/** The no-restricted-imports messages for `code` as if it were the file `path`. */
async function restricted(path: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(`${code}\nexport const x = 1\n`, { filePath: join(root, path) })
  return result!.messages.filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message)
}

describe('layers enforced by the linter', () => {
  it.each([
    ['nothing imports src/commands', 'src/export/x.ts', "import Fetch from '../commands/fetch.js'", /Nothing imports src\/commands|may import only/],
    ['nothing imports src/commands, from the top level either', 'src/index.ts', "export * from './commands/fetch.js'", /Nothing imports src\/commands/],
    ['lib imports no other area', 'src/lib/x.ts', "import { ModelStore } from '../publish/store.js'", /src\/lib may import only node built-ins/],
    ['hub does not import publish', 'src/hub/x.ts', "import { hashFile } from '../publish/hash.js'", /src\/hub may import only lib/],
    ['publish knows nothing of the registry', 'src/publish/x.ts', "import { sync } from '../registry/sync.js'", /src\/publish may import only lib/],
    ['onnx does not import validate (an upward import)', 'src/onnx/x.ts', "import { loadModel } from '../validate/runtime.js'", /src\/onnx may import only lib/],
    ['validate does not import export', 'src/validate/x.ts', "import { exportModel } from '../export/index.js'", /src\/validate may import only onnx, lib/],
    ['a nested file is held to its area', 'src/export/exporters/x.ts', "import { fastPath } from '../../toy/toy-store.js'", /src\/export may import only/],
    ['the lean reader path imports no package', 'src/publish/current.ts', "import { Listr } from 'listr2'", /lean reader path imports node built-ins only/],
    ['the lean reader path imports no heavy module', 'src/publish/names.ts', "import { hashFiles } from './hash.js'", /lean reader path imports only/],
    ['the fast path imports no heavy module', 'src/fast-path.ts', "import { ModelStore } from './publish/store.js'", /lean reader path imports only/],
    ['only lib/exec.ts spawns (node:child_process)', 'src/hub/x.ts', "import { spawn } from 'node:child_process'", /Only src\/lib\/exec\.ts starts processes/],
    ['only lib/exec.ts spawns (execa)', 'src/export/x.ts', "import { execa } from 'execa'", /Only src\/lib\/exec\.ts starts processes/],
    ['library code does not render (listr2)', 'src/hub/x.ts', "import { Listr } from 'listr2'", /only lib\/tasks\.ts renders/],
    ['library code does not know oclif', 'src/publish/x.ts', "import { Command } from '@oclif/core'", /Only commands/],
    ['onnxruntime is reached through validate, not from onnx/', 'src/onnx/x.ts', "import ort from 'onnxruntime-node'", /through src\/validate/],
    ['nor from a command', 'src/commands/x.ts', "import ort from 'onnxruntime-node'", /through src\/validate/],
  ])('%s', async (_what, path, code, message) => {
    const messages = await restricted(path, code)
    expect(messages.length, `${path}: ${code}`).toBeGreaterThan(0)
    expect(messages.join('\n')).toMatch(message)
  })

  it.each([
    ['export imports hub, validate and onnx', 'src/export/x.ts', "import { resolveCachedSnapshot } from '../hub/index.js'\nimport { loadModel } from '../validate/runtime.js'\nimport { readModel } from '../onnx/proto.js'"],
    ['toy imports export, validate and publish', 'src/toy/x.ts', "import { exportModel } from '../export/index.js'\nimport { withModel } from '../validate/runtime.js'\nimport { ModelStore } from '../publish/store.js'"],
    ['commands import any area and oclif', 'src/commands/x.ts', "import { Flags } from '@oclif/core'\nimport { fetchModel } from '../hub/fetch.js'\nimport { ModelStore } from '../publish/store.js'"],
    ['lib/exec.ts spawns', 'src/lib/exec.ts', "import { execa } from 'execa'"],
    ['lib/tasks.ts renders', 'src/lib/tasks.ts', "import { Listr } from 'listr2'"],
    ['validate runs onnxruntime', 'src/validate/x.ts', "import ort from 'onnxruntime-node'"],
    ['workers are not processes', 'src/publish/x.ts', "import { Worker } from 'node:worker_threads'"],
    ['the lean path imports its own modules', 'src/fast-path.ts', "import { renderError } from './lib/render.js'\nimport { currentReport } from './publish/current.js'\nimport { storeRoot } from './lib/env.js'"],
  ])('allows: %s', async (_what, path, code) => {
    expect(await restricted(path, code)).toEqual([])
  })
})
