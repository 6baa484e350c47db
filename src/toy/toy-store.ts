/**
 * `modelforge toy-store`: a demo store of real, tiny models. For each agent, `versions` versions are built,
 * staged and finalized through ModelStore (so the demo exercises the real publish path), `current` ends on
 * the newest, and every agent's current model is loaded and run in onnxruntime-node before success.
 */
import { existsSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { ConflictError, UsageError } from '../lib/errors.js'
import { planSteps, runStep, type Progress } from '../lib/progress.js'
import { validateName } from '../publish/names.js'
import { assertVerified, ModelStore, type FinalizeResult } from '../publish/store.js'
import { checkToyModel, type ToyCheck } from './check.js'
import { buildToyModel, kindFor, type ToyKind } from './models.js'

export const DEFAULT_AGENTS = ['scout', 'synthesizer', 'analyst', 'memory']

export interface ToyStoreOptions {
  agents?: string[]
  versions?: number
  /** Where the steps report progress (silent when absent). */
  progress?: Progress
}

export interface ToyAgentResult {
  agent: string
  kind: ToyKind
  versions: string[]
  current: string
  currentPath: string
  check: ToyCheck
}

export interface ToyStoreResult {
  root: string
  agents: ToyAgentResult[]
  verified: number
}

interface Ctx {
  finalized: Map<string, FinalizeResult[]>
  checks: Map<string, ToyCheck>
  verified: number
}

export async function createToyStore(dir: string, options: ToyStoreOptions = {}): Promise<ToyStoreResult> {
  const agents = options.agents ?? DEFAULT_AGENTS
  const count = options.versions ?? 2
  if (agents.length === 0) throw new UsageError('No agents given', { code: 'USAGE', hint: 'For example --agents scout,memory.' })
  if (new Set(agents).size !== agents.length) throw new UsageError(`Agents listed twice: ${agents.join(',')}`, { code: 'USAGE', hint: 'List each agent once.' })
  for (const a of agents) validateName('agent', a)
  if (!Number.isSafeInteger(count) || count < 1 || count > 100) {
    throw new UsageError(`--versions must be 1 to 100, got ${count}`, { code: 'USAGE', hint: 'For example --versions 2.' })
  }
  const store = new ModelStore(dir)
  const versionNames = Array.from({ length: count }, (_, i) => `v${i + 1}`)
  // Refuse before writing anything when the demo would collide with what is there.
  for (const a of agents) {
    const existing = (await store.agents()).includes(a) ? await store.versions(a) : []
    // A leftover staging dir would stop the run half-way (stage refuses it), after other agents were written.
    const clash = versionNames.filter((v) => existing.includes(v) || existsSync(store.stagingDir(a, v)))
    if (clash.length > 0) {
      throw new ConflictError(`Store ${store.root} already holds ${a} ${clash.join(', ')} (finalized or staged)`, {
        code: 'VERSION_EXISTS',
        hint: 'Give toy-store an empty or new directory (or remove leftover staging dirs with `modelforge store gc --older-than 0`).',
        details: { agent: a, versions: clash },
      })
    }
  }
  const kinds = new Map(agents.map((a, i) => [a, kindFor(a, i)]))
  const ctx: Ctx = { finalized: new Map(), checks: new Map(), verified: 0 }
  const progress = options.progress
  planSteps(progress, [
    ...agents.map((agent) => ({ id: `agent:${agent}`, title: `${agent}: build ${count} ${kinds.get(agent)} version${count > 1 ? 's' : ''}` })),
    { id: 'check', title: 'Run every current model in onnxruntime-node' },
    { id: 'verify', title: 'Verify the store' },
  ])
  const c = ctx
  for (const agent of agents) {
    await runStep(progress, `agent:${agent}`, async (task) => {
      const done: FinalizeResult[] = []
      for (const version of versionNames) {
        const model = buildToyModel(agent, version, kinds.get(agent)!)
        await store.withStaging(agent, version, async (staging) => {
          for (const [name, content] of Object.entries(model.files)) await writeFile(join(staging, name), content)
        })
        task.message(`finalizing ${version}`)
        done.push(await store.finalize(agent, version, { metadata: { toy: true, kind: model.kind, seed: model.config.seed, generator: 'modelforge toy-store' } }))
      }
      c.finalized.set(agent, done)
    })
  }
  await runStep(progress, 'check', async () => {
    for (const agent of agents) {
      const path = store.current(agent)
      if (!path) throw new Error(`${agent} has no current version after finalize`)
      c.checks.set(agent, await checkToyModel(path))
    }
  })
  await runStep(progress, 'verify', async () => {
    const reports = await store.verify()
    assertVerified(reports)
    c.verified = reports.length
  })
  return {
    root: store.root,
    verified: ctx.verified,
    agents: agents.map((agent) => {
      const resolved = store.resolve(agent)!
      return {
        agent,
        kind: kinds.get(agent)!,
        versions: ctx.finalized.get(agent)!.map((f) => f.version),
        current: resolved.version!,
        currentPath: resolved.path,
        check: ctx.checks.get(agent)!,
      }
    }),
  }
}
