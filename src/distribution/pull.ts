/**
 * store pull: an artifact of an OCI registry into the store, as a finalized version (docs/distribution.md).
 *
 * The tag is resolved to a digest once, and everything after is by digest. The artifact is untrusted input:
 * its layout and every layer path are checked before anything is downloaded (artifact.ts), the manifest.json
 * it carries must list exactly its layers, each blob must have the size and sha256 declared (a longer stream
 * is cut and refused), and nothing is written outside the store's `.modelforge/pulls/<digest>/`. Blobs land
 * there under their digest, appended to across runs, so a pull that was cut or killed continues from the
 * bytes it has (rehashed first: a blob is trusted only once its whole sha256 is checked). The version is then
 * staged from those files (moved in) and finalized like any other, unpublished; its checksum must be the
 * pushed one, else it is deleted again and the pull exits 4. Only then does --publish move a channel.
 */
import { createHash } from 'node:crypto'
import { chmod, copyFile, mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { type ModelforgeConfig } from '../lib/env.js'
import { ConflictError, errnoCode, IntegrityError, UsageError } from '../lib/errors.js'
import { debugLog } from '../lib/debug.js'
import { isConnectionError, sleep } from '../lib/http.js'
import { createHasher } from '../lib/blob-hasher.js'
import { receiveBody } from '../lib/blob-writer.js'
import { writeFileAtomic } from '../lib/fs.js'
import { forEachLimit } from '../lib/limit.js'
import { type FileLock } from '../lib/lock.js'
import { formatBytes, type StepReporter } from '../lib/progress.js'
import { auditDone } from '../publish/audit.js'
import { removeTree, restoreWriteBits } from '../publish/discard.js'
import { pullWorkDir, tryPullLock } from '../publish/pulls.js'
import { filesChecksumOf, MANIFEST_NAME, readManifest, type Manifest } from '../publish/manifest.js'
import { validateName } from '../publish/names.js'
import { type KnownDigest } from '../publish/finalize.js'
import { type ModelStore } from '../publish/store.js'
import { checkArtifact, checkVersionManifest, MEDIA_TYPES } from './artifact.js'
import { ociCredentials } from './credentials.js'
import { OciClient } from './oci-client.js'
import { checkRegistryAllowed } from './policy.js'
import { formatReference, parseReference } from './reference.js'

const PARALLEL = 4
const ATTEMPTS = 6

export interface PullOptions {
  agent?: string
  version?: string
  publish?: boolean
  channel?: string
  plainHttp?: boolean
  policy?: ModelforgeConfig
  env?: Record<string, string | undefined>
  step?: StepReporter
  /** Called once the artifact is checked and named, before anything is downloaded (the node reports loading). */
  onResolved?: (r: { agent: string; version: string; digest: string; pinned: string }) => Promise<void>
}

export interface PullResult {
  agent: string
  version: string
  ref: string
  /** registry/repository@sha256:... : what was pulled, whatever the tag says later. */
  pinned: string
  digest: string
  checksum: string
  files: number
  bytes: number
  /** The store held this version already, intact: nothing was downloaded or written. */
  unchanged: boolean
  blobsDownloaded: number
  /** Blobs continued from bytes an earlier, interrupted pull left. */
  blobsResumed: number
  bytesDownloaded: number
  channel: string | null
  previous?: string | null
  requests: number
  warnings?: string[]
}

function blobMismatch(paths: string[], why: string, digest: string): IntegrityError {
  return new IntegrityError(`The registry's blob for ${paths.join(', ')} ${why}`, {
    code: 'OCI_BLOB_MISMATCH',
    hint: 'The registry\'s copy is damaged or was replaced; push the version again. Nothing was published.',
    details: { paths, digest },
  })
}

async function sizeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).size
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return 0
    throw err
  }
}

/**
 * One blob into `path`, continuing from what the file already holds (hashed again first: a blob is trusted
 * only once its whole sha256 is checked). Written and hashed as the Hub's blobs are (lib/blob-writer.ts,
 * lib/blob-hasher.ts: batched writes, a large blob hashed on another core as it lands). The file is complete
 * and checked when this returns; a blob that cannot be right is deleted and refused.
 */
const log = debugLog('oci')

/** A large blob is fdatasynced as it lands (lib/blob-writer.ts), so that finalize's fsync is short. */
const SYNC_EVERY = 64 * 1024 * 1024

