/**
 * Fetching a 1 GiB file from the mock Hub (a separate process, procedural content) with
 * `modelforge fetch`, against `curl -o` of the same /resolve/ URL in the same run. Fetch also verifies the
 * sha256 and links the blob, which curl does not; for scale, `curl -o && sha256sum` (the same check done by
 * hand) is measured too, and the CPU time (user + sys) of each. Goal: time ratio fetch / curl <= 1.25, peak
 * RSS of the fetch process < 200 MB. FETCH_BENCH_SIZE (bytes) and FETCH_BENCH_RUNS make it smaller.
 */
import { spawn, spawnSync } from 'node:child_process'
import { createInterface } from 'node:readline'
import { rmSync, statSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { measure, median, repoRoot, report, scratch } from './util.js'

const size = Number(process.env.FETCH_BENCH_SIZE ?? 1024 * 1024 * 1024)
const runs = Number(process.env.FETCH_BENCH_RUNS ?? 3)
const work = scratch('fetch')

const server = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'test/helpers/hub-server.ts'), '--size', String(size)], {
  cwd: repoRoot,
  stdio: ['ignore', 'pipe', 'inherit'],
})
const info = await new Promise<{ url: string; repo: string; commit: string; path: string; sha256: string }>((resolve, reject) => {
  server.on('exit', (code) => reject(new Error(`mock hub exited with ${code}`)))
  createInterface({ input: server.stdout! }).once('line', (line) => resolve(JSON.parse(line)))
})

/** CPU seconds (user + sys) of a command and its children, from GNU time. */
function cpuSeconds(cmd: string, args: string[], env?: NodeJS.ProcessEnv): number {
  const r = spawnSync('/usr/bin/time', ['-f', '__CPU=%U %S', cmd, ...args], { env: env ?? process.env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 })
  const m = /__CPU=([\d.]+) ([\d.]+)/.exec(r.stderr ?? '')
  return m ? Number(m[1]) + Number(m[2]) : NaN
}

try {
  const url = `${info.url}/${info.repo}/resolve/${info.commit}/${info.path}`
  const curlTimes: number[] = []
  const fetchTimes: number[] = []
  const checkedTimes: number[] = []
  let peakRss = 0
  const out = join(work, 'curl.bin')
  const fetchEnv = { ...process.env, HF_ENDPOINT: info.url, HF_HUB_OFFLINE: '0', MODELFORGE_CONFIG: '' }
  const fetchArgs = (cache: string): string[] => [join(repoRoot, 'bin/run.js'), 'fetch', info.repo, '--json', '--cache-dir', cache]
  for (let i = 0; i < runs; i++) {
    const c = measure('curl', ['-sS', '--fail', '-o', out, url])
    if (c.status !== 0 || statSync(out).size !== size) throw new Error('curl failed')
    rmSync(out)
    curlTimes.push(c.seconds)
    const checked = measure('sh', ['-c', `curl -sS --fail -o "$1" "$2" && sha256sum "$1" >/dev/null`, 'sh', out, url])
    rmSync(out)
    checkedTimes.push(checked.seconds)

    const cache = join(work, 'cache')
    const f = measure(process.execPath, fetchArgs(cache), { env: fetchEnv })
    const result = JSON.parse(f.stdout) as { status: number; result: { files: { path: string; sha256: string }[] } }
    if (f.status !== 0 || result.result.files.find((x) => x.path === info.path)?.sha256 !== info.sha256) throw new Error(`fetch failed: ${f.stdout}`)
    rmSync(cache, { recursive: true, force: true })
    fetchTimes.push(f.seconds)
    peakRss = Math.max(peakRss, f.peakRssMb)
    console.log(`run ${i + 1}: curl ${c.seconds.toFixed(2)} s, curl+sha256sum ${checked.seconds.toFixed(2)} s, fetch ${f.seconds.toFixed(2)} s (peak RSS ${f.peakRssMb.toFixed(0)} MB)`)
  }
  const curl = median(curlTimes)
  const fetchS = median(fetchTimes)
  const mib = size / 1024 / 1024
  console.log(`${mib.toFixed(0)} MiB: curl ${curl.toFixed(2)} s (${(mib / curl).toFixed(0)} MiB/s), fetch ${fetchS.toFixed(2)} s (${(mib / fetchS).toFixed(0)} MiB/s), medians of ${runs}`)
  const curlCpu = cpuSeconds('curl', ['-sS', '--fail', '-o', out, url])
  rmSync(out)
  const fetchCpu = cpuSeconds(process.execPath, fetchArgs(join(work, 'cache')), fetchEnv)
  rmSync(join(work, 'cache'), { recursive: true, force: true })
  console.log(`CPU (user+sys) of the client: curl ${curlCpu.toFixed(2)} s, fetch ${fetchCpu.toFixed(2)} s (${os.availableParallelism()} cores, shared with the mock Hub)`)
  report('fetch vs curl -o && sha256sum (time, for scale)', fetchS, median(checkedTimes), 1.25)
  report('fetch 1 GiB vs curl -o (time)', fetchS, curl, 1.25)
  console.log(`fetch peak RSS: ${peakRss.toFixed(0)} MB (goal < 200 MB) ${peakRss < 200 ? 'OK' : 'MISSED'}`)
} finally {
  server.kill('SIGTERM')
}
