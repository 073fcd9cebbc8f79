// The app protocol between agents: length-prefixed dag-cbor frames on one stream per direction.
// The sender writes `{ v: 1, k, f }` (k: the frame's number on this stream, f: the frame); the
// receiver answers each, in the order received, with `{ v: 1, k, ok: true }` or
// `{ v: 1, k, ok: false, retry, error }`.
import * as dagCbor from '@ipld/dag-cbor'
import { encodeMarker } from '../snapshot/messages.js'
import { decodeMarkerObject, type Marker } from '../wire/index.js'
import { InvalidAppFrameError } from './errors.js'
import type { AppMessage, ChannelCount, Frame, Verdict } from './cut.js'

export const APP_PROTOCOL = '/snapmesh/app/1.0.0'
/** an app name: one path component, safe as a folder name */
export const APP_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/
/** an agent incarnation */
export const EPOCH = /^[0-9a-f]{16}$/
/** most snapshots one message may carry */
export const MAX_CUTS = 64
/** most channel counts in one announcement */
export const MAX_COUNTS = 65_536

type Obj = Record<string, unknown>
const isObj = (v: unknown): v is Obj => v != null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Uint8Array)

function bad (field: string, what: string): never {
  throw new InvalidAppFrameError(`app frame: field "${field}" ${what}`, field)
}

function appName (o: Obj, k: string): string {
  const v = o[k]
  if (typeof v !== 'string' || !APP_NAME.test(v)) bad(k, `must be an app name (letters, digits, ".", "_", "-"; at most 64), got ${JSON.stringify(v)?.slice(0, 80)}`)
  return v
}

function uint (o: Obj, k: string, min = 0): number {
  const v = o[k]
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) bad(k, `must be an integer of at least ${min}, got ${String(v)}`)
  return v
}

function epoch (o: Obj): string {
  if (typeof o.epoch !== 'string' || !EPOCH.test(o.epoch)) bad('epoch', 'must be 16 lowercase hex digits')
  return o.epoch
}

function marker (v: unknown, field: string): Marker {
  if (!isObj(v)) bad(field, 'must be a marker map')
  try {
    return decodeMarkerObject(v, field)
  } catch (err: any) {
    throw new InvalidAppFrameError(`app frame: ${String(err.message)}`, field)
  }
}

/** A frame to the wire form; `k` numbers it on its stream. */
export function encodeFrame (k: number, f: Frame): Uint8Array {
  if (f.type === 'msg') {
    const m = f.message
    return dagCbor.encode({ v: 1, k, f: { t: 'msg', from: m.from.app, to: m.to.app, epoch: m.epoch, seq: m.seq, payload: m.payload, cuts: m.cuts.map(c => dagCbor.decode(encodeMarker(c))) } })
  }
  return dagCbor.encode({ v: 1, k, f: { t: 'cut', marker: dagCbor.decode(encodeMarker(f.marker)), epoch: f.epoch, counts: f.counts.map(c => [c.from, c.to, c.count]) } })
}

/**
 * A wire frame from `fromPeer` to `self`, checked field by field. Throws InvalidAppFrameError
 * naming the field; `k` is returned whenever it could be read, so the sender can be told.
 */
export function decodeFrame (bytes: Uint8Array, fromPeer: string, self: string, maxPayload: number): { k: number, frame: Frame } {
  let o: unknown
  try {
    o = dagCbor.decode(bytes)
  } catch (err: any) {
    throw new InvalidAppFrameError(`app frame is not dag-cbor: ${String(err.message)}`)
  }
  if (!isObj(o)) throw new InvalidAppFrameError('app frame must be a map')
  if (o.v !== 1) bad('v', 'must be 1')
  const k = uint(o, 'k')
  try {
    return { k, frame: decodeBody(o.f, fromPeer, self, maxPayload) }
  } catch (err: any) {
    err.k = k
    throw err
  }
}

function decodeBody (f: unknown, fromPeer: string, self: string, maxPayload: number): Frame {
  if (!isObj(f)) bad('f', 'must be a map')
  if (f.t === 'msg') {
    const payload = f.payload
    if (!(payload instanceof Uint8Array)) bad('payload', 'must be bytes')
    if (payload.length > maxPayload) bad('payload', `is ${payload.length} bytes, over the limit of ${maxPayload}`)
    if (!Array.isArray(f.cuts) || f.cuts.length > MAX_CUTS) bad('cuts', `must be a list of at most ${MAX_CUTS} markers`)
    const message: AppMessage = {
      from: { peer: fromPeer, app: appName(f, 'from') },
      to: { peer: self, app: appName(f, 'to') },
      epoch: epoch(f),
      seq: uint(f, 'seq', 1),
      payload,
      cuts: f.cuts.map((c, i) => marker(c, `cuts[${i}]`))
    }
    return { type: 'msg', message }
  }
  if (f.t === 'cut') {
    if (!Array.isArray(f.counts) || f.counts.length > MAX_COUNTS) bad('counts', `must be a list of at most ${MAX_COUNTS} counts`)
    const counts: ChannelCount[] = f.counts.map((c, i) => {
      if (!Array.isArray(c) || c.length !== 3) bad(`counts[${i}]`, 'must be [from app, to app, count]')
      const o = { from: c[0], to: c[1], count: c[2] }
      return { from: appName(o, 'from'), to: appName(o, 'to'), count: uint(o, 'count') }
    })
    return { type: 'cut', marker: marker(f.marker, 'marker'), epoch: epoch(f), counts }
  }
  bad('f.t', `must be "msg" or "cut", got ${JSON.stringify(f.t)?.slice(0, 40)}`)
}

export function encodeVerdict (k: number, v: Verdict): Uint8Array {
  return dagCbor.encode(v.ok ? { v: 1, k, ok: true } : { v: 1, k, ok: false, retry: v.retry, error: v.error.slice(0, 1024) })
}

export function decodeVerdict (bytes: Uint8Array): { k: number, verdict: Verdict } {
  let o: unknown
  try {
    o = dagCbor.decode(bytes)
  } catch (err: any) {
    throw new InvalidAppFrameError(`app frame answer is not dag-cbor: ${String(err.message)}`)
  }
  if (!isObj(o) || o.v !== 1) throw new InvalidAppFrameError('app frame answer must be a map with v: 1')
  const k = uint(o, 'k')
  if (o.ok === true) return { k, verdict: { ok: true } }
  if (o.ok !== false || typeof o.retry !== 'boolean' || typeof o.error !== 'string') bad('ok', 'an answer is { ok: true } or { ok: false, retry, error }')
  return { k, verdict: { ok: false, retry: o.retry, error: o.error } }
}
