/** Helpers for the build tests: the trtexec double's environment, its run records, leftovers beside --out. */
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { DataType, writeModel } from '../../src/onnx/proto.js'
import { GraphBuilder } from '../../src/onnx/graph-builder.js'
import { repoRoot } from './store-helpers.js'

export const DOUBLE = join(repoRoot, 'test', 'helpers', 'trtexec-double', 'trtexec')
export const TINY_BERT = join(repoRoot, 'fixtures', 'hf-tiny', 'tiny-bert', 'model.onnx')

/**
 * The environment of a build against the double: TRTEXEC names it, the modelforge cache (probe, remembered
 * device, timing caches) is the test's own, and PATH holds no nvidia-smi or trtexec of the machine.
 */
export function doubleEnv(dir: string, extra: Record<string, string> = {}): Record<string, string | undefined> {
  return {
    ...process.env,
    TRTEXEC: DOUBLE,
    MODELFORGE_CACHE: join(dir, 'cache'),
    PATH: dirname(process.execPath) + ':/usr/bin:/bin',
    TRTEXEC_DOUBLE_RECORD: join(dir, 'record.jsonl'),
    ...extra,
  }
}

export interface DoubleRun {
  pid: number
  argv: string[]
  start: number
  end: number
  exit?: number
  signal?: string
}

/** The double's runs so far (one line per run that was not SIGKILLed). */
export function doubleRuns(dir: string): DoubleRun[] {
  const file = join(dir, 'record.jsonl')
  if (!existsSync(file)) return []
  return readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as DoubleRun)
}

/** Hidden build directories (staging, set-aside outputs) beside --out. */
export function leftovers(out: string): string[] {
  const parent = dirname(out)
  return existsSync(parent) ? readdirSync(parent).filter((n) => n.includes('.modelforge-')) : []
}

/** Whether a process of that pid still runs. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as { code?: string }).code !== 'ESRCH'
  }
}

/** A model with one node of a custom domain, which TensorRT has no importer or plugin for. */
export async function writeCustomOpModel(path: string): Promise<string> {
  const g = new GraphBuilder('custom')
  g.input('x', DataType.FLOAT, [1, 4])
  g.node('FancyActivation', ['x'], ['y'], {}, 'com.example')
  g.output('y', DataType.FLOAT, [1, 4])
  await writeModel(path, g.toModel({ opset: 17, extraOpsets: { 'com.example': 1 } }))
  return path
}

/** The pid of the trtexec build run a process `parent` started (the CLI's child: trtexec runs under the CLI's own process), once it runs (read from /proc, as ps does). */
export async function buildRun(parent: number, timeoutMs = 30_000): Promise<number> {
  const t0 = Date.now()
  while (Date.now() - t0 < timeoutMs) {
    for (const name of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
      try {
        const ppid = Number(readFileSync(`/proc/${name}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ')[1])
        if (ppid === parent && readFileSync(`/proc/${name}/cmdline`, 'utf8').includes('--onnx=')) return Number(name)
      } catch {
        // The process ended while being read.
      }
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error('the build never started')
}
