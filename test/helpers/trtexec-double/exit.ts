/**
 * How a run of the double ends: the exit code, and which `&&&&` line (if any) closes the log. trtexec ends
 * most failures with `&&&& FAILED` and exit 1, but CUDA failures and a missing GPU exit(1) with no test
 * line, and --help returns 0 without PASSED.
 */
export class Exit extends Error {
  constructor(readonly code: number, readonly banner: 'PASSED' | 'FAILED' | null) {
    super(`exit ${code}`)
  }
}

export const failed = (): Exit => new Exit(1, 'FAILED')
export const passed = (): Exit => new Exit(0, 'PASSED')
