/**
 * The markdown a CI job shows for a build (GITHUB_STEP_SUMMARY): the steps with their times, the accuracy
 * of each output against the reference, the latency; or the step that failed and why.
 */
import { appendFile } from 'node:fs/promises'
import { osFailure } from '../lib/errors.js'
import type { BuildEngineResult, StepTiming } from './build-engine.js'

const secs = (ms: number): string => `${(ms / 1000).toFixed(1)} s`
const cell = (s: string): string => s.replaceAll('|', '\\|').replaceAll('\n', ' ')

function stepTable(steps: readonly StepTiming[]): string[] {
  return [
    '| step | result | time |',
    '|---|---|---:|',
    ...steps.map((s) => `| ${cell(s.id)} | ${cell(s.status === 'done' ? s.title : s.status === 'skipped' ? `skipped: ${s.reason ?? ''}` : `**failed**: ${s.reason ?? ''}`)} | ${s.status === 'skipped' ? '' : secs(s.ms)} |`),
  ]
}

export function summaryMarkdown(r: BuildEngineResult): string {
  const where = r.status === 'up-to-date' ? `${r.version} is up to date (same build key)` : r.published ? `${r.version}, published to ${r.channel}` : `${r.version} (not published)`
  const lines = [`### modelforge build-engine: ${r.agent} ${where}`, '', `${r.target} target, ${r.precision}; ${r.store}/${r.agent}/versions/${r.version}`, '', ...stepTable(r.timings.steps)]
  const v = r.metrics.validation
  if (v) {
    lines.push('', `**Validation** against ${cell(v.reference)} (${v.precision} rule): ${v.passed ? 'passed' : 'FAILED'}`, '',
      '| output | max abs err | max rel err | cosine | result |', '|---|---:|---:|---:|---|',
      ...v.outputs.map((o) => `| ${cell(o.name)} | ${o.maxAbsErr.toExponential(2)} | ${o.maxRelErr === null ? 'inf' : o.maxRelErr.toExponential(2)} | ${o.cosine.toFixed(5)} | ${o.passed ? 'ok' : 'FAILED'} |`))
  }
  const p = r.metrics.performance
  if (p?.latencyMs) {
    lines.push('', `**Latency** (${p.source}${p.shapes ? `, ${Object.entries(p.shapes).map(([k, d]) => `${k} ${d.join('x')}`).join(', ')}` : ''}): median ${p.latencyMs.median} ms, p95 ${p.latencyMs.p95 ?? '-'} ms, p99 ${p.latencyMs.p99 ?? '-'} ms${p.throughputQps !== undefined ? `; ${p.throughputQps} qps` : ''}`)
  }
  return lines.join('\n') + '\n\n'
}

export function failureMarkdown(agent: string, steps: readonly StepTiming[], failed: { step?: string; code: string; message: string }): string {
  return [`### modelforge build-engine: ${agent} FAILED${failed.step ? ` at ${failed.step}` : ''}`, '', `${cell(failed.message)} (${failed.code}); nothing was published.`, '', ...stepTable(steps)].join('\n') + '\n\n'
}

export async function appendSummary(file: string, text: string): Promise<void> {
  try {
    await appendFile(file, text)
  } catch (err) {
    throw osFailure(err, 'appending to GITHUB_STEP_SUMMARY', file)
  }
}
