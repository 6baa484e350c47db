/**
 * Distribution (issue 15, acceptance 7): `store push` and `store pull` of a version holding a 1 GiB
 * engine.plan, to and from Distribution 2.8 on loopback, against curl uploading the same blob (POST, then
 * one PUT) and downloading it (one GET) in the same run. Pull includes what curl does not: the sha256 of
 * every blob, finalize (which hashes the files again for the manifest) and the store's checks. Goal: push
 * <= 1.5x curl, pull <= 1.5x curl, peak RSS of each under 200 MB. DIST_BENCH_SIZE (bytes) and
 * DIST_BENCH_RUNS make it smaller.
 */
import { spawnSync } from 'node:child_process'
import { createHash, randomFillSync } from 'node:crypto'
import { closeSync, openSync, rmSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { ModelStore } from '../src/publish/store.js'
import { ociRegistryAvailable, startOciRegistry } from '../test/helpers/oci-registry.js'
import { measure, median, repoRoot, report, scratch, settleDisk } from './util.js'

const size = Number(process.env.DIST_BENCH_SIZE ?? 1024 * 1024 * 1024)
const runs = Number(process.env.DIST_BENCH_RUNS ?? 5)
const work = scratch('distribution')

if (!ociRegistryAvailable()) {
  console.log('docker-registry is not installed here (apt-get install docker-registry): distribution bench skipped')
  process.exit(0)
}

// The version: a 1 GiB engine of random bytes (nothing for anyone to compress or deduplicate) and its config.
const store = new ModelStore(join(work, 'store'))
const dir = await store.stage('bench', 'v1')
const plan = join(dir, 'engine.plan')
const hash = createHash('sha256')
const fd = openSync(plan, 'w')
const chunk = Buffer.alloc(16 * 1024 * 1024)
for (let done = 0; done < size; done += chunk.length) {
  const part = chunk.subarray(0, Math.min(chunk.length, size - done))
  randomFillSync(part)
  hash.update(part)
  writeSync(fd, part)
}
closeSync(fd)
spawnSync('sh', ['-c', `printf '{"model_type":"bert"}' > ${join(dir, 'config.json')}`])
await store.finalize('bench', 'v1')
const digest = `sha256:${hash.digest('hex')}`
const finalPlan = join(store.versionDir('bench', 'v1'), 'engine.plan')

// This VM gives memory the guest never touched slowly: writing 1 GiB into a page cache that must grow took
// 0.6 to 3 s, into pages freed a moment before 0.22 s, whichever program wrote. Writing (and deleting) a
// few times the engine first makes every measured download land in memory that was touched already.
const warm = join(work, 'warm.bin')
spawnSync('dd', ['if=/dev/zero', `of=${warm}`, 'bs=1M', `count=${Math.ceil((4 * size) / 2 ** 20)}`, 'status=none'])
rmSync(warm, { force: true })

const reg = await startOciRegistry()
const env = { ...process.env, CI: '1', HOME: '/nonexistent' }
const run = join(repoRoot, 'bin', 'run.js')

function curlUpload(repo: string): number {
  const post = spawnSync('curl', ['-sS', '-X', 'POST', '-D', '-', '-o', '/dev/null', `http://${reg.host}/v2/${repo}/blobs/uploads/`], { encoding: 'utf8' })
  const location = new URL(/^location:\s*(\S+)/im.exec(post.stdout)![1]!, `http://${reg.host}`)
  location.searchParams.set('digest', digest)
  const m = measure('curl', ['-sS', '-f', '-X', 'PUT', '-H', 'Content-Type: application/octet-stream', '-T', finalPlan, location.toString()])
  if (m.status !== 0) throw new Error('curl upload failed')
  return m.seconds
}

try {
  const curlUp: number[] = []
  const push: number[] = []
  const curlDown: number[] = []
  const pull: number[] = []
  let pushRss = 0
  let pullRss = 0
  for (let i = 0; i < runs; i++) {
    settleDisk()
    curlUp.push(curlUpload(`curl/up${i}`))
    // A push to a new repository each time, with the store's record of earlier pushes removed, so that
    // nothing is mounted: every byte is uploaded, as curl's are.
    rmSync(join(store.root, '.modelforge', 'audit.jsonl'), { force: true })
    settleDisk()
    const p = measure(process.execPath, [run, 'store', 'push', 'bench', 'v1', `${reg.host}/ours/r${i}`, '--store', store.root, '--json'], { env })
    if (p.status !== 0) throw new Error(`push failed: ${p.stdout}`)
    const pr = JSON.parse(p.stdout).result as { bytesUploaded: number }
    if (pr.bytesUploaded < size) throw new Error(`push uploaded ${pr.bytesUploaded} bytes, expected the whole engine`)
    push.push(p.seconds)
    pushRss = Math.max(pushRss, p.peakRssMb)

    settleDisk()
    const out = join(work, 'curl.bin')
    const c = measure('curl', ['-sS', '-f', '-o', out, `http://${reg.host}/v2/ours/r0/blobs/${digest}`])
    if (c.status !== 0) throw new Error('curl download failed')
    curlDown.push(c.seconds)
    rmSync(out, { force: true })

    const target = join(work, `node${i}`)
    settleDisk()
    const q = measure(process.execPath, [run, 'store', 'pull', `${reg.host}/ours/r0:v1`, '--store', target, '--json'], { env })
    if (q.status !== 0) throw new Error(`pull failed: ${q.stdout}`)
    pull.push(q.seconds)
    pullRss = Math.max(pullRss, q.peakRssMb)
    rmSync(target, { recursive: true, force: true })
  }
  const mib = size / 2 ** 20
  const rate = (s: number): string => `${(mib / s).toFixed(0)} MiB/s`
  const each = (v: number[]): string => v.map((x) => x.toFixed(2)).join(', ')
  console.log(`runs (s): curl upload ${each(curlUp)}; push ${each(push)}; curl download ${each(curlDown)}; pull ${each(pull)}`)
  console.log(`engine.plan ${mib.toFixed(0)} MiB, ${runs} runs (medians):`)
  console.log(`  curl upload ${median(curlUp).toFixed(2)} s (${rate(median(curlUp))}); store push ${median(push).toFixed(2)} s (${rate(median(push))}), peak RSS ${pushRss.toFixed(0)} MB`)
  console.log(`  curl download ${median(curlDown).toFixed(2)} s (${rate(median(curlDown))}); store pull ${median(pull).toFixed(2)} s (${rate(median(pull))}), peak RSS ${pullRss.toFixed(0)} MB`)
  report('push vs curl upload', median(push), median(curlUp), 1.5)
  report('pull (verified, finalized) vs curl download', median(pull), median(curlDown), 1.5)
  console.log(`push peak RSS ${pushRss.toFixed(0)} MB (goal < 200) ${pushRss < 200 ? 'OK' : 'MISSED'}`)
  console.log(`pull peak RSS ${pullRss.toFixed(0)} MB (goal < 200) ${pullRss < 200 ? 'OK' : 'MISSED'}`)
} finally {
  await reg.stop()
  rmSync(work, { recursive: true, force: true })
}
