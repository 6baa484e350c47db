/**
 * Row ids derived from names, so that every sync of the same store, a resumed one after a crash, or syncs
 * of two stores into one server give a model and a version the same id (a fresh sync equals a repeated
 * one row for row). Shaped as RFC 9562 version 8 UUIDs (vendor-defined) over SHA-256.
 */
import { createHash } from 'node:crypto'

function uuidOf(text: string): string {
  const h = createHash('sha256').update(text).digest()
  h[6] = (h[6]! & 0x0f) | 0x80
  h[8] = (h[8]! & 0x3f) | 0x80
  const x = h.subarray(0, 16).toString('hex')
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`
}

export const modelId = (name: string): string => uuidOf(`modelforge/model\0${name}`)
export const versionId = (name: string, version: string): string => uuidOf(`modelforge/version\0${name}\0${version}`)

/** An event's id: the hash of what it records, so mirroring the same audit record twice adds one row. */
export function eventId(record: object): string {
  return createHash('sha256').update(JSON.stringify(record)).digest('hex')
}
