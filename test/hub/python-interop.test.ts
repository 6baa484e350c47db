/**
 * Optional: Python's huggingface_hub reads the cache we write, offline (HF_HUB_OFFLINE=1). Skipped when
 * `python3 -c "import huggingface_hub"` fails (the package is not a dependency of this project). Passed with
 * huggingface_hub 1.33.0 and 2.0.0 installed from local wheels into a scratch virtualenv.
 */
import { execFile, spawnSync } from 'node:child_process'
import { realpath, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fetchModel, type FetchResult } from '../../src/hub/fetch.js'
import { addTinyRepo, tempDir } from '../helpers/hub-fixtures.js'
import { MockHub } from '../helpers/mock-hub.js'

const python = spawnSync('python3', ['-c', 'import huggingface_hub'], { encoding: 'utf8' })
const hasPython = python.status === 0
const execFileAsync = promisify(execFile)

const SCRIPT = `
import json, sys
from huggingface_hub import snapshot_download, hf_hub_download, try_to_load_from_cache, scan_cache_dir
patterns = json.loads(sys.argv[1])
try:
    snapshot_download("org/tiny")
    incomplete = None
except Exception as e:
    incomplete = type(e).__name__ + ": " + str(e)
scan = scan_cache_dir()
out = {
  "incomplete": incomplete,
  "revisions": sorted([sorted(rev.refs) for r in scan.repos for rev in r.revisions]),
  "files": [r.nb_files for r in scan.repos],
  "main": snapshot_download("org/tiny", allow_patterns=patterns),
  "tag": snapshot_download("org/tiny", revision="v1.0", allow_patterns=patterns),
  "config": hf_hub_download("org/tiny", "config.json"),
  "onnx_tag": hf_hub_download("org/tiny", "onnx/model.onnx", revision="v1.0"),
  "nested": hf_hub_download("org/tiny", "config.json", revision="release/v2"),
  "vocab": try_to_load_from_cache("org/tiny", "vocab.txt"),
}
print(json.dumps(out))
`

describe.skipIf(!hasPython)("Python huggingface_hub reads our cache offline", () => {
  let hub: MockHub
  let cacheDir: string
  let main: FetchResult
  let tag: FetchResult
  beforeAll(async () => {
    hub = new MockHub()
    addTinyRepo(hub)
    await hub.start()
    cacheDir = await tempDir()
    main = await fetchModel('org/tiny', { endpoint: hub.url, cacheDir, config: {}, offline: false })
    tag = await fetchModel('org/tiny', { endpoint: hub.url, cacheDir, config: {}, offline: false, revision: 'v1.0' })
    // A branch name with "/" lives in nested refs/ folders; Python must find it there.
    hub.setBranch('org/tiny', 'release/v2', tag.commit!)
    await fetchModel('org/tiny', { endpoint: hub.url, cacheDir, config: {}, offline: false, revision: 'release/v2', include: ['config.json'] })
    await hub.stop()
  })
  afterAll(async () => {
    await rm(cacheDir, { recursive: true, force: true })
  })

  it('resolves the branch, the tag and single files to our snapshots', async () => {
    const patterns = main.files.map((f) => f.path)
    const r = spawnSync('python3', ['-c', SCRIPT, JSON.stringify(patterns)], {
      encoding: 'utf8',
      env: { ...process.env, HF_HUB_OFFLINE: '1', HF_HUB_CACHE: cacheDir, HF_HOME: join(cacheDir, 'home') },
    })
    expect(r.status, r.stderr).toBe(0)
    const out = JSON.parse(r.stdout) as Record<string, string> & { revisions: string[][]; files: number[] }
    expect(await realpath(out.main!)).toBe(await realpath(main.snapshot))
    expect(await realpath(out.tag!)).toBe(await realpath(tag.snapshot))
    expect(out.config).toBe(join(main.snapshot, 'config.json'))
    expect(out.onnx_tag).toBe(join(tag.snapshot, 'onnx', 'model.onnx'))
    expect(out.nested).toBe(join(tag.snapshot, 'config.json'))
    expect(out.vocab).toBe(join(main.snapshot, 'vocab.txt'))
    // trees/<commit>.json is read: the whole repo was listed, so without patterns the snapshot is incomplete.
    expect(out.incomplete).toMatch(/^IncompleteSnapshotError: .*README\.md, tf_model\.h5/)
    expect(out.revisions).toEqual([['main'], ['release/v2', 'v1.0']])
    expect(out.files).toEqual([7])
  })
})

const PY_DOWNLOAD = `
import json, sys
from huggingface_hub import snapshot_download, hf_hub_download
hf_hub_download("org/tiny", "config.json")
print(json.dumps({"snapshot": snapshot_download("org/tiny", revision="v1.0", allow_patterns=json.loads(sys.argv[1]))}))
`

describe.skipIf(!hasPython)('we read the cache Python huggingface_hub wrote', () => {
  it('offline and online with zero requests, for the branch it wrote refs for and the tag', async () => {
    const hub = new MockHub()
    addTinyRepo(hub)
    await hub.start()
    const cacheDir = await tempDir()
    try {
      const patterns = ['*.json', '*.safetensors', 'onnx/*', 'vocab.txt']
      // Asynchronously: the mock Hub answers Python from this process's event loop.
      const { stdout } = await execFileAsync('python3', ['-c', PY_DOWNLOAD, JSON.stringify(patterns)], {
        timeout: 30_000,
        env: { ...process.env, HF_ENDPOINT: hub.url, HF_HUB_CACHE: cacheDir, HF_HOME: join(cacheDir, 'home'), HF_HUB_DISABLE_TELEMETRY: '1', HF_HUB_OFFLINE: '0' },
      })
      const py = JSON.parse(stdout) as { snapshot: string }
      hub.resetCounts()
      const opts = { endpoint: hub.url, cacheDir, config: {} }
      const tag = await fetchModel('org/tiny', { ...opts, revision: 'v1.0' })
      expect(tag).toMatchObject({ fromCache: true, requests: 0, snapshot: py.snapshot })
      expect(tag.files.map((f) => f.path)).toEqual(['config.json', 'model.safetensors', 'onnx/model.onnx', 'tokenizer.json', 'vocab.txt'])
      expect(hub.count()).toBe(0)
      await hub.stop()
      // hf_hub_download wrote refs/main and config.json alone, without trees/: offline, what the snapshot holds.
      const main = await fetchModel('org/tiny', { ...opts, offline: true, include: ['config.json'] })
      expect(main.files.map((f) => [f.path, f.fromCache])).toEqual([['config.json', true]])
    } finally {
      await hub.stop().catch(() => undefined)
      await rm(cacheDir, { recursive: true, force: true })
    }
  })
})

