// The checks every decoder of peer data shares, the envelope's first: what counts as a map, what a
// valid peer ID is, and how an unexpected value is named in an error message.
import { peerIdFromString } from '@libp2p/peer-id'
import { CID } from 'multiformats/cid'

const MAX_PEER_ID_LENGTH = 128

/** A decoded dag-cbor map: not a list, bytes, a CID or null. */
export function isMap (v: unknown): v is Record<string, unknown> {
  return v != null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Uint8Array) && CID.asCID(v) == null
}

/** A short description of a value for an error message: `"abc"`, `3 bytes`, `a list of 2`, ... */
export function describe (v: unknown): string {
  if (v === undefined) return 'nothing'
  if (v === null) return 'null'
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)
  if (typeof v === 'number' || typeof v === 'boolean') return String(v)
  if (v instanceof Uint8Array) return `${v.length} bytes`
  if (Array.isArray(v)) return `a list of ${v.length}`
  if (CID.asCID(v) != null) return 'a CID'
  return `a ${typeof v === 'object' ? 'map' : typeof v}`
}

/** Why `v` is not the canonical string of an Ed25519 peer ID, or undefined when it is one. */
export function peerIdProblem (v: unknown): string | undefined {
  if (typeof v !== 'string') return `must be a peer ID string, got ${describe(v)}`
  if (v.length > MAX_PEER_ID_LENGTH) return `is ${v.length} characters long, longer than any peer ID`
  try {
    const id = peerIdFromString(v)
    if (id.type !== 'Ed25519') return `must be an Ed25519 peer ID, got a ${id.type} one`
    if (id.toString() !== v) return `must be written in its canonical form ${id.toString()}`
  } catch (err: any) {
    return `is not a valid peer ID ${describe(v)} (${String(err.message)})`
  }
  return undefined
}
