/**
 * Finding programs before running them: whether a path is an executable regular file, and the first one of
 * a name on PATH. The builders look up trtexec in a fixed order (flag, TRTEXEC, PATH, a default install
 * path) and doctor reports where nvidia-smi and optimum-cli are, so the lookup is ours rather than the
 * spawn's: a message can then say which place was looked at and why a file there does not qualify.
 */
import { constants } from 'node:fs'
import { access, stat } from 'node:fs/promises'
import { delimiter, isAbsolute, join, resolve } from 'node:path'
import { errnoCode } from './errors.js'

type Env = Record<string, string | undefined>

export type ExecutableProblem = 'missing' | 'not-a-file' | 'not-executable'

export type ExecutableCheck =
  | { ok: true; path: string }
  | { ok: false; path: string; problem: ExecutableProblem; reason: string }

/** Whether `path` (resolved against the working directory) is a regular file this process may execute. */
export async function checkExecutable(path: string): Promise<ExecutableCheck> {
  const abs = resolve(path)
  let st
  try {
    st = await stat(abs)
  } catch (err) {
    const code = errnoCode(err)
    if (code === 'ENOENT') return { ok: false, path: abs, problem: 'missing', reason: 'it does not exist' }
    if (code === 'ENOTDIR') return { ok: false, path: abs, problem: 'not-a-file', reason: 'a part of the path is a file, not a directory' }
    return { ok: false, path: abs, problem: 'not-executable', reason: `it cannot be inspected (${code ?? (err as Error).message})` }
  }
  if (st.isDirectory()) return { ok: false, path: abs, problem: 'not-a-file', reason: 'it is a directory' }
  if (!st.isFile()) return { ok: false, path: abs, problem: 'not-a-file', reason: 'it is not a regular file' }
  try {
    await access(abs, constants.X_OK)
  } catch {
    return { ok: false, path: abs, problem: 'not-executable', reason: `it is not executable (mode ${(st.mode & 0o777).toString(8)})` }
  }
  return { ok: true, path: abs }
}

/** PATH's directories in order. Empty entries (which a shell reads as the working directory) are skipped. */
export function pathDirs(env: Env = process.env): string[] {
  return (env.PATH ?? '').split(delimiter).filter((d) => d !== '').map((d) => (isAbsolute(d) ? d : resolve(d)))
}

/** The first executable regular file called `name` in PATH's directories, or undefined. */
export async function findOnPath(name: string, env: Env = process.env): Promise<string | undefined> {
  for (const dir of pathDirs(env)) {
    const check = await checkExecutable(join(dir, name))
    if (check.ok) return check.path
  }
  return undefined
}
