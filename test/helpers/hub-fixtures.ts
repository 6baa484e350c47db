/** Repos for the mock Hub and small helpers to inspect a cache, shared by test/hub and test/e2e fetch tests. */
import { createHash } from 'node:crypto'
import { mkdtemp, readdir, readlink, lstat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import type { MockHub, MockFileSpec } from './mock-hub.js'

/** Deterministic pseudo-random bytes (content that does not compress or repeat). */
export function bytes(size: number, seed: string): Buffer {
  const out = Buffer.alloc(size)
  for (let i = 0, n = 0; i < size; i += 32, n++) createHash('sha256').update(`${seed}:${n}`).digest().copy(out, i)
  return out
}

export const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex')

/**
 * org/tiny: two commits. v1.0 (tag) -> commit 0, main -> commit 1. Commit 1 changes config.json and the
 * weights and shares tokenizer.json, vocab.txt and onnx/model.onnx with commit 0. README.md and tf_model.h5
 * are outside the default file set.
 */
export function addTinyRepo(hub: MockHub, id = 'org/tiny', options: { weightsSize?: number; private?: boolean } = {}): { v1: string; main: string; files: Record<string, MockFileSpec[]> } {
  const shared: MockFileSpec[] = [
    { path: 'tokenizer.json', content: JSON.stringify({ version: '1.0', model: { type: 'WordPiece' } }) },
    { path: 'vocab.txt', content: '[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\nworld\n' },
    { path: 'onnx/model.onnx', content: bytes(20_000, `${id}:onnx`) },
    { path: 'README.md', content: '# tiny\n' },
    { path: 'tf_model.h5', content: bytes(1000, `${id}:tf`) },
  ]
  const c0: MockFileSpec[] = [
    { path: 'config.json', content: JSON.stringify({ model_type: 'bert', hidden_size: 8 }) },
    { path: 'model.safetensors', content: bytes(options.weightsSize ?? 50_000, `${id}:w0`) },
    ...shared,
  ]
  const c1: MockFileSpec[] = [
    { path: 'config.json', content: JSON.stringify({ model_type: 'bert', hidden_size: 16 }) },
    { path: 'model.safetensors', content: bytes(options.weightsSize ?? 60_000, `${id}:w1`) },
    ...shared,
  ]
  const { commits } = hub.addRepo(id, [c0, c1], { branches: { main: 1 }, tags: { 'v1.0': 0 }, private: options.private })
  return { v1: commits[0]!, main: commits[1]!, files: { [commits[0]!]: c0, [commits[1]!]: c1 } }
}

export function tempDir(prefix = 'mf-hub-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix))
}

/** Every entry under dir: "path" for files/dirs, "path -> target" for symlinks. */
export async function listTree(dir: string): Promise<string[]> {
  const out: string[] = []
  async function walk(d: string): Promise<void> {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const full = join(d, e.name)
      const rel = relative(dir, full)
      if (e.isSymbolicLink()) out.push(`${rel} -> ${await readlink(full)}`)
      else if (e.isDirectory()) {
        out.push(`${rel}/`)
        await walk(full)
      } else out.push(rel)
    }
  }
  try {
    await lstat(dir)
  } catch {
    return out
  }
  await walk(dir)
  return out.sort()
}
