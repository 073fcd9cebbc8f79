import * as dagCbor from '@ipld/dag-cbor'
import { DAG_CBOR, cidForBytes } from '../store/index.js'
import { InvalidMessageError, applyResult, computeStatus, decodeMarkerObject, decodeResultObject, newState, verifyResult, type Marker, type SignedResult, type SnapshotState, type SnapshotStatus } from '../snapshot/index.js'
import { InvalidRecordError } from './errors.js'
import type { CID } from 'multiformats/cid'

/** Largest record accepted from the DHT or the catalog. */
export const MAX_RECORD_BYTES = 2 * 1024 * 1024

/** A snapshot as every agent stores it: the marker's fields, every signed result, the status. */
export interface SnapshotRecord {
  v: 1
  type: 'snapmesh/snapshot'
  id: string
  tag?: string
  initiator: string
  lamport: number
  startedAt: number
  deadline: number
  expected: string[]
  results: SignedResult[]
  status: SnapshotStatus
  reasons?: string[]
  finishedAt?: number
}

export function markerOf (r: SnapshotRecord): Marker {
  const m: Marker = { v: 1, type: 'marker', id: r.id, initiator: r.initiator, lamport: r.lamport, startedAt: r.startedAt, deadline: r.deadline, expected: r.expected, consistency: 'marker' }
  if (r.tag != null) m.tag = r.tag
  return m
}

/** The record of a protocol state at `now`; results sorted by peer ID so equal states encode equally. */
export function recordFromState (state: SnapshotState, now: number): SnapshotRecord {
  const { status, reasons, finishedAt } = computeStatus(state, now)
  const m = state.marker
  const rec: SnapshotRecord = {
    v: 1,
    type: 'snapmesh/snapshot',
    id: m.id,
    initiator: m.initiator,
    lamport: m.lamport,
    startedAt: m.startedAt,
    deadline: m.deadline,
    expected: [...m.expected].sort(),
    results: [...state.results.values()].sort((a, b) => a.peerId < b.peerId ? -1 : a.peerId > b.peerId ? 1 : 0),
    status
  }
  if (m.tag != null) rec.tag = m.tag
  if (reasons.length > 0) rec.reasons = reasons
  if (finishedAt != null) rec.finishedAt = finishedAt
  return rec
}

export function stateFromRecord (r: SnapshotRecord): SnapshotState {
  let s = newState(markerOf(r))
  for (const res of r.results) s = applyResult(s, res)
  return s
}

/** Union of both records' results, status recomputed at `now`. */
export function mergeRecords (a: SnapshotRecord, b: SnapshotRecord, now: number): SnapshotRecord {
  if (a.id !== b.id) throw new InvalidRecordError(`cannot merge records of different snapshots ${a.id.slice(0, 8)} and ${b.id.slice(0, 8)}`)
  let s = stateFromRecord(a)
  for (const r of b.results) s = applyResult(s, r)
  return recordFromState(s, now)
}

export function encodeRecord (r: SnapshotRecord): { cid: CID, bytes: Uint8Array } {
  const clean = Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined))
  const bytes = dagCbor.encode(clean)
  return { cid: cidForBytes(bytes, DAG_CBOR), bytes }
}

/**
 * Decodes a record strictly. With `verify` (the default), every result's signature is checked
 * against the peer it names: a record from the network cannot smuggle in a forged result.
 */
export async function decodeRecord (bytes: Uint8Array, options: { verify?: boolean } = {}): Promise<SnapshotRecord> {
  if (bytes.length > MAX_RECORD_BYTES) throw new InvalidRecordError(`snapshot record of ${bytes.length} bytes exceeds ${MAX_RECORD_BYTES}`)
  let o: any
  try {
    o = dagCbor.decode(bytes)
  } catch (err: any) {
    throw new InvalidRecordError(`snapshot record is not dag-cbor: ${String(err.message)}`)
  }
  if (o == null || typeof o !== 'object' || o.v !== 1 || o.type !== 'snapmesh/snapshot') throw new InvalidRecordError('not a snapmesh snapshot record')
  const known = new Set(['v', 'type', 'id', 'tag', 'initiator', 'lamport', 'startedAt', 'deadline', 'expected', 'results', 'status', 'reasons', 'finishedAt'])
  for (const k of Object.keys(o)) if (!known.has(k)) throw new InvalidRecordError(`snapshot record: unknown field "${k}"`)
  let marker: Marker
  try {
    marker = decodeMarkerObject({ v: 1, type: 'marker', id: o.id, initiator: o.initiator, lamport: o.lamport, ...(o.tag !== undefined ? { tag: o.tag } : {}), startedAt: o.startedAt, deadline: o.deadline, expected: o.expected, consistency: 'marker' })
  } catch (err: any) {
    throw new InvalidRecordError(`snapshot record: ${String(err.message).replace(/^marker: /, '')}`)
  }
  if (!Array.isArray(o.results)) throw new InvalidRecordError('snapshot record: field "results" must be a list')
  const results: SignedResult[] = []
  for (const [i, r] of o.results.entries()) {
    try {
      const res = decodeResultObject(r)
      if (res.id !== marker.id) throw new InvalidMessageError(`belongs to snapshot ${res.id.slice(0, 8)}`)
      if (options.verify !== false) await verifyResult(res)
      results.push(res)
    } catch (err: any) {
      throw new InvalidRecordError(`snapshot record: results[${i}]: ${String(err.message)}`)
    }
  }
  if (!['running', 'complete', 'partial', 'failed'].includes(o.status)) throw new InvalidRecordError(`snapshot record: bad status ${JSON.stringify(o.status)}`)
  const rec: SnapshotRecord = { v: 1, type: 'snapmesh/snapshot', id: marker.id, initiator: marker.initiator, lamport: marker.lamport, startedAt: marker.startedAt, deadline: marker.deadline, expected: marker.expected, results, status: o.status }
  if (marker.tag != null) rec.tag = marker.tag
  if (Array.isArray(o.reasons)) rec.reasons = o.reasons.filter((x: unknown) => typeof x === 'string')
  if (typeof o.finishedAt === 'number') rec.finishedAt = o.finishedAt
  return rec
}
