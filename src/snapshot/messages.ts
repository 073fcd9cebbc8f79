// The snapshot gossip topic's messages: markers, barrier votes and signed results. Markers and
// votes are plain dag-cbor maps (gossipsub's signature authenticates their author); results are
// "result" envelopes (see src/wire/result.ts and src/envelope).
import * as dagCbor from '@ipld/dag-cbor'
import {
  InvalidMessageError, MAX_ERROR_LENGTH, MAX_MESSAGE_BYTES, MessageTooLargeError, decodeMarkerObject, decodeResultObject, type Marker, type SignedResult
} from '../wire/index.js'
import { clean, clip, constField, describe, fail, idField, isObj, only, optStr, peerIdField, uint, type Obj } from '../wire/fields.js'

/** The gossipsub topic that carries markers and results. */
export const SNAPSHOT_TOPIC = '/snapmesh/snapshots/1.0.0'

/**
 * Barrier mode: a participant's vote. `ok` once its pre hooks ran (it is frozen); not ok when
 * they failed or it gave up waiting for the others, which aborts the snapshot everywhere.
 * Authenticated by gossipsub's signature of its author, who must be `peerId`.
 */
export interface Prepared {
  v: 1
  type: 'prepared'
  id: string
  peerId: string
  lamport: number
  /** ms since the epoch, the sender's clock */
  time: number
  ok: boolean
  /** why not, when not ok */
  error?: string
}

export type SnapshotMessage = Marker | SignedResult | Prepared

const PREPARED_FIELDS = new Set(['v', 'type', 'id', 'peerId', 'lamport', 'time', 'ok', 'error'])

/** A decoded map checked field by field as a prepared vote. */
export function decodePreparedObject (o: Obj, where = 'prepared'): Prepared {
  constField(o, 'v', 1, where)
  constField(o, 'type', 'prepared', where)
  only(o, PREPARED_FIELDS, where)
  const id = idField(o, where)
  const peerId = peerIdField(o, 'peerId', where)
  const lamport = uint(o, 'lamport', where)
  const time = uint(o, 'time', where)
  if (typeof o.ok !== 'boolean') fail(where, 'ok', 'must be true or false', o.ok)
  const error = optStr(o, 'error', where, MAX_ERROR_LENGTH)
  if (o.ok && error != null) fail(where, 'error', 'must be absent when ok is true')
  return clean({ v: 1 as const, type: 'prepared' as const, id, peerId, lamport, time, ok: o.ok, error })
}

/** Encodes a prepared vote, refusing one that receivers would reject. */
export function encodePrepared (p: Prepared): Uint8Array {
  const error = p.error == null ? undefined : clip(p.error, MAX_ERROR_LENGTH)
  return dagCbor.encode(clean(decodePreparedObject(clean({ ...p, error }) as unknown as Obj)))
}

/** Encodes a marker, refusing one that receivers would reject. */
export function encodeMarker (m: Marker): Uint8Array {
  const checked = decodeMarkerObject(clean(m) as unknown as Obj)
  return dagCbor.encode(clean(checked))
}

/** Decodes bytes that must hold a marker. */
export function decodeMarker (bytes: Uint8Array, options: { maxBytes?: number } = {}): Marker {
  const m = decodeMessage(bytes, options)
  if (m.type !== 'marker') throw new InvalidMessageError(`expected a marker, got a ${m.type}`, 'type')
  return m
}

/** Decodes bytes that must hold a result (its signature is not checked: see verifyResult). */
export function decodeResult (bytes: Uint8Array, options: { maxBytes?: number } = {}): SignedResult {
  const m = decodeMessage(bytes, options)
  if (m.type !== 'result') throw new InvalidMessageError(`expected a result, got a ${m.type}`, 'type')
  return m
}

/**
 * Decodes a gossip message and checks every field strictly: types, ranges, ID formats, size caps.
 * Throws MessageTooLargeError or InvalidMessageError. Does not check signatures (see verifyResult).
 */
export function decodeMessage (bytes: Uint8Array, options: { maxBytes?: number } = {}): SnapshotMessage {
  const limit = Math.min(options.maxBytes ?? MAX_MESSAGE_BYTES, MAX_MESSAGE_BYTES)
  if (bytes.length > limit) throw new MessageTooLargeError(`message of ${bytes.length} bytes exceeds the limit of ${limit}`)
  let o: unknown
  try {
    o = dagCbor.decode(bytes)
  } catch (err: any) {
    throw new InvalidMessageError(`message is not dag-cbor: ${String(err.message)}`)
  }
  if (!isObj(o)) throw new InvalidMessageError(`message must be a map, got ${describe(o)}`)
  if (o.type === 'marker') return decodeMarkerObject(o)
  if (o.type === 'result') return decodeResultObject(o)
  if (o.type === 'prepared') return decodePreparedObject(o)
  throw new InvalidMessageError(`message: field "type" must be "marker", "result" or "prepared", got ${describe(o.type)}`, 'type')
}
