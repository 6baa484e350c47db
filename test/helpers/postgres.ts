/**
 * A private PostgreSQL 15 cluster for the registry tests: initdb in a temporary directory, pg_ctl on a
 * free loopback port, password (scram) authentication for the user `modelforge`. Postgres refuses to run
 * as root, so as root (CI) every server command runs as the package's `postgres` user through runuser.
 * `available()` is false where Debian's postgresql package is not installed (.ci/run installs it).
 */
import { spawnSync } from 'node:child_process'
import { chmodSync, chownSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir, userInfo } from 'node:os'
import { join } from 'node:path'
import { freePort } from './net.js'

const BIN = '/usr/lib/postgresql/15/bin'
export const PG_PASSWORD = 'se;cr\'et"pw'

export function postgresAvailable(): boolean {
  return existsSync(join(BIN, 'initdb')) && existsSync(join(BIN, 'pg_ctl'))
}

export interface PgCluster {
  port: number
  dir: string
  /** postgres://modelforge:<password>@127.0.0.1:<port>/<db> */
  url(db?: string): string
  createDatabase(name: string): void
  stop(): void
  start(): void
  remove(): void
}

const asRoot = userInfo().uid === 0
// runuser lives in /usr/sbin, which a root shell started with a bare PATH (CI's `env -i`) does not search.
const RUNUSER = ['/usr/sbin/runuser', '/sbin/runuser'].find((p) => existsSync(p)) ?? 'runuser'

function run(cmd: string, args: string[], options: { allowFail?: boolean } = {}): { status: number | null; stdout: string; stderr: string } {
  const [file, argv] = asRoot ? [RUNUSER, ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args]
  const r = spawnSync(file, argv, { encoding: 'utf8', cwd: '/' })
  if (r.status !== 0 && !options.allowFail) throw new Error(`${cmd} ${args.join(' ')} failed (${r.error?.message ?? r.status}): ${r.stderr ?? ''}${r.stdout ?? ''}`)
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

export async function startPostgres(): Promise<PgCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'mf-pg-'))
  const data = join(dir, 'data')
  const pwfile = join(dir, 'pw')
  writeFileSync(pwfile, PG_PASSWORD + '\n')
  if (asRoot) {
    const pg = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' })
    const uid = Number(pg.stdout.trim())
    const gid = Number(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout.trim())
    chownSync(dir, uid, gid)
    chownSync(pwfile, uid, gid)
  }
  chmodSync(dir, 0o700)
  run(join(BIN, 'initdb'), ['-D', data, '-U', 'modelforge', '--pwfile', pwfile, '--auth-host=scram-sha-256', '--auth-local=trust', '-E', 'UTF8', '--no-sync'])
  const port = await freePort()
  const start = (): void => {
    run(join(BIN, 'pg_ctl'), ['-D', data, '-l', join(dir, 'log'), '-w', '-t', '60', '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`, 'start'])
  }
  start()
  const cluster: PgCluster = {
    port,
    dir,
    url: (db = 'postgres') => `postgres://modelforge:${encodeURIComponent(PG_PASSWORD)}@127.0.0.1:${port}/${db}`,
    createDatabase(name) {
      run(join(BIN, 'createdb'), ['-h', dir, '-p', String(port), '-U', 'modelforge', name])
    },
    stop() {
      run(join(BIN, 'pg_ctl'), ['-D', data, '-m', 'fast', '-w', 'stop'], { allowFail: true })
    },
    start,
    remove() {
      cluster.stop()
      rmSync(dir, { recursive: true, force: true })
    },
  }
  return cluster
}
