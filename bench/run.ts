/**
 * `npm run bench`: runs every bench/*.bench.ts in its own process, one after another (they measure wall
 * time and peak RSS, so they must not share the two cores). Each bench prints its own ratio against a
 * baseline measured in the same run. `npm run bench -- store` runs only the benches whose name matches.
 */
import { readdirSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const filter = process.argv[2]
const benches = readdirSync(here)
  .filter((f) => f.endsWith('.bench.ts'))
  .filter((f) => !filter || f.includes(filter))
  .sort()

let failed = 0
for (const bench of benches) {
  console.log(`\n== ${bench} ==`)
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(here, bench)], { stdio: 'inherit' })
  if (r.status !== 0) {
    failed++
    console.log(`${bench} failed (exit ${r.status ?? r.signal})`)
  }
}
process.exit(failed ? 1 : 0)
