/**
 * A loopback mock of the Hugging Face Hub, for tests and the fetch benchmark: node:http on 127.0.0.1 with an
 * ephemeral port, repos held in memory (branches, tags, commits), shaped after the real API responses in
 * fixtures/hub (see SOURCES.md there) and the behaviour documented for huggingface_hub and @huggingface/hub:
 *
 *   GET  /api/models/{repo}[/revision/{rev}]            model info with "sha" (401 RepoNotFound, 404 RevisionNotFound)
 *   GET  /api/models/{repo}/tree/{rev}[?recursive=true]  listing, paged with an absolute Link: <...>; rel="next"
 *   POST /api/models/{repo}/paths-info/{rev}             JSON ({"paths": [...]}) or form-encoded (Python) bodies
 *   GET|HEAD /{repo}/resolve/{rev}/{path}                Range/206/416, ETag, X-Linked-Etag/-Size, X-Repo-Commit;
 *                                                        404 EntryNotFound / RevisionNotFound
 *
 * Every request is recorded (method, path, Range, whether it carried a token). Faults can be injected per
 * request: a truncated body (connection dropped midway), corrupted bytes, HTTP 500, a reset connection and a
 * slow body. File content is either a Buffer or a procedural stream (for the 1 GiB benchmark file, which is
 * never held in memory).
 */
import { createHash } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'

/** Content too large to hold: a deterministic generator plus its precomputed sha256. */
export interface StreamedContent {
  size: number
  sha256: string
  /** Bytes [start, end) of the content. */
  read(start: number, end: number): Readable
}

export interface MockFileSpec {
  path: string
  content: Buffer | string | StreamedContent
  /** Stored with Git LFS (blob id = sha256). Default: true for weights/ONNX and anything over 1 MiB. */
  lfs?: boolean
  /** Overrides the sha256 the listing advertises (a "wrong hash" upstream). */
  advertisedSha256?: string
}

export interface MockFile {
  path: string
  size: number
  lfs: boolean
  /** git blob sha1 of the file (non-LFS) or of its LFS pointer (LFS), as the tree API's "oid". */
  oid: string
  sha256: string
  /** What the listing says the sha256 is (normally sha256). */
  advertisedSha256: string
  content: Buffer | StreamedContent
}

export interface MockRepo {
  id: string
  private: boolean
  commits: Map<string, MockFile[]>
  branches: Map<string, string>
  tags: Map<string, string>
}

export type FaultKind = 'status500' | 'status' | 'reset' | 'truncate' | 'corrupt' | 'slow' | 'ignore-range'

export interface FaultSpec {
  kind: FaultKind
  /** Applies to resolve requests whose file path equals this (default: every resolve request). */
  path?: string
  /** Or: to any request whose URL path matches. */
  match?: RegExp
  /** How many matching requests get the fault (default 1; Infinity for all). */
  times?: number
  /** truncate: body bytes sent before the connection is dropped (default half). corrupt: offset flipped (default middle). */
  atByte?: number
  /** slow: delay before each 16 KiB chunk after the first, in ms (default 50). */
  delayMs?: number
  /** status: the HTTP status and X-Error-Code to answer with. */
  status?: number
  errorCode?: string
}

export interface RecordedRequest {
  method: string
  path: string
  url: string
  range?: string
  authorized: boolean
  /** host:port the request was sent to (the Hub or the CDN). */
  host: string
}

const LFS_DEFAULT = /\.(safetensors|bin|onnx|onnx_data|h5|msgpack|pt|pth|ot|gguf)$/

export function gitBlobSha1(content: Buffer): string {
  return createHash('sha1').update(`blob ${content.length}\0`).update(content).digest('hex')
}

export function lfsPointer(sha256: string, size: number): Buffer {
  return Buffer.from(`version https://git-lfs.github.com/spec/v1\noid sha256:${sha256}\nsize ${size}\n`)
}

