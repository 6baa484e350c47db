/** `modelforge validate` on a decoder: steps against PyTorch's reference, exit 4 naming the step, flags it refuses. */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cli, envelope, repoRoot } from '../helpers/store-helpers.js'

const LLAMA = join(repoRoot, 'fixtures', 'hf-tiny-decoders', 'tiny-llama')
let dir: string
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'mf-e2e-validate-decoder-'))
})
afterAll(() => {
  rmSync(dir, { recursive: true, force: true })
})

describe('modelforge validate (decoder)', () => {
  it('checks prefill, the cached decode and greedy generation against PyTorch', () => {
    const r = cli(['validate', join(LLAMA, 'model.onnx'), '--reference', join(LLAMA, 'reference.json')])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/^Decoder .* \(reference outputs\), atol 0\.0001:\n {2}prefill +max \|logits error\| \d\.\d\de-\d+ over 3300 values {2}ok\n {2}decode .* ok\n {2}greedy +12 tokens identical$/m)
    const j = envelope(cli(['validate', join(LLAMA, 'model.onnx'), '--reference', join(LLAMA, 'reference.json'), '--json']))
    expect(j.result).toMatchObject({ passed: true, referenceKind: 'json', greedy: { firstDivergence: null } })
  })

  it('a reference it does not match is exit 4, naming the step and the first diverging token', () => {
    const ref = JSON.parse(readFileSync(join(LLAMA, 'reference.json'), 'utf8'))
    ref.greedy.sequence[ref.greedy.prompt.length] = (ref.greedy.sequence[ref.greedy.prompt.length] + 1) % 300
    writeFileSync(join(dir, 'off.json'), JSON.stringify(ref))
    const r = cli(['validate', join(LLAMA, 'model.onnx'), '--reference', join(dir, 'off.json'), '--json'])
    expect(r.code).toBe(4)
    const e = envelope(r).error!
    expect(e.code).toBe('VALIDATION_FAILED')
    expect(e.message).toBe(`decoder validation failed: greedy generation departs at position ${ref.greedy.prompt.length}`)
  })

  it('refuses the flags of output-by-output validation, and a bad --atol (exit 2)', () => {
    for (const extra of [['--rtol', '1e-3'], ['--atol', 'logits:1e-3'], ['--precision', 'int8'], ['--atol', 'x']]) {
      const r = cli(['validate', join(LLAMA, 'model.onnx'), '--reference', join(LLAMA, 'reference.json'), '--json', ...extra])
      expect(r.code, extra.join(' ')).toBe(2)
      expect(envelope(r).error!.code).toBe('INVALID_OPTION')
    }
  })
})
