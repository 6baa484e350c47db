/**
 * `modelforge build-engine` end to end (the built CLI): README's main job on the bundled tiny BERT with no
 * GPU and no network, engines from the trtexec double (TensorRT 10 and 11), a repo id from the loopback mock
 * Hub and then offline from the cache, a failed validation publishing nothing, the build key, --json against
 * the schema in schemas/, GITHUB_STEP_SUMMARY, --dry-run, and Ctrl-C / SIGKILL leaving the store whole.
 */
import { spawn } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { Ajv } from 'ajv'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { alive, buildRun, DOUBLE } from '../helpers/build-helpers.js'
import { cliEnv, runCli } from '../helpers/hub-cli.js'
import { MockHub } from '../helpers/mock-hub.js'
import { cli, envelope, repoRoot, runJs, snapshot } from '../helpers/store-helpers.js'
import { checkEngine, openSession } from '../../src/reader/index.js'

const TINY = join(repoRoot, 'fixtures', 'hf-tiny', 'tiny-bert')
const CALIB = join(repoRoot, 'fixtures', 'calib', 'tiny-words.txt')
const today = `v${new Date().toISOString().slice(0, 10)}`

const ajv = new Ajv({ allErrors: true })
const checkJson = ajv.compile(JSON.parse(readFileSync(join(repoRoot, 'schemas', 'build-engine.schema.json'), 'utf8')))
function assertSchema(json: unknown): void {
  const ok = checkJson(json)
  expect(ok, JSON.stringify(checkJson.errors, null, 1)).toBe(true)
}

let dir: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mf-e2e-build-engine-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

let n = 0
/** A fresh home: the store, the HF cache and the modelforge cache (probe, timing caches) are its own. */
async function home(): Promise<{ home: string; store: string; env: (extra?: Record<string, string>) => NodeJS.ProcessEnv }> {
  const h = join(dir, `case-${n++}`)
  await mkdir(h)
  return {
    home: h,
    store: join(h, 'store'),
    env: (extra = {}) => cliEnv({
      TRTEXEC: DOUBLE, MODELFORGE_CACHE: join(h, 'cache'), HF_HUB_CACHE: join(h, 'hf'),
      PATH: dirname(process.execPath) + ':/usr/bin:/bin', MODEL_STORE_ROOT: '', STRICT_MODEL_STORE: '', ...extra,
    }),
  }
}

const manifestOf = (store: string, agent: string, version: string) => JSON.parse(readFileSync(join(store, agent, 'versions', version, 'manifest.json'), 'utf8'))
const staged = (store: string, agent: string) => (existsSync(join(store, agent, 'versions')) ? readdirSync(join(store, agent, 'versions')).filter((v) => v.endsWith('.tmp')) : [])