function toMockFile(spec: MockFileSpec): MockFile {
  const content = typeof spec.content === 'string' ? Buffer.from(spec.content) : spec.content
  const size = Buffer.isBuffer(content) ? content.length : content.size
  const sha256 = Buffer.isBuffer(content) ? createHash('sha256').update(content).digest('hex') : content.sha256
  const lfs = spec.lfs ?? (!Buffer.isBuffer(content) || LFS_DEFAULT.test(spec.path) || size > 1024 * 1024)
  if (!lfs && !Buffer.isBuffer(content)) throw new Error('streamed content must be LFS')
  const oid = lfs ? gitBlobSha1(lfsPointer(sha256, size)) : gitBlobSha1(content as Buffer)
  return { path: spec.path, size, lfs, oid, sha256, advertisedSha256: spec.advertisedSha256 ?? sha256, content }
}

/** A deterministic commit id for a file set (what a real Hub gives us is opaque anyway). */
function commitId(repoId: string, files: MockFile[], salt: string): string {
  const h = createHash('sha1').update(repoId).update(salt)
  for (const f of files) h.update(`${f.path}\0${f.oid}\0`)
  return h.digest('hex')
}

/**
 * Procedural content: 1 MiB blocks derived from one pseudo-random base block, each stamped with its index,
 * so the stream is cheap to produce at any offset and never repeats a block.
 */
export function proceduralContent(size: number, seed = 'modelforge'): { read: StreamedContent['read']; hash(): string } {
  const BLOCK = 1024 * 1024
  const base = Buffer.alloc(BLOCK)
  for (let i = 0; i < BLOCK; i += 32) createHash('sha256').update(`${seed}:${i}`).digest().copy(base, i)
  const block = (index: number): Buffer => {
    const b = Buffer.from(base)
    b.writeBigUInt64LE(BigInt(index), 0)
    return b
  }
  const read = (start: number, end: number): Readable => {
    async function* gen(): AsyncGenerator<Buffer> {
      let pos = start
      while (pos < end) {
        const index = Math.floor(pos / BLOCK)
        const offset = pos - index * BLOCK
        const take = Math.min(BLOCK - offset, end - pos)
        const b = block(index)
        yield offset === 0 && take === BLOCK ? b : b.subarray(offset, offset + take)
        pos += take
      }
    }
    return Readable.from(gen(), { objectMode: false })
  }
  const hash = (): string => {
    const h = createHash('sha256')
    for (let pos = 0, i = 0; pos < size; pos += BLOCK, i++) {
      const b = block(i)
      h.update(pos + BLOCK <= size ? b : b.subarray(0, size - pos))
    }
    return h.digest('hex')
  }
  return { read, hash }
}

export function streamedContent(size: number, seed?: string, sha256?: string): StreamedContent {
  const p = proceduralContent(size, seed)
  return { size, sha256: sha256 ?? p.hash(), read: p.read }
}

interface ActiveFault extends FaultSpec {
  remaining: number
}

export class MockHub {
  readonly repos = new Map<string, MockRepo>()
  readonly requests: RecordedRequest[] = []
  /** The token private repos accept. */
  token = 'hf_mocktoken0123456789'
  /** Tree listing page size (small values exercise Link paging). */
  pageSize = 50
  private faults: ActiveFault[] = []
  private servers: Server[] = []
  private sockets = new Set<Socket>()
  url = ''
  /** Set by startCdn(): LFS files are redirected there (another origin). */
  cdnUrl = ''

  /** Adds a repo with one commit per entry of `commits`; `branches`/`tags` map names to commit indexes. */
  addRepo(
    id: string,
    commits: MockFileSpec[][],
    refs: { branches?: Record<string, number>; tags?: Record<string, number>; private?: boolean } = {},
  ): { commits: string[] } {
    const repo: MockRepo = { id, private: refs.private ?? false, commits: new Map(), branches: new Map(), tags: new Map() }
    const ids: string[] = []
    commits.forEach((specs, i) => {
      const files = specs.map(toMockFile).sort((a, b) => (a.path < b.path ? -1 : 1))
      const sha = commitId(id, files, String(i))
      repo.commits.set(sha, files)
      ids.push(sha)
    })
    for (const [name, i] of Object.entries(refs.branches ?? { main: commits.length - 1 })) repo.branches.set(name, ids[i]!)
    for (const [name, i] of Object.entries(refs.tags ?? {})) repo.tags.set(name, ids[i]!)
    this.repos.set(id, repo)
    return { commits: ids }
  }

  /** Moves a branch to another commit (a push). */
  setBranch(repoId: string, branch: string, commit: string): void {
    this.repos.get(repoId)!.branches.set(branch, commit)
  }

