/**
 * `modelforge build` end to end (the built CLI, bin/run.js) against the trtexec double: the report, --json,
 * --dry-run's pasteable lines, exit codes 3 and 4 with nothing left in --out, and Ctrl-C / --timeout
 * stopping trtexec with no orphan and no partial output.
 */
import { spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { alive, buildRun, DOUBLE, doubleEnv, doubleRuns, leftovers, TINY_BERT } from '../helpers/build-helpers.js'
import { cli, envelope, repoRoot, runJs } from '../helpers/store-helpers.js'

let dir: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mf-e2e-build-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

let n = 0
async function place(): Promise<{ home: string; out: string }> {
  const home = join(dir, `case-${n++}`)
  await mkdir(home)
  return { home, out: join(home, 'out') }
}

/** Runs the CLI in the background, as a user's terminal would, and says when it ended. */
function start(args: string[], env: Record<string, string | undefined>) {
  const child = spawn(process.execPath, [runJs, ...args], { cwd: repoRoot, env: { ...env, NO_COLOR: '1', CI: '1' } })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d) => (stdout += d))
  child.stderr.on('data', (d) => (stderr += d))
  const ended = new Promise<{ code: number | null; stdout: string; stderr: string; at: number }>((resolve) => {
    child.on('close', (code) => resolve({ code, stdout, stderr, at: Date.now() }))
  })
  return { child, ended }
}

