import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { appendSummary, failureMarkdown, summaryMarkdown } from '../../src/pipeline/summary.js'
import type { BuildEngineResult } from '../../src/pipeline/index.js'

const result: BuildEngineResult = {
  status: 'built', agent: 'analyst', version: 'v2026-12-01', store: '/srv/store', path: '/srv/store/analyst/versions/v2026-12-01',
  target: 'onnx', precision: 'int8', channel: 'current', published: true, buildKey: 'f'.repeat(64),
  source: { kind: 'hub', repo: 'org/m', revision: 'main', commit: 'a'.repeat(40), dir: '/hf', fromCache: true }, artifacts: [],
  metrics: {
    validation: { reference: 'fp32/model.onnx', precision: 'int8', passed: true, outputs: [{ name: 'logits', maxAbsErr: 0.012, maxRelErr: null, cosine: 0.99931, passed: true }] },
    performance: { source: 'onnxruntime-node', throughputQps: 310.5, latencyMs: { min: 3, mean: 3.3, median: 3.2, max: 5, p90: 3.9, p95: 4.1, p99: 4.8 }, shapes: { input_ids: [1, 128] } },
  },
  timings: { totalMs: 5200, steps: [{ id: 'export', title: 'model.onnx by the native exporter (1.2 s)', status: 'done', ms: 1200 }, { id: 'build', title: 'Building', status: 'skipped', ms: 0, reason: '--target onnx' }] },
  warnings: [],
}

describe('the GitHub step summary', () => {
  it('a table of the steps, the accuracy per output and the latency', () => {
    expect(summaryMarkdown(result)).toBe([
      '### modelforge build-engine: analyst v2026-12-01, published to current', '',
      'onnx target, int8; /srv/store/analyst/versions/v2026-12-01', '',
      '| step | result | time |', '|---|---|---:|',
      '| export | model.onnx by the native exporter (1.2 s) | 1.2 s |',
      '| build | skipped: --target onnx |  |', '',
      '**Validation** against fp32/model.onnx (int8 rule): passed', '',
      '| output | max abs err | max rel err | cosine | result |', '|---|---:|---:|---:|---|',
      '| logits | 1.20e-2 | inf | 0.99931 | ok |', '',
      '**Latency** (onnxruntime-node, input_ids 1x128): median 3.2 ms, p95 4.1 ms, p99 4.8 ms; 310.5 qps', '', '',
    ].join('\n'))
  })

  it('a failure names the step and says nothing was published; pipes in messages do not break the table', () => {
    const md = failureMarkdown('analyst', [{ id: 'validate', title: 'Validating', status: 'failed', ms: 800, reason: 'a|b' }], { step: 'validate', code: 'VALIDATION_FAILED', message: 'x|y' })
    expect(md).toContain('### modelforge build-engine: analyst FAILED at validate')
    expect(md).toContain('x\\|y (VALIDATION_FAILED); nothing was published.')
    expect(md).toContain('| validate | **failed**: a\\|b | 0.8 s |')
  })

  it('appends, and a summary file that cannot be written is an OS failure naming it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mf-summary-'))
    try {
      await appendSummary(join(dir, 's.md'), 'one\n')
      await appendSummary(join(dir, 's.md'), 'two\n')
      expect(readFileSync(join(dir, 's.md'), 'utf8')).toBe('one\ntwo\n')
      const err = await appendSummary(dir, 'x').catch((e: unknown) => e) as { code: string; exitCode: number; message: string }
      expect(err.code).toBe('IS_A_DIRECTORY')
      expect(err.exitCode).not.toBe(1)
      expect(err.message).toContain(dir)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
