/**
 * build-engine for decoders (issue 13, acceptance 5): the native export of a tiny causal LM published for
 * the onnx target (fp32 against PyTorch's reference.json, fp16 against the fp32 export) and the trt target
 * (the trtexec double), and a reader that opens the published version and generates PyTorch's tokens.
 */
import { readFileSync } from 'node:fs'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DOUBLE } from '../helpers/build-helpers.js'
import { cliEnv } from '../helpers/hub-cli.js'
import { cli, envelope, repoRoot } from '../helpers/store-helpers.js'
import { openSession } from '../../src/reader/index.js'
import { generate } from '../../src/validate/generate.js'
import { generateText } from '../../src/validate/generate-text.js'

const DECODERS = join(repoRoot, 'fixtures', 'hf-tiny-decoders')
let dir: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mf-e2e-build-decoder-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

let n = 0
async function home() {
  const h = join(dir, `case-${n++}`)
  await mkdir(h)
  const env = cliEnv({ TRTEXEC: DOUBLE, MODELFORGE_CACHE: join(h, 'cache'), HF_HUB_CACHE: join(h, 'hf'), HF_HUB_OFFLINE: '1', PATH: dirname(process.execPath) + ':/usr/bin:/bin', MODEL_STORE_ROOT: '', STRICT_MODEL_STORE: '' })
  return { store: join(h, 'store'), env }
}
const reference = (name: string) => JSON.parse(readFileSync(join(DECODERS, name, 'reference.json'), 'utf8')) as { greedy: { prompt: number[]; max_new_tokens: number; sequence: number[] } }

describe('build-engine --task text-generation-with-past', () => {
  it('onnx target, fp32: validated against PyTorch by prefill, decode and greedy; a reader generates the same tokens', async () => {
    const { store, env } = await home()
    const r = cli(['build-engine', '--agent', 'llm', '--model-id', join(DECODERS, 'tiny-llama'), '--target', 'onnx', '--exporter', 'native', '--task', 'text-generation-with-past', '--store', store, '--json'], { env })
    expect(r.code, r.stderr).toBe(0)
    const out = envelope(r).result as { version: string; path: string }
    const manifest = JSON.parse(readFileSync(join(out.path, 'manifest.json'), 'utf8'))
    expect(manifest.build).toMatchObject({ task: 'text-generation-with-past', exporter: 'native' })
    expect(manifest.validation).toMatchObject({ reference: 'reference.json of the source', passed: true, greedy: { passed: true, first_divergence: null } })
    expect(manifest.validation.outputs.map((o: { name: string }) => o.name)).toEqual(['logits (prefill)', 'logits (decode)'])
    const paths = manifest.files.map((f: { path: string }) => f.path)
    for (const f of ['model.onnx', 'onnx/model.onnx', 'genai_config.json', 'tokenizer.json', 'generation_config.json']) expect(paths).toContain(f)

    const session = await openSession('llm', { root: store, strict: true })
    try {
      const ref = reference('tiny-llama')
      const g = await generate(session, [ref.greedy.prompt], { maxNewTokens: ref.greedy.max_new_tokens })
      expect(g.sequences[0]).toEqual(ref.greedy.sequence)
      // Text in, text out with the version's own tokenizer.
      const t = await generateText(session, ['the model store'], { tokenizer: session.dir, maxNewTokens: 4 })
      expect(t.texts).toHaveLength(1)
      expect(t.newTokens[0]!.length).toBeGreaterThan(0)
    } finally {
      await session.close()
    }
  })

  it('onnx target, fp16: the transform, checked against the fp32 export at 1e-2', async () => {
    const { store, env } = await home()
    const r = cli(['build-engine', '--agent', 'llm16', '--model-id', join(DECODERS, 'tiny-qwen2'), '--target', 'onnx', '--exporter', 'native', '--precision', 'fp16', '--store', store, '--json'], { env })
    expect(r.code, r.stderr).toBe(0)
    const m = JSON.parse(readFileSync(join((envelope(r).result as { path: string }).path, 'manifest.json'), 'utf8'))
    expect(m.validation).toMatchObject({ reference: 'fp32/model.onnx (the fp32 export)', precision: 'fp16', passed: true })
    const session = await openSession('llm16', { root: store, strict: true })
    try {
      const ref = reference('tiny-qwen2')
      expect((await generate(session, [ref.greedy.prompt], { maxNewTokens: ref.greedy.max_new_tokens })).sequences[0]).toEqual(ref.greedy.sequence)
    } finally {
      await session.close()
    }
  })

  it('trt target with the double: the profile holds prefill and decode, the engine validated on a prefill', async () => {
    const { store, env } = await home()
    const r = cli(['build-engine', '--agent', 'llmtrt', '--model-id', join(DECODERS, 'tiny-gpt2'), '--target', 'trt', '--exporter', 'native', '--precision', 'fp16', '--seq', '1:8:32', '--past', '0:16:31', '--store', store, '--json'], { env })
    expect(r.code, r.stderr).toBe(0)
    const m = JSON.parse(readFileSync(join((envelope(r).result as { path: string }).path, 'manifest.json'), 'utf8'))
    const argv: string[] = m.build.trtexec.argv
    expect(argv.find((a) => a.startsWith('--maxShapes='))).toMatch(/past_key_values\.0\.key:32x4x31x8/)
    expect(argv.find((a) => a.startsWith('--maxShapes='))).toMatch(/attention_mask:32x63/)
    expect(m.build.trtexec.validation_argv.find((a: string) => a.startsWith('--shapes='))).toMatch(/past_key_values\.0\.key:8x4x0x8/)
    expect(m.validation.passed).toBe(true)
  })

  it('--precision int8 for a decoder is refused (exit 2) and nothing is published', async () => {
    const { store, env } = await home()
    const r = cli(['build-engine', '--agent', 'llm8', '--model-id', join(DECODERS, 'tiny-llama'), '--target', 'onnx', '--exporter', 'native', '--precision', 'int8', '--calib-data', join(repoRoot, 'fixtures', 'calib', 'tiny-words.txt'), '--store', store], { env })
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/int8 is not supported for decoders/)
  })
})
