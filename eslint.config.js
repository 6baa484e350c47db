import js from '@eslint/js'
import tseslint from 'typescript-eslint'

/**
 * The layers of src/ (docs/architecture.md): an area may import only the areas below it. This map is the
 * whole rule; the linter turns it into one `no-restricted-imports` entry per area, so a wrong import fails
 * `npm run lint` (test/lint/layers.test.ts shows each kind).
 */
const BELOW = {
  lib: [],
  hub: ['lib'],
  publish: ['lib'],
  onnx: ['lib'],
  validate: ['onnx', 'lib'],
  export: ['hub', 'validate', 'onnx', 'lib'],
  builders: ['validate', 'onnx', 'lib'],
  registry: ['publish', 'lib'],
  distribution: ['registry', 'publish', 'lib'],
  toy: ['export', 'hub', 'validate', 'onnx', 'publish', 'lib'],
  reader: ['builders', 'hub', 'publish', 'validate', 'onnx', 'lib'],
  pipeline: ['export', 'builders', 'distribution', 'registry', 'reader', 'publish', 'hub', 'validate', 'onnx', 'lib'],
}
const AREAS = Object.keys(BELOW)

// Packages with one home each: processes start only in lib/exec.ts, the terminal is the commands' (oclif)
// and lib/tasks.ts's (listr2), onnxruntime is reached through validate.
const SPAWN = ['node:child_process', 'child_process', 'execa']
const packageRules = (file) => [
  ...SPAWN.filter(() => file !== 'src/lib/exec.ts').map((name) => ({ name, message: 'Only src/lib/exec.ts starts processes: use its run().' })),
  ...(file === 'src/lib/tasks.ts' ? [] : [{ name: 'listr2', message: 'Library code reports through lib/progress.ts; only lib/tasks.ts renders (listr2).' }]),
  ...(file === 'src/validate' ? [] : [{ name: 'onnxruntime-node', message: 'Reach onnxruntime through src/validate (runtime.ts).' }]),
  ...(file === 'src/commands' || file === 'src/lib/base-command.ts' || file === 'src/cli.ts' ? [] : [{ name: '@oclif/core', message: 'Only commands (and lib/base-command.ts) know oclif; logic lives in library modules.' }]),
]

/** Relative imports that reach an area not below this one (and src/commands, which nothing imports). */
function areaPatterns(area) {
  const banned = AREAS.filter((a) => a !== area && !BELOW[area].includes(a))
  return [
    { regex: `^(\\.\\./)+(${[...banned, 'commands'].join('|')})(/|$)`, message: `src/${area} may import only ${BELOW[area].join(', ') || 'node built-ins and packages'} (docs/architecture.md).` },
    { regex: '^(\\./)?commands/', message: 'Nothing imports src/commands.' },
  ]
}

/**
 * The lean reader path: `store current` is answered by bin/run.js through these modules without oclif, so
 * they import only node built-ins and each other.
 */
const LEAN = ['src/fast-path.ts', 'src/lib/render.ts', 'src/lib/errors.ts', 'src/lib/error-codes.ts', 'src/lib/env.ts', 'src/lib/json.ts', 'src/publish/current.ts', 'src/publish/names.ts']
const leanPatterns = [
  { regex: '^(?!node:|\\.)', message: 'The lean reader path imports node built-ins only (no packages).' },
  { regex: '^\\.(?!.*/(errors|error-codes|env|json|render|names|current)\\.js$)', message: 'The lean reader path imports only lib/errors (and its codes), lib/env, lib/json, lib/render, publish/names and publish/current.' },
]

const restrict = (paths, patterns) => ['error', { paths, patterns }]

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', 'fixtures/**', 'bench/.work/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  // Flat config: the last matching entry sets the rule, so each scope states its whole list.
  { files: ['src/**/*.ts'], rules: { 'no-restricted-imports': restrict(packageRules('src'), [{ regex: '^(\\./|(\\.\\./)+)commands/', message: 'Nothing imports src/commands.' }]) } },
  ...AREAS.map((area) => ({ files: [`src/${area}/**/*.ts`], rules: { 'no-restricted-imports': restrict(packageRules(area === 'validate' ? 'src/validate' : 'src'), areaPatterns(area)) } })),
  { files: ['src/cli.ts'], rules: { 'no-restricted-imports': restrict(packageRules('src/cli.ts'), [{ regex: '^(\\./|(\\.\\./)+)commands/', message: 'Nothing imports src/commands.' }]) } },
  { files: ['src/commands/**/*.ts'], rules: { 'no-restricted-imports': restrict(packageRules('src/commands'), []) } },
  ...['src/lib/exec.ts', 'src/lib/tasks.ts', 'src/lib/base-command.ts'].map((file) => ({ files: [file], rules: { 'no-restricted-imports': restrict(packageRules(file), areaPatterns('lib')) } })),
  ...LEAN.map((file) => ({ files: [file], rules: { 'no-restricted-imports': restrict(packageRules(file), [...(file.startsWith('src/fast-path') ? [] : areaPatterns(file.split('/')[1])), ...leanPatterns]) } })),
  // Tests, benches and scripts may spawn (they start the CLI, servers and tools) and import anything.
  { files: ['bin/**/*.js', '.ci/**/*.mjs', 'scripts/**/*.mjs'], languageOptions: { globals: { process: 'readonly', console: 'readonly' } } },
)
