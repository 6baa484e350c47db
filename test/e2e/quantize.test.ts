/**
 * `modelforge quantize` end to end (the built CLI): the report, --json, the cache reused byte for byte,
 * and the exit codes of its refusals.
 */
import { existsSync, readFileSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { TINY_BERT } from '../helpers/build-helpers.js'
import { writeCalibText } from '../helpers/calib-text.js'
import { cli, envelope } from '../helpers/store-helpers.js'

let dir: string
let text: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mf-e2e-quantize-'))
  text = join(dir, 'calib.txt')
  writeCalibText(text, TINY_BERT, 48, 11)
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

describe('modelforge quantize', () => {
  it('int8: reports the placement, the calibration and the accuracy; the cache makes the same bytes (exit 0)', async () => {
    const out = join(dir, 'bert.int8.onnx')
    const r = cli(['quantize', TINY_BERT, '--precision', 'int8', '--calib-data', text, '--seq-len', '16', '--calib-batches', '8', '--out', out])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(new RegExp(`^Wrote ${out} \\(.*, int8; from .*\\)`))
    expect(r.stdout).toMatch(/calibration: +entropy, \d+ tensors, 8 batches of 4x16 from /)
    expect(r.stdout).toMatch(/quantized: +\d+ MatMul/)
    expect(r.stdout).toMatch(/PASSED: 2 of 2 outputs within tolerance/)
    expect(r.stderr).toMatch(/\[COMPLETED\] Accuracy on 16 held-out rows \(data\)/)
    const again = cli(['quantize', TINY_BERT, '--precision', 'int8', '--calib-cache', join(dir, 'bert.int8.calib.json'), '--calib-data', text, '--calib-batches', '8', '--seq-len', '16', '--out', join(dir, 'again.onnx'), '--json'])
    expect(again.code, again.stderr).toBe(0)
    const { status, result } = envelope(again)
    expect(status).toBe(0)
    expect(result).toMatchObject({ precision: 'int8', calibration: { from: 'cache' }, accuracy: { passed: true } })
    expect(Buffer.compare(readFileSync(out), readFileSync(join(dir, 'again.onnx')))).toBe(0)
  })

  it('fp16 --json: one object with the sizes, the fp32 nodes and the accuracy', async () => {
    const r = cli(['quantize', TINY_BERT, '--precision', 'fp16', '--out', join(dir, 'bert.fp16.onnx'), '--json'])
    expect(r.code, r.stderr).toBe(0)
    const { result } = envelope(r)
    expect(result).toMatchObject({ precision: 'fp16', accuracy: { passed: true, precision: 'fp16' }, fp16: { convertedNodes: expect.any(Number) } })
    expect(result.out.bytes / result.source.bytes).toBeLessThan(0.8)
  })

  it('exit codes: 2 no calibration data, 6 data missing, 5 --out taken, 4 accuracy check failed (table printed)', async () => {
    const none = cli(['quantize', TINY_BERT, '--precision', 'int8', '--json'])
    expect(none.code).toBe(2)
    expect(envelope(none).error).toMatchObject({ code: 'CALIB_DATA_REQUIRED', hint: expect.stringMatching(/--calib-data/) })
    expect(cli(['quantize', TINY_BERT, '--precision', 'int8', '--calib-data', join(dir, 'nope.txt'), '--out', join(dir, 'n.onnx')]).code).toBe(6)
    const taken = join(dir, 'taken.onnx')
    await writeFile(taken, 'x')
    const t = cli(['quantize', TINY_BERT, '--precision', 'fp16', '--out', taken])
    expect(t.code).toBe(5)
    expect(t.stderr).toMatch(/--force/)
    const strict = cli(['quantize', TINY_BERT, '--precision', 'int8', '--calib-data', text, '--seq-len', '16', '--min-cosine', '1', '--out', join(dir, 'strict.onnx')])
    expect(strict.code).toBe(4)
    expect(strict.stdout).toMatch(/FAILED/)
    expect(existsSync(join(dir, 'strict.onnx'))).toBe(false)
  })

  it('--help shows every example with long flags', () => {
    const r = cli(['quantize', '--help'])
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/--calib-data/)
    expect(r.stdout).toMatch(/\$ modelforge quantize model\.onnx --precision fp16/)
  })
})
