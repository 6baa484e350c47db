/**
 * What `modelforge build` costs on top of trtexec (issue 10, acceptance 7): the trtexec double builds for a
 * fixed 5 s (TRTEXEC_DOUBLE_BUILD_SECONDS=5); the wall time of `modelforge build --skip-benchmark
 * --skip-validation` minus the double's own time (the sum of its runs' end - start from
 * TRTEXEC_DOUBLE_RECORD, the version probe included when one ran), as a fraction of the double's time.
 * Goal: under 3%. Validation is excluded from the ratio (it runs onnxruntime and a second trtexec on
 * purpose); a validated run's validation time is reported beside it.
 *
 * Steady state, as on a CI runner that built before: one untimed build first fills the probe cache and
 * the remembered GPU; every timed build gets a fresh timing-cache directory, since a build whose tactics
 * are all in a loaded cache is faster (a quarter of the time in the double) and would shrink the baseline.
 */
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { median, repoRoot, report, scratch } from './util.js'

const RUNS = 3
const DOUBLE = join(repoRoot, 'test', 'helpers', 'trtexec-double', 'trtexec')
const MODEL = join(repoRoot, 'fixtures', 'hf-tiny', 'tiny-bert', 'model.onnx')

const root = scratch('build')
const record = join(root, 'record.jsonl')
const env = {
  ...process.env,
  TRTEXEC: DOUBLE,
  TRTEXEC_DOUBLE_BUILD_SECONDS: '5',
  TRTEXEC_DOUBLE_RECORD: record,
  MODELFORGE_CACHE: join(root, 'cache'),
  NO_COLOR: '1',
  CI: '1',
}

interface Run { start: number; end: number; argv: string[] }

function runs(): Run[] {
  return existsSync(record) ? readFileSync(record, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Run) : []
}

/** One build through the CLI: its wall time and the double's own time in it, in seconds. */
function build(name: string, extra: string[]): { wall: number; double: number; stdout: string } {
  const before = runs().length
  const t0 = process.hrtime.bigint()
  const r = spawnSync(process.execPath, [join(repoRoot, 'bin', 'run.js'), 'build', MODEL, '--out', join(root, name), '--timing-cache-dir', join(root, `tc-${name}`), '--skip-benchmark', ...extra], { env, encoding: 'utf8' })
  const wall = Number(process.hrtime.bigint() - t0) / 1e9
  if (r.status !== 0) throw new Error(`build ${name} failed (exit ${r.status}): ${r.stderr}`)
  const double = runs().slice(before).reduce((s, x) => s + (x.end - x.start), 0) / 1000
  return { wall, double, stdout: r.stdout }
}

console.log(`load average before: ${loadavg().map((x) => x.toFixed(2)).join(' ')}`)
build('warm-up', ['--skip-validation'])
const overheads: number[] = []
const doubles: number[] = []
for (let i = 0; i < RUNS; i++) {
  const m = build(`run-${i}`, ['--skip-validation'])
  overheads.push(m.wall - m.double)
  doubles.push(m.double)
  console.log(`run ${i + 1}: wall ${m.wall.toFixed(3)} s, trtexec double ${m.double.toFixed(3)} s, modelforge ${((m.wall - m.double) * 1000).toFixed(0)} ms`)
}
const validated = build('validated', ['--json'])
const result = JSON.parse(validated.stdout).result as { timings: { validationMs: number; buildMs: number; totalMs: number } }
console.log(`a validated build: wall ${validated.wall.toFixed(3)} s, of which validation ${(result.timings.validationMs / 1000).toFixed(3)} s (onnxruntime reference and trtexec's validation run; not in the ratio)`)
const ok = report('build overhead / trtexec double time', median(overheads), median(doubles), 0.03)
console.log(`load average after: ${loadavg().map((x) => x.toFixed(2)).join(' ')}`)
console.log(ok ? 'build bench: goal met' : 'build bench: goal missed')
