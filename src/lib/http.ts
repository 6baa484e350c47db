/**
 * What every HTTP client of modelforge (the Hub's, the OCI registries') shares: which failures are worth a
 * retry, and the backoff between attempts. Each client keeps its own requests and error mapping.
 */

/** A failure worth retrying: the connection broke or the server said 5xx. */
export class RetryableError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message)
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

export function backoffDelay(attempt: number, baseMs: number): number {
  const d = baseMs * 2 ** attempt
  return Math.round(d * (0.75 + Math.random() * 0.5))
}

/** Network-level failures of undici's fetch: TypeError("fetch failed") with a cause, or a body stream abort. */
export function isConnectionError(err: unknown): boolean {
  if (err instanceof RetryableError) return true
  if (!err || typeof err !== 'object') return false
  const e = err as { name?: string; message?: string; code?: string; cause?: { code?: string } }
  if (e.name === 'TypeError' && e.message === 'fetch failed') return true
  if (e.message === 'terminated' || e.name === 'AbortError') return true
  const code = e.code ?? e.cause?.code ?? ''
  return /^(ECONNRESET|ECONNREFUSED|EPIPE|ETIMEDOUT|EAI_AGAIN|ENOTFOUND|EHOSTUNREACH|ENETUNREACH|UND_ERR_\w+)$/.test(code)
}

export function describeNetworkError(err: unknown): string {
  const e = err as { message?: string; cause?: { code?: string; message?: string } }
  const cause = e?.cause?.code ?? e?.cause?.message
  return cause ? `${e?.message ?? String(err)} (${cause})` : (e?.message ?? String(err))
}
