/**
 * Before exporting: what the model is (config.json, the task, a sentence-transformers pipeline) and which
 * exporter writes it. --exporter auto asks the exporters in their registry order whether they fit and takes
 * the first that does, with its reason.
 */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { InternalError } from '../lib/errors.js'
import { type ExportOptions, type ModelContext, type ModelExporter } from './exporter.js'
import { AUTO_ORDER, exporterNamed } from './exporters/index.js'
import { inferTask, readHfConfig, type HfConfig } from './model-config.js'
import { isSentenceTransformers, readSentenceTransformers } from './sentence-transformers.js'

export interface Choice {
  exporter: ModelExporter
  /** Why auto picked it; absent when the exporter was asked for by name. */
  reason?: string
}

export async function readModelContext(sourceDir: string, options: ExportOptions): Promise<ModelContext> {
  const requested = options.exporter ?? 'auto'
  const st = isSentenceTransformers(sourceDir) ? await readSentenceTransformers(sourceDir) : undefined
  const configDir = st?.transformerDir ?? sourceDir
  // auto needs config.json to decide; an exporter asked for by name reads it only when it needs it or it is there.
  let config: HfConfig | undefined
  if (requested === 'auto' || exporterNamed(requested).needsConfig || existsSync(join(configDir, 'config.json'))) {
    config = await readHfConfig(configDir)
  }
  const task = options.task ?? inferTask(sourceDir, config ?? {})
  return { sourceDir, config, task, sentenceTransformers: task === 'sentence-embedding' ? st : undefined, options }
}

export async function chooseExporter(ctx: ModelContext): Promise<Choice> {
  const requested = ctx.options.exporter ?? 'auto'
  if (requested !== 'auto') return { exporter: exporterNamed(requested) }
  let passedOver: string | undefined
  for (const name of AUTO_ORDER) {
    const exporter = exporterNamed(name)
    const fit = await exporter.fits(ctx)
    if (fit.fits) return { exporter, reason: fit.reason ?? passedOver }
    passedOver = fit.reason
  }
  throw new InternalError(`No exporter fits ${ctx.sourceDir}, not even the last of ${AUTO_ORDER.join(', ')}`, {
    code: 'INTERNAL',
    hint: 'The last exporter auto asks must accept every model; this is a bug in modelforge.',
  })
}