describe('modelforge build-engine: the onnx target', () => {
  it("README's main job: the tiny bundled model into ./model-store as int8, with no GPU and no network; store verify passes", async () => {
    const { home: cwd, env } = await home()
    const run = cli(['build-engine', '--agent', 'demo', '--model-id', TINY, '--target', 'onnx', '--precision', 'int8', '--calib-data', CALIB], { cwd, env: env({ HF_HUB_OFFLINE: '1' }) })
    expect(run.code, run.stderr).toBe(0)
    expect(run.stdout).toContain(`Built demo/${today} (onnx, int8)`)
    expect(run.stderr).toMatch(/\[COMPLETED\] model\.onnx: int8/)
    const verify = cli(['store', 'verify'], { cwd, env: env() })
    expect(verify.code, verify.stdout + verify.stderr).toBe(0)
    expect(verify.stdout).toContain(`ok  demo/${today}`)

    const store = join(cwd, 'model-store')
    const m = manifestOf(store, 'demo', today)
    expect(Object.keys(m)).toEqual(expect.arrayContaining(['source', 'build', 'validation', 'performance', 'artifacts']))
    expect(m.source.path).toBe(TINY)
    expect(m.source.files.map((f: { path: string }) => f.path)).toContain('model.safetensors')
    expect(m.build).toMatchObject({ target: 'onnx', precision: 'int8', created_by: 'modelforge build-engine' })
    expect(m.build.key).toMatch(/^[0-9a-f]{64}$/)
    expect(m.build.quantize.calibration.method).toBe('entropy')
    expect(m.validation).toMatchObject({ reference: 'fp32/model.onnx (the fp32 export)', precision: 'int8', passed: true })
    expect(m.validation.outputs.map((o: { name: string }) => o.name).sort()).toEqual(['last_hidden_state', 'pooler_output'])
    expect(m.performance.source).toBe('onnxruntime-node')
    expect(m.performance.latency_ms.median).toBeGreaterThan(0)
    expect(m.artifacts).toEqual([
      { path: 'model.onnx', kind: 'onnx', precision: 'int8', role: 'serve' },
      { path: 'fp32/model.onnx', kind: 'onnx', precision: 'fp32', role: 'reference' },
    ])
    const files = m.files.map((f: { path: string }) => f.path)
    for (const f of ['model.onnx', 'fp32/model.onnx', 'config.json', 'tokenizer.json', 'vocab.txt', 'build.log', 'perf.json', 'validation.json']) expect(files).toContain(f)
    expect(readFileSync(join(store, 'demo', 'current', 'build.log'), 'utf8')).toMatch(/quantize: model\.onnx: int8/)

    // A service reads what it published: the int8 model, in onnxruntime.
    const session = await openSession('demo', { root: store, strict: true })
    try {
      expect(session).toMatchObject({ source: 'store', version: today, model: join(store, 'demo', 'versions', today, 'model.onnx') })
      const ids = { dtype: 'int64' as const, dims: [1, 4], data: new BigInt64Array([2n, 30n, 31n, 3n]) }
      const out = await session.run({ input_ids: ids, attention_mask: { ...ids, data: new BigInt64Array([1n, 1n, 1n, 1n]) }, token_type_ids: { ...ids, data: new BigInt64Array(4) } })
      expect(out.last_hidden_state!.dims).toEqual([1, 4, 32])
      expect([...(out.pooler_output!.data as Float32Array)].every(Number.isFinite)).toBe(true)
    } finally {
      await session.close()
    }
  })

  it('fp32 validates against the source\'s reference.json, and a reference that disagrees publishes nothing (exit 4)', async () => {
    const { home: cwd, store, env } = await home()
    const ok = cli(['build-engine', '--agent', 'a', '--model-id', TINY, '--target', 'onnx', '--store', store, '--json'], { cwd, env: env() })
    expect(ok.code, ok.stderr).toBe(0)
    expect(envelope(ok).result.metrics.validation.reference).toBe('reference.json of the source')
    // PyTorch's outputs agree with the export to about 6e-7: tolerances of 1e-12 cannot hold.
    const bad = cli(['build-engine', '--agent', 'b', '--model-id', TINY, '--target', 'onnx', '--store', store, '--json',
      '--reference', join(TINY, 'reference.json'), '--atol', '1e-12', '--rtol', '1e-12'], { cwd, env: env() })
    expect(bad.code, bad.stderr).toBe(4)
    const e = envelope(bad).error!
    expect(e.code).toBe('VALIDATION_FAILED')
    expect(e.message).toMatch(/^build-engine failed at validate/)
    expect(e.details.step).toBe('validate')
    expect(existsSync(join(store, 'b', 'current'))).toBe(false)
    expect(staged(store, 'b')).toEqual([])
    expect(readdirSync(join(store, 'b', 'versions'))).toEqual([])
  })
})

