/**
 * A generator of stores as the original Python ModelStore wrote them, written independently of
 * src/publish: versions/<v>/ with a manifest holding only version/checksum/metadata, whose checksum is
 * SHA-256 over each file's relative path then its bytes, in sorted os.walk order (a directory's files, then
 * its subdirectories), every manifest.json skipped; `current` as an absolute symlink or a real directory.
 */
import { createHash } from 'node:crypto'
import { spawnSync } from 'node:child_process'
import { cpSync, mkdirSync, opendirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
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

/** A directory's names in the order the filesystem lists them (opendir, unsorted; readdir sorts). */
export function listingOrder(dir: string): string[] {
  const d = opendirSync(dir)
  const names: string[] = []
  try {
    for (let e = d.readSync(); e; e = d.readSync()) names.push(e.name)
  } finally {
    d.closeSync()
  }
  return names
}

/**
 * Creates subdirectories of `parent` (each holding one file) in the given, unsorted order, adding more
 * (`d00`, `d01`, ...) until the filesystem lists them in another order than sorted: on ext4 the listing
 * is the order of the names' hashes, on tmpfs the reverse of creation, and three names usually suffice.
 * Returns the listing order, or null on a filesystem that lists every directory sorted.
 */
export function unsortedSubdirs(parent: string, names = ['zeta', 'alpha', 'mid']): string[] | null {
  const make = (n: string): void => writeTree(join(parent, n), { [`${n}.bin`]: `bytes of ${n}` })
  names.forEach(make)
  for (let i = 0; i < 32; i++) {
    const listed = listingOrder(parent).filter((n) => statSync(join(parent, n)).isDirectory())
    if (listed.join('/') !== [...listed].sort().join('/')) return listed
    make(`d${String(i).padStart(2, '0')}`)
  }
  return null
}

/** python3 is on PATH (the interop tests run it with the standard library only). */
export const hasPython3 = spawnSync('python3', ['--version']).status === 0

/**
 * The original Python ModelStore's helpers, re-implemented from the documented algorithm with the standard
 * library only: os.walk top-down (subdirectories in the order the filesystem lists them, file names sorted
 * within each directory), every manifest.json skipped, one SHA-256 over each relative path then its bytes.
 */
export const PYTHON_STORE = `
import hashlib, json, os, sys

def checksum(version_dir):
    h = hashlib.sha256()
    for root, dirs, files in os.walk(version_dir):
        for name in sorted(files):
            if name == "manifest.json":
                continue
            path = os.path.join(root, name)
            h.update(os.path.relpath(path, version_dir).encode("utf-8"))
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
    return h.hexdigest()

def write_manifest(version_dir, version, metadata):
    manifest = {"version": version, "checksum": checksum(version_dir), "metadata": metadata}
    with open(os.path.join(version_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
    return manifest

def verify_manifest(version_dir):
    with open(os.path.join(version_dir, "manifest.json")) as f:
        manifest = json.load(f)
    return checksum(version_dir) == manifest["checksum"]

cmd, version_dir = sys.argv[1], sys.argv[2]
if cmd == "checksum":
    print(checksum(version_dir))
elif cmd == "write":
    print(json.dumps(write_manifest(version_dir, sys.argv[3], json.loads(sys.argv[4]))))
elif cmd == "verify":
    ok = verify_manifest(version_dir)
    print("ok" if ok else "checksum mismatch")
    sys.exit(0 if ok else 1)
`

/** Runs the Python helpers above: `checksum <dir>`, `write <dir> <version> <metadata json>`, `verify <dir>`. */
export function python(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync('python3', ['-c', PYTHON_STORE, ...args], { encoding: 'utf8' })
  return { code: r.status, stdout: r.stdout.trim(), stderr: r.stderr }
}
