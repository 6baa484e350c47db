/**
 * The TensorRT version the double plays (TRTEXEC_DOUBLE_VERSION, "10.16.1" by default; "x.y.z" or
 * "x.y.z.build"). Kept apart from src/builders/trtexec-version.ts on purpose: the double is what that code is
 * tested against, so it must not share its reading of the banner.
 */

export interface Version {
  major: number
  minor: number
  patch: number
  build: number
  /** What the &&&& banner shows: 8.x major*1000+minor*100+patch, 10.x and later major*10000+minor*100+patch. */
  encoded: number
  text: string
}

// Build numbers seen in real banners and plans ([b11] for 10.16.1); other versions get 1.
const KNOWN_BUILDS: Record<string, number> = {
  '8.6.0': 12, '8.6.1': 6, '10.7.0': 23, '10.8.0': 43, '10.9.0': 34, '10.13.0': 35, '10.16.1': 11,
}

export function parseVersion(text: string | undefined): Version {
  const m = /^(\d+)\.(\d+)\.(\d+)(?:\.(\d+))?$/.exec((text ?? '10.16.1').trim())
  if (!m) throw new Error(`TRTEXEC_DOUBLE_VERSION must look like 10.16.1 (got "${text}")`)
  const [major, minor, patch] = [Number(m[1]), Number(m[2]), Number(m[3])]
  const short = `${major}.${minor}.${patch}`
  const build = m[4] !== undefined ? Number(m[4]) : (KNOWN_BUILDS[short] ?? 1)
  const encoded = major >= 10 ? major * 10000 + minor * 100 + patch : major * 1000 + minor * 100 + patch
  return { major, minor, patch, build, encoded, text: short }
}

export function atLeast(v: Pick<Version, 'major' | 'minor' | 'patch'>, major: number, minor = 0, patch = 0): boolean {
  if (v.major !== major) return v.major > major
  if (v.minor !== minor) return v.minor > minor
  return v.patch >= patch
}

/** The banner tail shared by RUNNING, PASSED and FAILED: `TensorRT.trtexec [TensorRT v101601] [b11]`. */
export function bannerTag(v: Version): string {
  // The [bNN] build tag was added to trtexec's banner in 10.4.
  return `TensorRT.trtexec [TensorRT v${v.encoded}]${atLeast(v, 10, 4) ? ` [b${v.build}]` : ''}`
}

/** "10.16.1.11": how TensorRT names its library version in plan-compatibility errors. */
export function fullVersion(v: Version): string {
  return `${v.text}.${v.build}`
}