describe('modelforge build-engine: the trt target (trtexec double)', () => {
  it('fp16 and int8 on TensorRT 10 publish engine.plan with the engine facts in the manifest', async () => {
    const { store, env } = await home()
    const fp16 = await runCli(['build-engine', '--agent', 'fp16', '--model-id', TINY, '--store', store, '--json'], env())
    expect(fp16.code, fp16.stderr).toBe(0)
    assertSchema(fp16.json)
    const m = manifestOf(store, 'fp16', today)
    expect(m.build).toMatchObject({ target: 'trt', precision: 'fp16', tensorrt_version: '10.16.1', compute_capability: '8.0', gpu: { name: 'NVIDIA A100-SXM4-80GB', compute_capability: '8.0' } })
    expect(m.build.trtexec.argv).toContain('--fp16')
    expect(m.artifacts[0]).toMatchObject({ path: 'engine.plan', kind: 'tensorrt-engine', role: 'serve', precision: 'fp16', tensorrt_version: '10.16.1', gpu: { compute_capability: '8.0' } })
    expect(m.performance.source).toBe('trtexec')
    expect(m.performance.throughput_qps).toBeGreaterThan(0)
    expect(m.validation).toMatchObject({ passed: true, precision: 'fp16' })
    for (const f of ['engine.plan', 'engine.json', 'model.onnx', 'build.log', 'perf.json', 'validation.json', 'config.json']) expect(existsSync(join(store, 'fp16', 'current', f)), f).toBe(true)

    const int8 = await runCli(['build-engine', '--agent', 'int8', '--model-id', TINY, '--store', store, '--precision', 'int8', '--calib-data', CALIB, '--json'], env())
    expect(int8.code, int8.stderr).toBe(0)
    const mi = manifestOf(store, 'int8', today)
    expect(mi.build.built_from).toMatchObject({ file: 'model.int8.onnx', precision: 'int8' })
    expect(mi.artifacts.map((a: { path: string; role: string }) => `${a.role}:${a.path}`)).toEqual(['serve:engine.plan', 'reference:model.onnx', 'built-from:model.int8.onnx'])
    expect(JSON.parse(readFileSync(join(store, 'int8', 'current', 'engine.json'), 'utf8')).builtFrom.file).toBe('model.int8.onnx')
    // A GPU service checks the engine before deserializing it: built on an A100 (8.0), refused on an A10 (8.6).
    const here = await checkEngine(join(store, 'int8', 'current'), { gpus: [{ name: 'NVIDIA A10', computeCapability: '8.6', source: 'nvidia-smi' }], tensorrtVersion: '10.16.1' })
    expect(here.ok).toBe(false)
    expect(here.problems[0]).toMatch(/^built for compute capability 8\.0 \(NVIDIA A100-SXM4-80GB\), this GPU is 8\.6/)
    expect((await checkEngine(join(store, 'int8', 'current'), { gpus: [{ name: 'NVIDIA A100-PCIE-40GB', computeCapability: '8.0', source: 'nvidia-smi' }], tensorrtVersion: '10.16.1' })).ok).toBe(true)
    // openSession on an engine's version loads its fp32 model.onnx (onnxruntime cannot run engine.plan).
    const fallback = await openSession('int8', { root: store })
    expect(fallback.model).toBe(join(store, 'int8', 'versions', today, 'model.onnx'))
    await fallback.close()
  })

  it('TensorRT 11 builds fp16 and int8 from the transformed models', async () => {
    const { store, env } = await home()
    for (const [agent, extra] of [['fp16', []], ['int8', ['--precision', 'int8', '--calib-data', CALIB]]] as const) {
      const r = await runCli(['build-engine', '--agent', agent, '--model-id', TINY, '--store', store, '--json', ...extra], env({ TRTEXEC_DOUBLE_VERSION: '11.1.0' }))
      expect(r.code, r.stderr).toBe(0)
      const m = manifestOf(store, agent, today)
      expect(m.build.tensorrt_version).toBe('11.1.0')
      expect(m.build.built_from.file).toBe(`model.${agent}.onnx`)
      // TensorRT 11 builds every network strongly typed and has no --fp16 / --int8.
      expect(m.build.trtexec.argv.filter((a: string) => /^--(fp16|int8|best)/.test(a))).toEqual([])
      expect(m.build.trtexec.argv.join(' ')).toContain(`--onnx=model.${agent}.onnx`)
    }
  })

  it('a validation failure (the double corrupts the outputs) publishes nothing, exits 4 and leaves no staging directory', async () => {
    const { store, env } = await home()
    const good = await runCli(['build-engine', '--agent', 'a', '--model-id', TINY, '--store', store, '--json'], env())
    expect(good.code, good.stderr).toBe(0)
    const before = snapshot(store)
    const summary = join(dir, `summary-${n}.md`)
    const bad = await runCli(['build-engine', '--agent', 'a', '--model-id', TINY, '--store', store, '--json', '--force'], env({ TRTEXEC_DOUBLE_FAULT: 'corrupt-outputs', GITHUB_STEP_SUMMARY: summary }))
    expect(bad.code, bad.stderr).toBe(4)
    assertSchema(bad.json)
    expect(bad.json!.error!.code).toBe('VALIDATION_FAILED')
    expect(bad.json!.error!.message).toMatch(/^build-engine failed at validate/)
    expect(snapshot(store)).toEqual(before)
    expect(staged(store, 'a')).toEqual([])
    expect(await readFile(summary, 'utf8')).toMatch(/### modelforge build-engine: a FAILED at validate[\s\S]*nothing was published[\s\S]*\| build \| \*\*failed\*\*/)
  })

  it('the same build twice: the second reports the existing version and writes nothing; --force builds v<date>.1', async () => {
    const { store, env } = await home()
    const summary = join(dir, `summary-${n}.md`)
    const first = await runCli(['build-engine', '--agent', 'a', '--model-id', TINY, '--store', store, '--json'], env({ GITHUB_STEP_SUMMARY: summary }))
    expect(first.code, first.stderr).toBe(0)
    expect(first.json!.result).toMatchObject({ status: 'built', version: today, channel: 'current', published: true })
    const text = await readFile(summary, 'utf8')
    expect(text).toContain(`### modelforge build-engine: a ${today}, published to current`)
    expect(text).toMatch(/\| step \| result \| time \|\n\|---\|---\|---:\|\n\| source \|/)
    expect(text).toMatch(/\| output \| max abs err \| max rel err \| cosine \| result \|[\s\S]*\| last_hidden_state \|/)
    expect(text).toMatch(/\*\*Latency\*\* \(trtexec/)

    const before = snapshot(store)
    const again = await runCli(['build-engine', '--agent', 'a', '--model-id', TINY, '--store', store, '--json'], env())
    expect(again.code, again.stderr).toBe(0)
    assertSchema(again.json)
    expect(again.json!.result).toMatchObject({ status: 'up-to-date', version: today, buildKey: first.json!.result!.buildKey, channel: 'current' })
    expect(snapshot(store)).toEqual(before)
    const human = await runCli(['build-engine', '--agent', 'a', '--model-id', TINY, '--store', store], env())
    expect(human.stdout).toContain(`a/${today} is up to date`)

    const forced = await runCli(['build-engine', '--agent', 'a', '--model-id', TINY, '--store', store, '--json', '--force'], env())
    expect(forced.code, forced.stderr).toBe(0)
    expect(forced.json!.result).toMatchObject({ status: 'built', version: `${today}.1` })
    expect(readFileSync(join(store, 'a', 'current', 'manifest.json'), 'utf8')).toContain(`"version": "${today}.1"`)
    // Another precision is another build key: a new version without --force.
    const int8 = await runCli(['build-engine', '--agent', 'a', '--model-id', TINY, '--store', store, '--json', '--precision', 'int8', '--calib-data', CALIB, '--no-publish'], env())
    expect(int8.json!.result).toMatchObject({ status: 'built', version: `${today}.2`, published: false, channel: null })
    expect(readFileSync(join(store, 'a', 'current', 'manifest.json'), 'utf8')).toContain(`"version": "${today}.1"`)
  })

  it('--output-version names the version, --channel publishes elsewhere, and a taken name is exit 5', async () => {
    const { store, env } = await home()
    const r = await runCli(['build-engine', '--agent', 'a', '--model-id', TINY, '--store', store, '--json', '--output-version', 'v9', '--channel', 'staging'], env())
    expect(r.code, r.stderr).toBe(0)
    expect(r.json!.result).toMatchObject({ version: 'v9', channel: 'staging' })
    expect(existsSync(join(store, 'a', 'current'))).toBe(false)
    expect(readFileSync(join(store, 'a', 'staging', 'manifest.json'), 'utf8')).toContain('"version": "v9"')
    const taken = await runCli(['build-engine', '--agent', 'a', '--model-id', TINY, '--store', store, '--json', '--output-version', 'v9', '--force'], env())
    expect(taken.code).toBe(5)
    expect(taken.json!.error).toMatchObject({ code: 'VERSION_EXISTS' })
    expect(taken.json!.error!.message).toMatch(/failed at stage/)
  })

  it('--dry-run prints the steps, the exact trtexec lines and the paths, and writes nothing', async () => {
    const { home: h, store, env } = await home()
    const r = await runCli(['build-engine', '--agent', 'a', '--model-id', TINY, '--store', store, '--json', '--dry-run', '--batch', '1:2:4'], env())
    expect(r.code, r.stderr).toBe(0)
    assertSchema(r.json)
    const res = r.json!.result as { status: string; plan: { commands: string[]; paths: Record<string, string> } }
    expect(res.status).toBe('planned')
    const final = join(store, 'a', 'versions', today)
    expect(res.plan.paths).toEqual({ staging: `${final}.tmp`, version: final, current: join(store, 'a', 'current') })
    expect(res.plan.commands[0]).toContain(`mkdir -p ${final} && cd ${final} && ${DOUBLE}`)
    expect(res.plan.commands[0]).toContain(`--onnx=${final}/model.onnx`)
    expect(res.plan.commands[0]).toContain('--minShapes=input_ids:1x1')
    expect(res.plan.commands[0]).toContain('--maxShapes=input_ids:4x64')
    expect(existsSync(store)).toBe(false)
    expect(readdirSync(h)).toEqual([])
    const human = await runCli(['build-engine', '--agent', 'a', '--model-id', TINY, '--store', store, '--dry-run'], env())
    expect(human.stdout).toMatch(/Plan for a\/v[\d-]+ \(trt, fp16\); nothing was written:\n {2}source/)
  })
})

describe('modelforge build-engine: a repo id from the Hub', () => {
  let hub: MockHub
  beforeAll(async () => {
    hub = new MockHub()
    // tiny-bert without its shipped model.onnx and reference.json: the native exporter makes the ONNX.
    const files = ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'vocab.txt'].map((p) => ({ path: p, content: readFileSync(join(TINY, p)) }))
    hub.addRepo('org/tiny-bert', [files])
    await hub.start()
  })
  afterAll(async () => {
    await hub.stop()
  })

  it('fetches org/name and builds; then, the Hub stopped and HF_HUB_OFFLINE=1, builds again from the cache', async () => {
    const { home: h, store, env } = await home()
    const online = await runCli(['build-engine', '--agent', 'a', '--model-id', 'org/tiny-bert', '--store', store, '--target', 'onnx', '--precision', 'fp16', '--json'], env({ HF_ENDPOINT: hub.url }))
    expect(online.code, online.stderr).toBe(0)
    const r = online.json!.result as { source: Record<string, unknown> }
    expect(r.source).toMatchObject({ kind: 'hub', repo: 'org/tiny-bert', revision: 'main', fromCache: false })
    expect(hub.count()).toBeGreaterThan(0)
    const m = manifestOf(store, 'a', today)
    expect(m.source).toMatchObject({ repo: 'org/tiny-bert', revision: 'main', commit: r.source.commit })
    expect(m.build.exporter).toBe('native')
    expect(m.validation).toMatchObject({ precision: 'fp16', passed: true, reference: 'fp32/model.onnx (the fp32 export)' })

    await hub.stop()
    const store2 = join(h, 'store2')
    const offline = await runCli(['build-engine', '--agent', 'a', '--model-id', 'org/tiny-bert', '--store', store2, '--target', 'onnx', '--precision', 'fp16', '--json'], env({ HF_ENDPOINT: hub.url, HF_HUB_OFFLINE: '1' }))
    expect(offline.code, offline.stderr).toBe(0)
    expect(offline.json!.result).toMatchObject({ status: 'built', source: { kind: 'hub', fromCache: true, commit: r.source.commit }, buildKey: online.json!.result!.buildKey })
    const missing = await runCli(['build-engine', '--agent', 'a', '--model-id', 'org/other', '--store', store2, '--target', 'onnx', '--json'], env({ HF_ENDPOINT: hub.url, HF_HUB_OFFLINE: '1' }))
    expect(missing.code).toBe(6)
    expect(missing.json!.error!.message).toMatch(/^build-engine failed at source/)
    await hub.start()
  })
})

describe('modelforge build-engine: signals', () => {
  function start(args: string[], env: NodeJS.ProcessEnv, detached = false) {
    const child = spawn(process.execPath, [runJs, ...args], { cwd: repoRoot, env, detached })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    const ended = new Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })))
    return { child, ended }
  }

  it('SIGINT during the build stops trtexec (no orphan) and leaves the store as it was (exit 130)', async () => {
    const { store, env } = await home()
    const first = await runCli(['build-engine', '--agent', 'a', '--model-id', TINY, '--store', store, '--json'], env())
    expect(first.code, first.stderr).toBe(0)
    const before = snapshot(store)
    const { child, ended } = start(['build-engine', '--agent', 'a', '--model-id', TINY, '--store', store, '--force'], env({ TRTEXEC_DOUBLE_BUILD_SECONDS: '60' }))
    const trtexec = await buildRun(child.pid!)
    child.kill('SIGINT')
    const r = await ended
    expect(r.code, r.stderr).toBe(130)
    expect(r.stderr).toMatch(/interrupted/)
    expect(alive(trtexec)).toBe(false)
    expect(snapshot(store)).toEqual(before)
  })

  it('SIGKILL of the whole command: store gc removes the staging directory and current still verifies', async () => {
    const { store, env } = await home()
    const first = await runCli(['build-engine', '--agent', 'a', '--model-id', TINY, '--store', store, '--json'], env())
    expect(first.code, first.stderr).toBe(0)
    const { child, ended } = start(['build-engine', '--agent', 'a', '--model-id', TINY, '--store', store, '--force'], env({ TRTEXEC_DOUBLE_BUILD_SECONDS: '60' }), true)
    const trtexec = await buildRun(child.pid!)
    process.kill(-child.pid!, 'SIGKILL')
    const r = await ended
    expect(r.signal).toBe('SIGKILL')
    for (let i = 0; i < 50 && alive(trtexec); i++) await new Promise((res) => setTimeout(res, 100))
    expect(alive(trtexec)).toBe(false)
    expect(staged(store, 'a')).toEqual([`${today}.1.tmp`])
    const gc = cli(['store', 'gc', '--older-than', '0', '--store', store, '--json'], { env: env() })
    expect(gc.code, gc.stderr).toBe(0)
    expect(staged(store, 'a')).toEqual([])
    const verify = cli(['store', 'verify', '--store', store], { env: env() })
    expect(verify.code, verify.stdout + verify.stderr).toBe(0)
    expect(readFileSync(join(store, 'a', 'current', 'manifest.json'), 'utf8')).toContain(`"version": "${today}"`)
  })
})