async function downloadBlob(client: OciClient, digest: string, size: number, path: string, names: string[], onBytes: (n: number) => void): Promise<{ resumed: boolean; bytes: number; known: KnownDigest }> {
  const want = digest.slice('sha256:'.length)
  let have = await sizeOf(path)
  const fh = await open(path, have > 0 ? 'r+' : 'w')
  let hasher = createHasher(path, 'sha256', size)
  try {
    if (have > size) {
      await fh.truncate(0)
      have = 0
    }
    const resumed = have > 0 && have < size
    await hasher.prefix(have)
    const restart = async (): Promise<void> => {
      await hasher.dispose()
      await fh.truncate(0)
      have = 0
      hasher = createHasher(path, 'sha256', size)
    }
    let bytes = 0
    const began = performance.now()
    for (let attempt = 0; have < size; attempt++) {
      const res = await client.getBlob(digest, have)
      if (res.statusCode === 200 && have > 0) await restart() // the registry ignored the Range: the whole blob comes
      const start = have
      try {
        await receiveBody(res, fh, have, size, hasher, {
          onBytes,
          setOffset: (end) => {
            have = end
          },
          tooLong: () => blobMismatch(names, `is longer than the ${size} bytes its manifest declares`, digest),
          syncEvery: SYNC_EVERY,
        })
      } catch (err) {
        if (err instanceof IntegrityError) throw err
        if (!isConnectionError(err) && (err as Error).message !== 'aborted') throw err
        if (attempt + 1 >= ATTEMPTS) throw err
        await sleep(200 * (attempt + 1))
      } finally {
        bytes += have - start
      }
      if (have < size && attempt + 1 >= ATTEMPTS) throw blobMismatch(names, `ended at ${have} of ${size} bytes, ${ATTEMPTS} times`, digest)
    }
    const received = performance.now()
    const { sha256 } = await hasher.finish()
    log('blob %s: %d bytes received in %d ms, its sha256 ready %d ms later', digest, bytes, Math.round(received - began), Math.round(performance.now() - received))
    if (sha256 !== want) throw blobMismatch(names, `does not have the sha256 its manifest declares (${digest})`, digest)
    // What finalize needs to take this digest rather than read the file again (FinalizeOptions.knownDigests).
    const st = await fh.stat()
    return { resumed, bytes, known: { sha256, size: st.size, ino: st.ino, mtimeMs: st.mtimeMs } }
  } catch (err) {
    await hasher.dispose()
    // Bytes that failed verification are never kept for a resume.
    if (err instanceof IntegrityError) {
      await fh.close().catch(() => undefined)
      await rm(path, { force: true })
    }
    throw err
  } finally {
    await fh.close().catch(() => undefined)
  }
}

