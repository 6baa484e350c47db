/**
 * The store's two performance goals (issue 2, acceptance 8), each against a baseline measured in the same run:
 *
 * 1. finalize of a 2 GiB version in 8 files vs `openssl dgst -sha256` of the same files in one process (one
 *    core at full hashing speed). Goal: ratio <= 0.7 (both cores hash, nothing is read twice), and finalize's
 *    peak RSS under 200 MB (hashing streams through fixed buffers).
 * 2. wall time of `node bin/run.js store current <agent>` vs `node -e 0`, medians of 15 runs each,
 *    interleaved. Goal: <= 2.5x (answered by the fast path without oclif).
 *
 * The data is written, and `sync` run, before any timing; the files then sit in the page cache for both
 * finalize and openssl alike. The machine is shared: the load average is printed with the figures.
 */
import { spawnSync } from 'node:child_process'
import { loadavg } from 'node:os'
import { closeSync, mkdirSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { measure, median, repoRoot, report, scratch, settleDisk } from './util.js'

const FILES = 8
const FILE_BYTES = 256 * 1024 * 1024
const RUNS = 3
const STARTUP_RUNS = 15

const root = scratch('store')
const store = join(root, 'store')
const finalizeScript = join(root, 'finalize.mjs')
writeFileSync(finalizeScript, `
import { ModelStore } from ${JSON.stringify(join(repoRoot, 'dist', 'publish', 'store.js'))}
const [storeRoot, version] = process.argv.slice(2)
await new ModelStore(storeRoot).finalize('big', version)
`)

function stageVersion(version: string): string[] {
  const dir = join(store, 'big', 'versions', `${version}.tmp`)
  mkdirSync(dir, { recursive: true })
  const chunk = Buffer.alloc(4 * 1024 * 1024)
  const files: string[] = []
  for (let f = 0; f < FILES; f++) {
    const path = join(dir, `shard-${f}.bin`)
    const fd = openSync(path, 'w')
    for (let off = 0; off < FILE_BYTES; off += chunk.length) {
      // Varying content, so that no layer can shortcut identical blocks.
      chunk.writeUInt32LE(off ^ f, 0)
      chunk.writeUInt32LE(off + f, chunk.length - 4)
      writeSync(fd, chunk)
    }
    closeSync(fd)
    files.push(path)
  }
  return files
}

console.log(`load average before: ${loadavg().map((x) => x.toFixed(2)).join(' ')}`)
const finalizeTimes: number[] = []
const finalizeRss: number[] = []
const opensslTimes: number[] = []
for (let run = 0; run < RUNS; run++) {
  const version = `v${run}`
  const files = stageVersion(version)
  settleDisk()
  // Warm the page cache for both sides with one untimed read pass of openssl.
  if (run === 0) spawnSync('openssl', ['dgst', '-sha256', ...files])
  const o = measure('openssl', ['dgst', '-sha256', ...files])
  if (o.status !== 0) throw new Error('openssl dgst failed')
  opensslTimes.push(o.seconds)
  const m = measure(process.execPath, [finalizeScript, store, version])
  if (m.status !== 0) throw new Error('finalize failed')
  finalizeTimes.push(m.seconds)
  finalizeRss.push(m.peakRssMb)
  rmSync(join(store, 'big', 'versions', version), { recursive: true, force: true })
  console.log(`run ${run + 1}: finalize ${m.seconds.toFixed(3)} s (peak RSS ${m.peakRssMb.toFixed(0)} MB), openssl dgst -sha256 ${o.seconds.toFixed(3)} s`)
}
const gib = (FILES * FILE_BYTES) / 2 ** 30
const fin = median(finalizeTimes)
const ssl = median(opensslTimes)
console.log(`finalize of ${gib} GiB in ${FILES} files: median ${fin.toFixed(3)} s (${(gib / fin).toFixed(2)} GiB/s); openssl: median ${ssl.toFixed(3)} s (${(gib / ssl).toFixed(2)} GiB/s)`)
const okRatio = report('finalize / openssl dgst -sha256', fin, ssl, 0.7)
const rss = Math.max(...finalizeRss)
const okRss = rss < 200
console.log(`finalize peak RSS: ${rss.toFixed(0)} MB (goal < 200 MB) ${okRss ? 'OK' : 'MISSED'}`)

// Start-up of `store current`.
const small = join(root, 'small')
const stage = spawnSync(process.execPath, [join(repoRoot, 'bin', 'run.js'), 'toy-store', small, '--agents', 'scout', '--versions', '1', '--json'], { encoding: 'utf8' })
if (stage.status !== 0) throw new Error(`toy-store failed: ${stage.stderr}`)
const time = (args: string[]): number => {
  const t0 = process.hrtime.bigint()
  const r = spawnSync(process.execPath, args, { encoding: 'utf8' })
  const s = Number(process.hrtime.bigint() - t0) / 1e9
  if (r.status !== 0) throw new Error(`${args.join(' ')} failed: ${r.stderr}`)
  return s
}
const current: number[] = []
const bare: number[] = []
for (let i = 0; i < STARTUP_RUNS; i++) {
  bare.push(time(['-e', '0']))
  current.push(time([join(repoRoot, 'bin', 'run.js'), 'store', 'current', 'scout', '--store', small]))
}
const oclif: number[] = []
for (let i = 0; i < 5; i++) oclif.push(time([join(repoRoot, 'bin', 'run.js'), 'store', 'current', 'scout', '--store', small, '--channel', 'current']))
console.log(`store current: median ${(median(current) * 1000).toFixed(1)} ms; node -e 0: median ${(median(bare) * 1000).toFixed(1)} ms; through oclif (for scale): median ${(median(oclif) * 1000).toFixed(1)} ms`)
const okStartup = report('store current / node -e 0', median(current), median(bare), 2.5)
console.log(`load average after: ${loadavg().map((x) => x.toFixed(2)).join(' ')}`)
rmSync(root, { recursive: true, force: true })
const missed = [okRatio ? '' : 'hash ratio', okRss ? '' : 'peak RSS', okStartup ? '' : 'start-up'].filter(Boolean)
console.log(missed.length ? `store bench: goals missed: ${missed.join(', ')}` : 'store bench: all goals met')
