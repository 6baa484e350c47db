/** Distribution: store versions as OCI artifacts in any OCI registry (docs/distribution.md). */
export { pushVersion, type PushOptions, type PushResult } from './push.js'
export { pullVersion, type PullOptions, type PullResult } from './pull.js'
export { parseReference, formatReference, type OciReference } from './reference.js'
export { ociCredentials, type OciCredentials } from './credentials.js'
export { distributionPolicy, checkRegistryAllowed } from './policy.js'
export { buildArtifact, checkArtifact, MEDIA_TYPES } from './artifact.js'
