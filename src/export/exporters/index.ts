/** The exporters by name, and the order in which --exporter auto asks them. */
import { type ExporterName, type ModelExporter } from '../exporter.js'
import { nativeExporter } from './native.js'
import { optimumExporter } from './optimum.js'
import { repoExporter } from './repo.js'

const BY_NAME: Record<ExporterName, ModelExporter> = { repo: repoExporter, native: nativeExporter, optimum: optimumExporter }

/** What the repository ships beats exporting it again; optimum, which takes anything, comes last. */
export const AUTO_ORDER: readonly ExporterName[] = ['repo', 'native', 'optimum']

export function exporterNamed(name: ExporterName): ModelExporter {
  return BY_NAME[name]
}