export async function pullVersion(store: ModelStore, refText: string, options: PullOptions = {}): Promise<PullResult> {
  const ref = parseReference(refText, { plainHttp: options.plainHttp })
  if (!ref.tag && !ref.digest) {
    throw new UsageError(`${refText} names neither a tag nor a digest`, { code: 'OCI_REFERENCE_INVALID', hint: 'Add the tag (…/scout:v3) or the digest (…/scout@sha256:…) to pull.' })
  }
  if (options.agent !== undefined) validateName('agent', options.agent)
  if (options.version !== undefined) validateName('version', options.version)
  if (options.channel !== undefined) validateName('channel', options.channel)
  if (options.policy) checkRegistryAllowed(ref, options.policy)
  const client = new OciClient(ref, { credentials: ociCredentials(ref.registry, options.env) })
  const what = formatReference(ref)
  options.step?.title(`Resolve ${what}`)
  const got = await client.getManifest(ref.digest ?? ref.tag!, [MEDIA_TYPES.imageManifest])
  if (ref.digest && got.digest !== ref.digest) throw blobMismatch(['its manifest'], `has the digest ${got.digest}, not ${ref.digest}`, ref.digest)
  const digest = got.digest
  const pinned = `${ref.registry}/${ref.repository}@${digest}`
  const layout = checkArtifact(got.bytes, what)

  // manifest.json first (small, in memory): it decides the version's name and must agree with the layers.
  const vm = layout.versionManifestLayer
  const res = await client.getBlob(vm.digest)
  const chunks: Buffer[] = []
  let n = 0
  for await (const c of res) {
    n += (c as Buffer).length
    if (n > vm.size) {
      res.destroy()
      throw blobMismatch([MANIFEST_NAME], `is longer than the ${vm.size} bytes its manifest declares`, vm.digest)
    }
    chunks.push(c as Buffer)
  }
  const vmBytes = Buffer.concat(chunks)
  if (vmBytes.length !== vm.size || `sha256:${createHash('sha256').update(vmBytes).digest('hex')}` !== vm.digest) throw blobMismatch([MANIFEST_NAME], 'does not have the size and sha256 its manifest declares', vm.digest)
  const pushed = checkVersionManifest(vmBytes, layout, what)
  const agent = options.agent ?? validateName('agent', pushed.agent)
  const version = options.version ?? validateName('version', pushed.version)
  const checksum = filesChecksumOf(pushed)
  const bytes = layout.files.reduce((a, f) => a + f.size, 0)
  const base = { agent, version, ref: formatReference({ ...ref, digest: undefined }), pinned, digest, checksum, files: layout.files.length, bytes }

  await options.onResolved?.({ agent, version, digest, pinned })

  // A version the store has already: the same files (verified) is a no-op; other files under its name are refused.
  const existing = await existingManifest(store, agent, version)
  if (existing) {
    if (filesChecksumOf(existing) !== checksum) {
      throw new ConflictError(`${agent}/${version} is in the store already with other files than ${pinned}`, {
        code: 'OCI_VERSION_CONFLICT',
        hint: 'Pull it under another name with --version, or delete the store\'s version first.',
        details: { agent, version, store: filesChecksumOf(existing), pulled: checksum },
      })
    }
    const [report] = await store.verify(agent, version)
    if (report && !report.ok) {
      throw new IntegrityError(`${agent}/${version} is in the store already but fails verification: ${report.problems.map((p) => p.message).join('; ')}`, {
        code: 'VERIFY_FAILED',
        hint: `Delete it (store delete ${agent} ${version}) and pull again.`,
      })
    }
    const channel = options.publish ? (options.channel ?? 'current') : null
    let previous: string | null | undefined
    if (channel && store.channels(agent)[channel] !== version) previous = (await store.promote(agent, version, channel)).previous
    return { ...base, unchanged: previous === undefined, blobsDownloaded: 0, blobsResumed: 0, bytesDownloaded: 0, channel, ...(previous !== undefined ? { previous } : {}), requests: client.requests }
  }

  // Blobs, once each (files with the same content share one), into the pull's own directory, by one pull
  // of this artifact at a time: a second would write the same partial files.
  const work = pullWorkDir(store.root, digest)
  const lock = takePullLock(work, pinned)
  try {
    await mkdir(work, { recursive: true })
    // A pull of this artifact killed after it moved its blobs into staging left them there: taken back.
    if (await reclaimStaging(store, agent, version, work, layout.files)) log(`pull ${agent}/${version}: took back the staging directory a killed pull of ${pinned} left`)
    const blobs = new Map<string, { size: number; names: string[] }>()
    for (const f of layout.files) {
      const b = blobs.get(f.digest)
      if (b) b.names.push(f.path)
      else blobs.set(f.digest, { size: f.size, names: [f.path] })
    }
    let done = 0
    let downloaded = 0
    let resumed = 0
    let bytesDownloaded = 0
    const verified = new Map<string, KnownDigest>()
    options.step?.title(`Pull ${pinned}: ${layout.files.length} files, ${formatBytes(bytes)}`)
    for (const [d, b] of blobs) done += Math.min(await sizeOf(join(work, d.slice(7))), b.size)
    await forEachLimit([...blobs.entries()], PARALLEL, async ([d, b]) => {
      const r = await downloadBlob(client, d, b.size, join(work, d.slice(7)), b.names, (k) => options.step?.bytes((done += k), bytes))
      verified.set(d, r.known)
      if (r.bytes > 0) downloaded++
      if (r.resumed) resumed++
      bytesDownloaded += r.bytes
    })

    // Staged from the verified blobs, finalized unpublished, checked against the pushed checksum. The
    // marker says which staging directory is this pull's, should it die before finalize has renamed it.
    // Written (atomically: a kill leaves the old one or the new) before the directory is made, and again
    // with its inode once it is (see reclaimStaging).
    const marker = join(work, STAGING_MARKER)
    const mark = { path: store.stagingDir(agent, version), markedAt: Date.now() }
    await writeFileAtomic(marker, JSON.stringify(mark))
    const finalized = await store.withStaging(agent, version, async (staging) => {
      await writeFileAtomic(marker, JSON.stringify({ ...mark, ino: (await stat(staging)).ino }))
      // Each verified blob is moved into the version (one link: finalize then makes it read-only in place
      // rather than copying it); a second file of the same content gets a copy of the first.
      const placed = new Map<string, string>()
      const knownDigests = new Map<string, KnownDigest>()
      for (const f of layout.files) {
        const to = join(staging, f.path)
        await mkdir(dirname(to), { recursive: true })
        const first = placed.get(f.digest)
        if (first) await copyFile(first, to)
        else {
          await rename(join(work, f.digest.slice(7)), to)
          placed.set(f.digest, to)
          knownDigests.set(f.path, verified.get(f.digest)!)
        }
      }
      return store.finalize(agent, version, {
        publish: false,
        knownDigests,
        metadata: pushed.metadata,
        manifest: { artifacts: pushed.artifacts, source: pushed.source, build: pushed.build, validation: pushed.validation, performance: pushed.performance, capabilities: pushed.capabilities },
      })
    }).catch(async (err: unknown) => {
      // withStaging removed the directory: a later one of that name is not this pull's.
      await rm(marker, { force: true })
      throw err
    })
    const got2 = finalized.filesChecksum ?? finalized.checksum
    if (got2 !== checksum) {
      await store.delete(agent, version, { reason: `its checksum is not the one pushed to ${pinned}` })
      throw new IntegrityError(`${agent}/${version} pulled from ${pinned} has the checksum ${got2}, not the pushed ${checksum}; it was deleted again`, {
        code: 'OCI_BLOB_MISMATCH',
        hint: 'Nothing was published; push the version again.',
      })
    }
    const warnings = [...(finalized.warnings ?? [])]
    auditDone(store.root, { op: 'pull', agent, version, registry: ref.registry, repository: ref.repository, tag: ref.tag, digest }, `${agent}/${version} was pulled from ${pinned}`, warnings)
    await rm(work, { recursive: true, force: true })
    const channel = options.publish ? (options.channel ?? 'current') : null
    const previous = channel ? (await store.promote(agent, version, channel)).previous : undefined
    return {
      ...base, unchanged: false, blobsDownloaded: downloaded, blobsResumed: resumed, bytesDownloaded, channel, ...(previous !== undefined ? { previous } : {}),
      requests: client.requests, ...(warnings.length ? { warnings } : {}),
    }
  } finally {
    lock.release()
  }
}