describe('modelforge build', () => {
  it('builds, benchmarks and validates an engine, and reports what it made (exit 0)', async () => {
    const { home, out } = await place()
    const r = cli(['build', TINY_BERT, '--out', out, '--precision', 'fp16'], { env: doubleEnv(home) })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(new RegExp(`^Built ${out}/engine.plan \\(.*, fp16\\) with TensorRT 10\\.16\\.1 on NVIDIA A100-SXM4-80GB \\(compute 8\\.0\\)`))
    expect(r.stdout).toMatch(/throughput: +[\d.]+ qps at input_ids 8x64/)
    expect(r.stdout).toMatch(/PASSED: 2 of 2 outputs within tolerance/)
    expect(r.stdout).toContain(`${out}/engine.json`)
    expect(r.stderr).toMatch(/\[COMPLETED\] Validated against onnxruntime \(fp16 rule\)/)
    expect(existsSync(join(out, 'perf.json'))).toBe(true)
  })

  it('--json: one object with the argv, tool, GPU, timings and files', async () => {
    const { home, out } = await place()
    const r = cli(['build', TINY_BERT, '--out', out, '--skip-benchmark', '--json'], { env: doubleEnv(home) })
    expect(r.code, r.stderr).toBe(0)
    const { status, result } = envelope(r)
    expect(status).toBe(0)
    expect(result).toMatchObject({
      precision: 'fp32',
      tool: { path: DOUBLE, source: 'TRTEXEC', version: { text: '10.16.1' } },
      gpu: { device: { name: 'NVIDIA A100-SXM4-80GB' } },
      argv: { build: expect.arrayContaining(['--skipInference']) },
      timings: { probeMs: expect.any(Number), buildMs: expect.any(Number), validationMs: expect.any(Number), totalMs: expect.any(Number) },
      validation: { passed: true },
      skipped: [{ files: ['times.json', 'profile.json', 'perf.json'] }],
    })
    expect(result.files.map((f: { path: string }) => f.path)).toContain('engine.plan')
  })

  it('--dry-run prints the build and validation command lines, one per line, and writes nothing', async () => {
    const { home, out } = await place()
    const r = cli(['build', TINY_BERT, '--out', out, '--precision', 'fp16', '--dry-run'], { env: doubleEnv(home) })
    expect(r.code, r.stderr).toBe(0)
    const lines = r.stdout.trimEnd().split('\n')
    expect(lines).toHaveLength(2)
    expect(lines[0]).toBe(`mkdir -p ${out} && cd ${out} && ${DOUBLE} --onnx=${TINY_BERT} --saveEngine=engine.plan --fp16 --timingCacheFile=timing.cache --minShapes=input_ids:1x1,attention_mask:1x1,token_type_ids:1x1 --optShapes=input_ids:8x64,attention_mask:8x64,token_type_ids:8x64 --maxShapes=input_ids:32x64,attention_mask:32x64,token_type_ids:32x64 --profilingVerbosity=detailed --exportLayerInfo=layers.json --exportTimes=times.json --exportProfile=profile.json --separateProfileRun`)
    expect(lines[1]).toMatch(new RegExp(`^cd ${out} && ${DOUBLE} --loadEngine=engine.plan --shapes=input_ids:8x64,`))
    expect(existsSync(out)).toBe(false)
    expect(existsSync(join(home, 'cache'))).toBe(false)
  })

  it('the pasted build line builds the engine, as the user would run it', async () => {
    const { home, out } = await place()
    const r = cli(['build', TINY_BERT, '--out', out, '--dry-run', '--skip-benchmark'], { env: doubleEnv(home) })
    const line = r.stdout.split('\n')[0]!
    const { spawnSync } = await import('node:child_process')
    const sh = spawnSync('sh', ['-c', line], { env: doubleEnv(home), encoding: 'utf8' })
    expect(sh.status, sh.stderr).toBe(0)
    expect(sh.stdout).toMatch(/&&&& PASSED TensorRT\.trtexec/)
    expect(existsSync(join(out, 'engine.plan'))).toBe(true)
  })

  it('an engine whose outputs are off is exit 4 with the per-output table; --out is not created', async () => {
    const { home, out } = await place()
    const r = cli(['build', TINY_BERT, '--out', out], { env: doubleEnv(home, { TRTEXEC_DOUBLE_FAULT: 'corrupt-outputs' }) })
    expect(r.code).toBe(4)
    expect(r.stdout).toMatch(/^output +shape +max abs/m)
    expect(r.stdout).toMatch(/last_hidden_state +\[8,64,32\].*FAIL: /)
    expect(r.stderr).toMatch(/Error: engine validation failed for 2 of 2 outputs/)
    expect(existsSync(out)).toBe(false)
    expect(leftovers(out)).toEqual([])
  })

  it('out of memory is exit 3 with the cause, the [E] lines and a hint; under --json the failure class', async () => {
    const { home, out } = await place()
    const r = cli(['build', TINY_BERT, '--out', out, '--json'], { env: doubleEnv(home, { TRTEXEC_DOUBLE_FAULT: 'oom' }) })
    expect(r.code).toBe(3)
    const { status, error } = envelope(r)
    expect(status).toBe(3)
    expect(error).toMatchObject({ code: 'TRTEXEC_FAILED', details: { failure: { class: 'out-of-memory' } } })
    expect(error!.message).toMatch(/\[E\] /)
    expect(error!.hint).toContain(error!.details.log)
    await rm(error!.details.log)
    expect(existsSync(out)).toBe(false)
  })

  it('no trtexec is exit 3 with how to install it', async () => {
    const { home, out } = await place()
    const r = cli(['build', TINY_BERT, '--out', out], { env: { ...doubleEnv(home), TRTEXEC: undefined, PATH: home } })
    expect(r.code).toBe(3)
    expect(r.stderr).toMatch(/Error: trtexec was not found/)
    expect(r.stderr).toMatch(/Hint: Install TensorRT/)
  })

  it('a bad range is exit 2, a bad --timeout too', async () => {
    const { home, out } = await place()
    expect(cli(['build', TINY_BERT, '--out', out, '--seq', '1:128:4096'], { env: doubleEnv(home) }).code).toBe(2)
    expect(cli(['build', TINY_BERT, '--out', out, '--timeout', 'soon'], { env: doubleEnv(home) }).code).toBe(2)
  })

  it('Ctrl-C during the build stops trtexec and exits 130 with nothing written', async () => {
    const { home, out } = await place()
    const env = doubleEnv(home, { TRTEXEC_DOUBLE_BUILD_SECONDS: '30' })
    const { child, ended } = start(['build', TINY_BERT, '--out', out], env)
    const pid = await buildRun(child.pid!)
    // Well into its 30 s build.
    await new Promise((r) => setTimeout(r, 1000))
    const sent = Date.now()
    child.kill('SIGINT')
    const r = await ended
    expect(r.code, r.stderr).toBe(130)
    expect(r.at - sent).toBeLessThan(5000)
    expect(r.stderr).toMatch(/Error: build interrupted: trtexec was stopped and nothing was written/)
    expect(alive(pid)).toBe(false)
    expect(doubleRuns(home).find((x) => x.pid === pid)?.signal).toBe('SIGTERM')
    expect(existsSync(out)).toBe(false)
    expect(leftovers(out)).toEqual([])
  })

  it('--timeout 2s stops trtexec and exits 3 with nothing written', async () => {
    const { home, out } = await place()
    const env = doubleEnv(home, { TRTEXEC_DOUBLE_BUILD_SECONDS: '30' })
    const { ended } = start(['build', TINY_BERT, '--out', out, '--timeout', '2s'], env)
    const r = await ended
    expect(r.code, r.stderr).toBe(3)
    expect(r.stderr).toMatch(/Error: trtexec was stopped: the build ran past --timeout 2 s while building the engine/)
    const build = doubleRuns(home).find((x) => x.argv.some((a) => a.startsWith('--onnx=')))
    expect(alive(build!.pid)).toBe(false)
    expect(existsSync(out)).toBe(false)
    expect(leftovers(out)).toEqual([])
  })

  it('names the engine\'s files in engine.json relative to --out, so its commands rerun there', async () => {
    const { home, out } = await place()
    expect(cli(['build', TINY_BERT, '--out', out, '--skip-benchmark', '--skip-validation'], { env: doubleEnv(home) }).code).toBe(0)
    const record = JSON.parse(readFileSync(join(out, 'engine.json'), 'utf8'))
    expect(record.trtexec.argv).toContain('--saveEngine=engine.plan')
  })
})
