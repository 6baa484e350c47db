/**
 * The pipeline's own overhead (issue 12): wall time of `build-engine --target onnx` (fp32) on the
 * MiniLM-L6-sized checkpoint (bench/minilm.ts), minus the time of its export, validate and finalize steps
 * each run alone as commands (`export --exporter native`, `validate <model> --reference <model>`, `store
 * import`), as a fraction of the whole. Goal: under 10%.
 *
 * Each side is the median of 3 runs. What the difference holds: resolving and hashing the source, the
 * build key, staging, the latency measurement (build-engine's perf.json, which no step-alone command makes)
 * and the task list; what favours the pipeline: one process start instead of three, and no copy into the
 * store (build-engine writes into the staging directory, import copies). The standalone validate runs its
 * reference with optimizations on; build-engine's fp32 self-check runs it with them off (a little slower).
 */
import { mkdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { makeMiniLmCheckpoint } from './minilm.js'
import { measure, median, repoRoot } from './util.js'
import { scratch } from './util.js'

const work = scratch('pipeline')
const model = join(work, 'minilm-l6')
mkdirSync(model)
const weightBytes = await makeMiniLmCheckpoint(model)
console.log(`checkpoint: ${(weightBytes / 2 ** 20).toFixed(1)} MiB of float32 safetensors (MiniLM-L6 shape)`)

const run = join(repoRoot, 'bin', 'run.js')
const env = { ...process.env, CI: '1', HF_HUB_OFFLINE: '1', MODEL_STORE_ROOT: '', STRICT_MODEL_STORE: '' }
function timed(args: string[]): number {
  const m = measure(process.execPath, [run, ...args], { env })
  if (m.status !== 0) throw new Error(`${args.slice(0, 2).join(' ')} failed (exit ${m.status}): ${m.stdout}`)
  return m.seconds
}

const runs = 3
const whole: number[] = []
const steps: { export: number; validate: number; finalize: number }[] = []
for (let i = 0; i < runs; i++) {
  // Alternate the two sides, so that a slow moment of the machine does not fall on one side only.
  whole.push(timed(['build-engine', '--agent', 'bench', '--model-id', model, '--target', 'onnx', '--store', join(work, `store-${i}`), '--exporter', 'native', '--json']))
  const out = join(work, `out-${i}`)
  const e = timed(['export', model, '--out', out, '--exporter', 'native', '--json'])
  const v = timed(['validate', join(out, 'model.onnx'), '--reference', join(out, 'model.onnx'), '--json'])
  const f = timed(['store', 'import', 'bench', 'v1', out, '--store', join(work, `alone-${i}`), '--json'])
  steps.push({ export: e, validate: v, finalize: f })
}
const wall = median(whole)
const alone = median(steps.map((s) => s.export + s.validate + s.finalize))
const med = (k: 'export' | 'validate' | 'finalize') => median(steps.map((s) => s[k]))
console.log(`build-engine --target onnx (fp32): ${wall.toFixed(2)} s median of ${runs} (${whole.map((s) => s.toFixed(2)).join(', ')})`)
console.log(`steps alone: export ${med('export').toFixed(2)} s + validate ${med('validate').toFixed(2)} s + store import ${med('finalize').toFixed(2)} s = ${alone.toFixed(2)} s (median of the sums)`)
const overhead = (wall - alone) / wall
const ok = overhead < 0.1
console.log(`pipeline overhead: (${wall.toFixed(2)} - ${alone.toFixed(2)}) / ${wall.toFixed(2)} = ${(overhead * 100).toFixed(1)}% of the whole (goal < 10%) ${ok ? 'OK' : 'MISSED'}`)
rmSync(work, { recursive: true, force: true })
