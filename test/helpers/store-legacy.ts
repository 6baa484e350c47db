/**
 * A generator of stores as the original Python ModelStore wrote them, written independently of
 * src/publish: versions/<v>/ with a manifest holding only version/checksum/metadata, whose checksum is
 * SHA-256 over each file's relative path then its bytes, in sorted os.walk order (a directory's files, then
 * its subdirectories), every manifest.json skipped; `current` as an absolute symlink or a real directory.
 */
import { createHash } from 'node:crypto'
import { cpSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { writeTree } from './store-helpers.js'

export function pythonChecksum(dir: string): string {
  const h = createHash('sha256')
  const walk = (abs: string, rel: string): void => {
    const names = readdirSync(abs).sort()
    const files = names.filter((n) => !statSync(join(abs, n)).isDirectory())
    const dirs = names.filter((n) => statSync(join(abs, n)).isDirectory())
    for (const f of files) {
      if (f === 'manifest.json') continue
      h.update(rel ? `${rel}/${f}` : f)
      h.update(readFileSync(join(abs, f)))
    }
    for (const d of dirs) walk(join(abs, d), rel ? `${rel}/${d}` : d)
  }
  walk(dir, '')
  return h.digest('hex')
}

export interface LegacyVersion {
  version: string
  files: Record<string, string | Uint8Array>
  metadata?: Record<string, unknown>
}

/** Writes a Python-made agent; `current` is 'absolute-link' or 'directory' pointing at the last version. */
export function writeLegacyAgent(root: string, agent: string, versions: LegacyVersion[], current: 'absolute-link' | 'directory'): void {
  for (const v of versions) {
    const dir = join(root, agent, 'versions', v.version)
    mkdirSync(dir, { recursive: true })
    writeTree(dir, v.files)
    // Python's json.dump with indent=2; key order version, checksum, metadata.
    const manifest = { version: v.version, checksum: pythonChecksum(dir), metadata: v.metadata ?? {} }
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest, null, 2))
  }
  const last = join(root, agent, 'versions', versions[versions.length - 1]!.version)
  const currentPath = join(root, agent, 'current')
  if (current === 'absolute-link') symlinkSync(last, currentPath)
  else cpSync(last, currentPath, { recursive: true })
}