/** The file in a pull's work directory naming the staging directory it moved its blobs into. */
const STAGING_MARKER = 'staging'

function takePullLock(work: string, pinned: string): FileLock {
  const attempt = tryPullLock(work, 'pull', { artifact: pinned })
  if (attempt.lock) return attempt.lock
  const h = attempt.holder
  throw new ConflictError(`Another pull of ${pinned} is running in this store${h ? ` (process ${h.pid} on ${h.host})` : ''}`, {
    code: 'LOCKED',
    hint: 'Wait for it to finish; pulling again then verifies the version and does nothing else.',
    details: { lock: attempt.path, holder: h },
  })
}

/**
 * The staging directory of agent/version, when the marker in `work` says it is the one a pull of this
 * artifact (this lock's holder before it died) made: the blobs it moved in go back to the work directory
 * under their digests, writable again (finalize may have made them read-only), to be checked again rather
 * than downloaded, and the directory is removed. Any other staging directory is left alone (the pull then
 * stops on STAGING_EXISTS).
 */
async function reclaimStaging(store: ModelStore, agent: string, version: string, work: string, files: { path: string; digest: string }[]): Promise<boolean> {
  const staging = store.stagingDir(agent, version)
  const marker = join(work, STAGING_MARKER)
  const text = await readFile(marker, 'utf8').catch((err: unknown) => {
    if (errnoCode(err) === 'ENOENT') return null
    throw err
  })
  if (text === null) return false
  let named: { path?: unknown; markedAt?: unknown; ino?: unknown } = {}
  try {
    named = JSON.parse(text) as typeof named
  } catch {
    // torn by the kill: the staging directory is not known to be this pull's
  }
  const st = await stat(staging).catch(() => null)
  // Its inode, once the pull wrote it; before that (a kill right after the directory was made), a directory
  // born within a minute after the marker (a filesystem without birth times gives 0: never taken).
  const mine = st !== null && named.path === staging && (named.ino !== undefined
    ? named.ino === st.ino
    : typeof named.markedAt === 'number' && st.birthtimeMs >= named.markedAt - 1000 && st.birthtimeMs <= named.markedAt + 60_000)
  if (!mine) {
    await rm(marker, { force: true })
    return false
  }
  await restoreWriteBits(staging)
  for (const f of files) {
    const blob = join(work, f.digest.slice('sha256:'.length))
    try {
      await rename(join(staging, f.path), blob)
      await chmod(blob, 0o644)
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw err
    }
  }
  await removeTree(staging)
  await rm(marker, { force: true })
  return true
}

async function existingManifest(store: ModelStore, agent: string, version: string): Promise<Manifest | null> {
  const dir = store.versionDir(agent, version)
  if (!(await stat(dir).then(() => true, () => false))) return null
  // A version of that name that cannot be read (exit 4) or that predates per-file digests is not this one.
  const parsed = await readManifest(dir)
  if (parsed.kind === 'v1') return parsed.manifest
  throw new ConflictError(`${agent}/${version} is in the store already, with a legacy manifest`, {
    code: 'OCI_VERSION_CONFLICT',
    hint: 'Pull it under another name with --version.',
  })
}