  fault(spec: FaultSpec): void {
    this.faults.push({ ...spec, remaining: spec.times ?? 1 })
  }

  clearFaults(): void {
    this.faults = []
  }

  resetCounts(): void {
    this.requests.length = 0
  }

  /** Requests whose URL path starts with `prefix` (or all). */
  count(prefix = ''): number {
    return this.requests.filter((r) => r.path.startsWith(prefix)).length
  }

  async start(port = 0, host = '127.0.0.1'): Promise<string> {
    this.url = await this.listen(port, host)
    return this.url
  }

  /** A second origin (default 127.0.0.2) serving LFS content, like the Hub's CDN; LFS resolves redirect there. */
  async startCdn(host = '127.0.0.2'): Promise<string> {
    this.cdnUrl = await this.listen(0, host)
    return this.cdnUrl
  }

  private async listen(port: number, host: string): Promise<string> {
    const server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) this.json(res, 500, { error: String(err) })
        else res.destroy()
      })
    })
    server.keepAliveTimeout = 5_000
    server.on('connection', (s: Socket) => {
      this.sockets.add(s)
      s.on('close', () => this.sockets.delete(s))
    })
    await new Promise<void>((resolve) => server.listen(port, host, resolve))
    this.servers.push(server)
    const addr = server.address() as AddressInfo
    return `http://${host}:${addr.port}`
  }

  async stop(): Promise<void> {
    const servers = this.servers
    this.servers = []
    for (const s of this.sockets) s.destroy()
    await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))))
  }

  private takeFault(urlPath: string, filePath?: string): ActiveFault | undefined {
    const f = this.faults.find((f) => f.remaining > 0 && (f.match ? f.match.test(urlPath) : filePath !== undefined && (!f.path || f.path === filePath)))
    if (f) f.remaining--
    return f
  }

  private json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    const text = JSON.stringify(body)
    res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text), ...headers })
    res.end(text)
  }

  private repoError(res: ServerResponse, head = false): void {
    const msg = 'Repository Not Found for url. Please make sure you specified the correct `repo_id` and `repo_type`.\nIf you are trying to access a private or gated repo, make sure you are authenticated.'
    if (head) {
      res.writeHead(401, { 'X-Error-Code': 'RepoNotFound', 'X-Error-Message': 'Repository not found' })
      res.end()
    } else this.json(res, 401, { error: msg }, { 'X-Error-Code': 'RepoNotFound', 'X-Error-Message': 'Repository not found' })
  }

  /** Splits "org/name/<rest>" (or "name/<rest>") against the repos we know. */
  private findRepo(path: string): { repo?: MockRepo; id: string; rest: string } {
    const parts = path.split('/')
    for (const n of [2, 1]) {
      const id = parts.slice(0, n).join('/')
      if (this.repos.has(id)) return { repo: this.repos.get(id), id, rest: parts.slice(n).join('/') }
    }
    return { id: parts.slice(0, 2).join('/'), rest: parts.slice(2).join('/') }
  }

  private resolveRev(repo: MockRepo, rev: string): string | undefined {
    if (repo.commits.has(rev)) return rev
    return repo.branches.get(rev) ?? repo.tags.get(rev)
  }

  private authorized(req: IncomingMessage): boolean {
    return req.headers.authorization === `Bearer ${this.token}`
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.url)
    const rawPath = url.pathname
    this.requests.push({
      method: req.method ?? 'GET',
      path: decodeURIComponent(rawPath),
      url: req.url ?? '',
      range: req.headers.range,
      authorized: req.headers.authorization !== undefined,
      host: req.headers.host ?? '',
    })

    if (rawPath.startsWith('/api/models/')) {
      const fault = this.takeFault(rawPath)
      if (fault && (await this.applyEarlyFault(fault, res))) return
      return this.handleApi(req, res, url)
    }
    if (rawPath.startsWith('/cdn/') && (req.method === 'GET' || req.method === 'HEAD')) return this.handleCdn(req, res, rawPath)
    const m = /^\/(.+?)\/resolve\/(.+)$/.exec(rawPath)
    if (m && (req.method === 'GET' || req.method === 'HEAD')) return this.handleResolve(req, res, m[1]!, m[2]!, rawPath)
    this.json(res, 404, { error: 'Not Found' })
  }

  /** Faults that replace the whole response; returns true when the response is done. */
  private async applyEarlyFault(fault: ActiveFault, res: ServerResponse): Promise<boolean> {
    if (fault.kind === 'status500') {
      this.json(res, 500, { error: 'Internal Error - We\'re working hard to fix this as soon as possible!' })
      return true
    }
    if (fault.kind === 'status') {
      const headers: Record<string, string> = fault.errorCode ? { 'X-Error-Code': fault.errorCode } : {}
      this.json(res, fault.status ?? 400, { error: `${fault.errorCode ?? 'Error'} (injected)` }, headers)
      return true
    }
    if (fault.kind === 'reset') {
      res.socket?.resetAndDestroy()
      return true
    }
    return false
  }

  private async handleApi(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const path = decodeURIComponent(url.pathname.slice('/api/models/'.length))
    const { repo, id, rest } = this.findRepo(path)
    if (!repo || (repo.private && !this.authorized(req))) return this.repoError(res)

    let kind = 'revision'
    let tail = 'main'
    const km = /^(revision|tree|paths-info)\/(.+)$/.exec(rest)
    if (km) {
      kind = km[1]!
      tail = km[2]!
    } else if (rest !== '') return this.json(res, 404, { error: 'Not Found' })

    if (kind === 'paths-info') {
      const commit = this.resolveRev(repo, tail)
      if (!commit) return this.revisionError(res, tail)
      const body = await readBody(req)
      const paths = parsePathsBody(body, req.headers['content-type'] ?? '')
      const files = repo.commits.get(commit)!
      const out = paths.flatMap((p) => {
        const f = files.find((x) => x.path === p)
        return f ? [this.treeEntry(f, commit, true)] : []
      })
      return this.json(res, 200, out)
    }

    if (kind === 'tree') {
      // Revisions may arrive unencoded with "/" (refs/pr/1) and be followed by a folder path; try longest first.
      const segs = tail.split('/')
      let commit: string | undefined
      let folder = ''
      for (let n = segs.length; n >= 1 && !commit; n--) {
        commit = this.resolveRev(repo, segs.slice(0, n).join('/'))
        if (commit) folder = segs.slice(n).join('/')
      }
      if (!commit) return this.revisionError(res, segs[0]!)
      const recursive = url.searchParams.get('recursive') === 'true'
      const expand = url.searchParams.get('expand') === 'true'
      const entries = this.listing(repo.commits.get(commit)!, folder, recursive).map((e) =>
        'oid' in e && e.type === 'file' ? this.treeEntry(e.file, commit, expand) : { type: 'directory', oid: e.oid, size: 0, path: e.path },
      )
      const cursor = Number(url.searchParams.get('cursor') ?? '0')
      const page = entries.slice(cursor, cursor + this.pageSize)
      const headers: Record<string, string> = {}
      if (cursor + this.pageSize < entries.length) {
        const next = new URL(url.toString())
        next.searchParams.set('cursor', String(cursor + this.pageSize))
        headers.Link = `<${next.toString()}>; rel="next"`
      }
      return this.json(res, 200, page, headers)
    }

    const commit = this.resolveRev(repo, tail)
    if (!commit) return this.revisionError(res, tail)
    const files = repo.commits.get(commit)!
    return this.json(res, 200, {
      _id: createHash('sha1').update(id).digest('hex').slice(0, 24),
      id,
      modelId: id,
      author: id.includes('/') ? id.split('/')[0] : undefined,
      sha: commit,
      lastModified: '2026-11-01T00:00:00.000Z',
      private: repo.private,
      gated: false,
      disabled: false,
      downloads: 0,
      likes: 0,
      library_name: 'transformers',
      tags: ['transformers', 'onnx', 'safetensors'],
      pipeline_tag: 'feature-extraction',
      siblings: files.map((f) => ({ rfilename: f.path })),
      createdAt: '2026-01-01T00:00:00.000Z',
    })
  }

  private revisionError(res: ServerResponse, rev: string, head = false): void {
    const headers = { 'X-Error-Code': 'RevisionNotFound', 'X-Error-Message': `Invalid rev id: ${rev}` }
    if (head) {
      res.writeHead(404, headers)
      res.end()
    } else this.json(res, 404, { error: `Invalid rev id: ${rev}` }, headers)
  }

  private listing(files: MockFile[], folder: string, recursive: boolean): Array<{ type: 'file'; file: MockFile; oid: string; path: string } | { type: 'directory'; oid: string; path: string }> {
    const prefix = folder ? folder + '/' : ''
    const dirs = new Set<string>()
    const out: Array<{ type: 'file'; file: MockFile; oid: string; path: string } | { type: 'directory'; oid: string; path: string }> = []
    for (const f of files) {
      if (!f.path.startsWith(prefix)) continue
      const rel = f.path.slice(prefix.length).split('/')
      for (let i = 1; i < rel.length; i++) {
        if (!recursive && i > 1) break
        dirs.add(prefix + rel.slice(0, i).join('/'))
      }
      if (recursive || rel.length === 1) out.push({ type: 'file', file: f, oid: f.oid, path: f.path })
    }
    for (const d of dirs) out.push({ type: 'directory', oid: createHash('sha1').update(d).digest('hex'), path: d })
    return out.sort((a, b) => (a.path < b.path ? -1 : 1))
  }

  private treeEntry(f: MockFile, commit: string, expand: boolean): Record<string, unknown> {
    const entry: Record<string, unknown> = { type: 'file', oid: f.oid, size: f.size, path: f.path }
    if (f.lfs) entry.lfs = { oid: f.advertisedSha256, size: f.size, pointerSize: lfsPointer(f.sha256, f.size).length }
    if (expand) entry.lastCommit = { id: commit, title: 'Upload model', date: '2026-11-01T00:00:00.000Z' }
    return entry
  }

  private async handleResolve(req: IncomingMessage, res: ServerResponse, repoPath: string, tail: string, rawPath: string): Promise<void> {
    const head = req.method === 'HEAD'
    const { repo } = this.findRepo(decodeURIComponent(repoPath))
    if (!repo || (repo.private && !this.authorized(req))) return this.repoError(res, head)
    // The revision is URL-encoded by clients (refs%2Fpr%2F1), so its "/" never splits it from the path.
    const slash = tail.indexOf('/')
    const rev = decodeURIComponent(slash < 0 ? tail : tail.slice(0, slash))
    const filePath = decodeURIComponent(slash < 0 ? '' : tail.slice(slash + 1))
    const commit = this.resolveRev(repo, rev)
    if (!commit) return this.revisionError(res, rev, head)
    const file = repo.commits.get(commit)!.find((f) => f.path === filePath)
    if (!file) {
      res.writeHead(404, { 'X-Error-Code': 'EntryNotFound', 'X-Error-Message': 'Entry not found', 'X-Repo-Commit': commit })
      res.end()
      return
    }
    const etag = file.lfs ? file.sha256 : file.oid
    const headers: Record<string, string | number> = {
      'X-Repo-Commit': commit,
      ETag: `"${etag}"`,
      'Accept-Ranges': 'bytes',
      'Content-Type': 'application/octet-stream',
    }
    if (file.lfs) {
      headers['X-Linked-Etag'] = `"${file.sha256}"`
      headers['X-Linked-Size'] = file.size
    }
    if (file.lfs && this.cdnUrl) {
      // Like the real Hub: LFS files are served by a CDN on another host; the metadata stays on the redirect.
      const location = `${this.cdnUrl}/cdn/${repo.id}/${commit}/${file.path.split('/').map(encodeURIComponent).join('/')}`
      res.writeHead(302, { ...headers, ETag: `"${file.oid}"`, Location: location, 'Content-Length': 0 })
      res.end()
      return
    }
    const fault = head ? undefined : this.takeFault(rawPath, filePath)
    if (fault && (await this.applyEarlyFault(fault, res))) return
    await this.serveFile(req, res, file, headers, fault)
  }

  /** The CDN side of an LFS redirect: the content, with Range, and no Hub headers. */
  private async handleCdn(req: IncomingMessage, res: ServerResponse, rawPath: string): Promise<void> {
    const parts = decodeURIComponent(rawPath.slice('/cdn/'.length)).split('/')
    const { repo, rest } = this.findRepo(parts.join('/'))
    const [commit, ...fileParts] = rest.split('/')
    const file = repo?.commits.get(commit ?? '')?.find((f) => f.path === fileParts.join('/'))
    if (!file) return this.json(res, 404, { error: 'NoSuchKey' })
    const fault = req.method === 'HEAD' ? undefined : this.takeFault(rawPath, file.path)
    if (fault && (await this.applyEarlyFault(fault, res))) return
    const headers = { ETag: `"${createHash('md5').update(file.sha256).digest('hex')}"`, 'Accept-Ranges': 'bytes', 'Content-Type': 'application/octet-stream' }
    await this.serveFile(req, res, file, headers, fault)
  }

  private async serveFile(req: IncomingMessage, res: ServerResponse, file: MockFile, headers: Record<string, string | number>, fault?: ActiveFault): Promise<void> {
    const head = req.method === 'HEAD'
    let start = 0
    let end = file.size
    let status = 200
    const range = fault?.kind === 'ignore-range' ? undefined : req.headers.range
    if (range) {
      const rm = /^bytes=(\d+)-(\d*)$/.exec(range)
      const s = rm ? Number(rm[1]) : NaN
      const e = rm && rm[2] ? Number(rm[2]) + 1 : file.size
      if (!rm || s >= file.size || e <= s) {
        res.writeHead(416, { ...headers, 'Content-Range': `bytes */${file.size}` })
        res.end()
        return
      }
      start = s
      end = Math.min(e, file.size)
      status = 206
      headers['Content-Range'] = `bytes ${start}-${end - 1}/${file.size}`
    }
    headers['Content-Length'] = end - start
    res.writeHead(status, headers)
    if (head) {
      res.end()
      return
    }
    await this.sendBody(res, file, start, end, fault)
  }

  private async sendBody(res: ServerResponse, file: MockFile, start: number, end: number, fault?: ActiveFault): Promise<void> {
    let source: Readable = Buffer.isBuffer(file.content) ? Readable.from([file.content.subarray(start, end)]) : file.content.read(start, end)
    if (!fault) {
      await pipeline(source, res).catch(() => res.destroy())
      return
    }
    const length = end - start
    const stopAt = fault.kind === 'truncate' ? (fault.atByte ?? Math.floor(length / 2)) : length
    const flipAt = fault.kind === 'corrupt' ? (fault.atByte ?? Math.floor(length / 2)) : -1
    const delay = fault.kind === 'slow' ? (fault.delayMs ?? 50) : 0
    if (delay) source = rechunk(source, 16 * 1024)
    let sent = 0
    try {
      for await (const chunk of source as AsyncIterable<Buffer>) {
        if (delay && sent > 0) await new Promise((r) => setTimeout(r, delay))
        if (res.destroyed) return
        let c = chunk
        if (flipAt >= sent && flipAt < sent + c.length) {
          c = Buffer.from(c)
          c[flipAt - sent] = c[flipAt - sent]! ^ 0xff
        }
        if (sent + c.length > stopAt) c = c.subarray(0, stopAt - sent)
        if (c.length && !res.write(c)) await new Promise((r) => res.once('drain', r))
        sent += c.length
        if (sent >= stopAt && stopAt < length) {
          // Let the bytes leave, then drop the connection with the body incomplete.
          await new Promise((r) => setTimeout(r, 20))
          res.destroy()
          return
        }
      }
      res.end()
    } catch {
      res.destroy()
    }
  }
}

async function* rechunkGen(source: Readable, size: number): AsyncGenerator<Buffer> {
  for await (const chunk of source as AsyncIterable<Buffer>) {
    for (let i = 0; i < chunk.length; i += size) yield chunk.subarray(i, i + size)
  }
}

function rechunk(source: Readable, size: number): Readable {
  return Readable.from(rechunkGen(source, size), { objectMode: false })
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = []
  for await (const c of req as AsyncIterable<Buffer>) chunks.push(c)
  return Buffer.concat(chunks).toString('utf8')
}

function parsePathsBody(body: string, contentType: string): string[] {
  if (contentType.includes('application/json')) {
    const parsed = JSON.parse(body || '{}') as { paths?: string[] | string }
    return Array.isArray(parsed.paths) ? parsed.paths : parsed.paths ? [parsed.paths] : []
  }
  return new URLSearchParams(body).getAll('paths')
}
