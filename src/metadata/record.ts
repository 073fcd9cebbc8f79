import * as dagCbor from '@ipld/dag-cbor'
import { DAG_CBOR, cidForBytes } from '../store/index.js'
import {
  MAX_PARTICIPANTS, applyResult, checkConsistency, checkMarkerFields, checkSchedule, clean, computeStatus, mergeMarkers, decodeResultObject, newState, resultEnvelope, sortedResults, verifyResult,
  type Consistency, type Marker, type SignedResult, type SnapshotState, type SnapshotStatus
} from '../wire/index.js'
import { copyReportEnvelope, copyReportMismatch, decodeCopyReportObject, mergeCopyReports, verifyCopyReport, type CopyReport } from './copies.js'
import { ConflictingRecordError, InvalidRecordError } from './errors.js'
import type { CID } from 'multiformats/cid'

/** Largest record accepted from the DHT or the catalog. */
export const MAX_RECORD_BYTES = 2 * 1024 * 1024
const MAX_REASON_LENGTH = 8192
const STATUSES: ReadonlySet<string> = new Set(['running', 'complete', 'partial', 'failed'])
const RECORD_FIELDS: ReadonlySet<string> = new Set(['v', 'type', 'id', 'tag', 'initiator', 'lamport', 'startedAt', 'deadline', 'expected', 'results', 'status', 'reasons', 'finishedAt', 'copies', 'consistency', 'prepareTimeoutMs', 'schedule', 'slot'])

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
  /** absent for marker mode */
  consistency?: Consistency
  prepareTimeoutMs?: number
  /** scheduled snapshots: the schedule's name and slot */
  schedule?: string
  slot?: number
  /** one per peer, sorted by peer ID */
  results: SignedResult[]
  status: SnapshotStatus
  reasons?: string[]
  finishedAt?: number
  /** signed copy reports, at most one per participant, sorted by owner */
  copies?: CopyReport[]
}

/** The marker a record was made from. */
export function markerOf (r: SnapshotRecord): Marker {
  const m: Marker = { v: 1, type: 'marker', id: r.id, initiator: r.initiator, lamport: r.lamport, startedAt: r.startedAt, deadline: r.deadline, expected: [...r.expected], consistency: r.consistency ?? 'marker' }
  if (r.tag != null) m.tag = r.tag
  if (r.prepareTimeoutMs != null) m.prepareTimeoutMs = r.prepareTimeoutMs
  if (r.schedule != null) {
    m.schedule = r.schedule
    m.slot = r.slot
  }
  return m
}

/** The record of a protocol state, its status computed at `now`. */
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
    results: sortedResults(state),
    status
  }
  if (m.tag != null) rec.tag = m.tag
  if (m.consistency === 'barrier') {
    rec.consistency = 'barrier'
    rec.prepareTimeoutMs = m.prepareTimeoutMs
  }
  if (m.schedule != null) {
    rec.schedule = m.schedule
    rec.slot = m.slot
  }
  if (reasons.length > 0) rec.reasons = reasons
  if (finishedAt != null) rec.finishedAt = finishedAt
  return rec
}

/** The protocol state a record holds (each peer's best result). */
export function stateFromRecord (r: SnapshotRecord): SnapshotState {
  let s = newState(markerOf(r))
  for (const res of r.results) s = applyResult(s, res)
  return s
}

/** `rec` carrying `reports` (those that match its results), or none when there are none. */
export function withCopyReports (rec: SnapshotRecord, reports: readonly CopyReport[]): SnapshotRecord {
  const kept = mergeCopyReports(reports, [], rec)
  const { copies: _drop, ...rest } = rec
  return kept.length > 0 ? { ...rest, copies: kept } : rest
}

/** The record with its status recomputed at `now` (a record stored while running may be stale). */
export function refreshRecord (r: SnapshotRecord, now: number): SnapshotRecord {
  return withCopyReports(recordFromState(stateFromRecord(r), now), r.copies ?? [])
}

/** The record with one more copy report merged in (kept only if it is the better one for its owner). */
export function addCopyReport (r: SnapshotRecord, report: CopyReport): SnapshotRecord {
  return withCopyReports(r, mergeCopyReports(r.copies ?? [], [report], r))
}

function sameMarker (a: SnapshotRecord, b: SnapshotRecord): string | undefined {
  if (a.schedule != null || b.schedule != null) {
    // firings of one schedule slot by different agents: merged, not compared (see mergeMarkers)
    try {
      mergeMarkers(markerOf(a), markerOf(b))
      return undefined
    } catch (err: any) {
      return String(err.message)
    }
  }
  for (const k of ['initiator', 'lamport', 'startedAt', 'deadline', 'tag', 'consistency', 'prepareTimeoutMs'] as const) {
    if (a[k] !== b[k]) return `field "${k}" differs (${JSON.stringify(a[k])} and ${JSON.stringify(b[k])})`
  }
  const ea = [...a.expected].sort()
  const eb = [...b.expected].sort()
  if (ea.length !== eb.length || ea.some((p, i) => p !== eb[i])) return `field "expected" differs (${ea.length} and ${eb.length} peers)`
  return undefined
}

/**
 * The union of two records of one snapshot: each peer's best result by the protocol's rules, the
 * status recomputed at `now`. The results are taken as they are: records come from decodeRecord,
 * which checks every signature, or from the protocol, which holds only verified results.
 * Throws ConflictingRecordError when the two describe different snapshots under one ID.
 */
export function mergeRecords (a: SnapshotRecord, b: SnapshotRecord, now: number): SnapshotRecord {
  if (a.id !== b.id) throw new ConflictingRecordError(`cannot merge the records of two snapshots, ${a.id} and ${b.id}`)
  const diff = sameMarker(a, b)
  if (diff != null) throw new ConflictingRecordError(`two records of snapshot ${a.id} describe different snapshots: ${diff}`)
  let s = stateFromRecord(a)
  if (a.schedule != null) s = { marker: mergeMarkers(s.marker, markerOf(b)), results: s.results }
  for (const r of b.results) s = applyResult(s, r)
  const merged = recordFromState(s, now)
  return withCopyReports(merged, mergeCopyReports(a.copies ?? [], b.copies ?? [], merged))
}

/**
 * The record's canonical dag-cbor bytes and their CID (CIDv1, dag-cbor, sha2-256). Results and
 * copy reports are written as the signed envelopes they travel in; results, expected peers and
 * reports are written sorted, so equal records have equal CIDs.
 */
export function encodeRecord (r: SnapshotRecord): { cid: CID, bytes: Uint8Array } {
  const canonical = clean({
    ...r,
    expected: [...r.expected].sort(),
    results: [...r.results].sort((x, y) => x.peerId < y.peerId ? -1 : x.peerId > y.peerId ? 1 : 0).map(resultEnvelope),
    copies: r.copies == null || r.copies.length === 0 ? undefined : [...r.copies].sort((x, y) => x.owner < y.owner ? -1 : x.owner > y.owner ? 1 : 0).map(copyReportEnvelope)
  })
  const bytes = dagCbor.encode(canonical)
  return { cid: cidForBytes(bytes, DAG_CBOR), bytes }
}

const describe = (v: unknown): string => v === undefined ? 'nothing' : Array.isArray(v) ? `a list of ${v.length}` : typeof v === 'string' ? JSON.stringify(v.slice(0, 40)) : String(v)

/**
 * Decodes a record strictly: every field, every result, results sorted by peer ID with one per
 * peer, and a status its results allow. With `verify` (the default), every result's signature is
 * checked against the peer it names, so a record from the network cannot smuggle in a forged
 * result. Throws InvalidRecordError naming the field.
 */
export async function decodeRecord (bytes: Uint8Array, options: { verify?: boolean } = {}): Promise<SnapshotRecord> {
  const w = 'snapshot record'
  if (bytes.length > MAX_RECORD_BYTES) throw new InvalidRecordError(`${w} of ${bytes.length} bytes exceeds the limit of ${MAX_RECORD_BYTES}`)
  let o: any
  try {
    o = dagCbor.decode(bytes)
  } catch (err: any) {
    throw new InvalidRecordError(`${w} is not dag-cbor: ${String(err.message)}`)
  }
  if (o == null || typeof o !== 'object' || Array.isArray(o) || o instanceof Uint8Array) throw new InvalidRecordError(`${w} must be a map`)
  if (o.v !== 1) throw new InvalidRecordError(`${w}: field "v" must be 1, got ${describe(o.v)}`)
  if (o.type !== 'snapmesh/snapshot') throw new InvalidRecordError(`${w}: field "type" must be "snapmesh/snapshot", got ${describe(o.type)}`)
  for (const k of Object.keys(o)) if (!RECORD_FIELDS.has(k)) throw new InvalidRecordError(`${w}: unknown field "${k}"`)
  let fields
  try {
    fields = checkMarkerFields(o, w)
  } catch (err: any) {
    throw new InvalidRecordError(String(err.message))
  }
  if (!Array.isArray(o.results) || o.results.length > 2 * MAX_PARTICIPANTS) throw new InvalidRecordError(`${w}: field "results" must be a list of at most ${2 * MAX_PARTICIPANTS} results, got ${describe(o.results)}`)
  const results: SignedResult[] = []
  for (const [i, r] of (o.results as unknown[]).entries()) {
    const at = `${w}: results[${i}]`
    let res: SignedResult
    try {
      res = decodeResultObject(r, at)
    } catch (err: any) {
      throw new InvalidRecordError(String(err.message))
    }
    if (res.id !== fields.id) throw new InvalidRecordError(`${at}: field "id" is ${res.id}, a result of another snapshot`)
    const prev = results.at(-1)
    if (prev != null && !(prev.peerId < res.peerId)) throw new InvalidRecordError(`${at}: results must be sorted by peer ID with one per peer (${res.peerId} comes after ${prev.peerId})`)
    if (options.verify !== false) {
      try {
        await verifyResult(res)
      } catch (err: any) {
        throw new InvalidRecordError(`${at}: ${String(err.message)}`)
      }
    }
    results.push(res)
  }
  let mode
  try {
    mode = checkConsistency(o, w)
  } catch (err: any) {
    throw new InvalidRecordError(String(err.message))
  }
  let sched
  try {
    sched = checkSchedule(o, w, fields.id, mode.consistency)
  } catch (err: any) {
    throw new InvalidRecordError(String(err.message))
  }
  const rec: SnapshotRecord = { v: 1, type: 'snapmesh/snapshot', ...fields, results, status: o.status, ...sched }
  if (mode.consistency === 'barrier') {
    rec.consistency = 'barrier'
    rec.prepareTimeoutMs = mode.prepareTimeoutMs
  }
  if (!STATUSES.has(o.status)) throw new InvalidRecordError(`${w}: field "status" must be one of running, complete, partial, failed, got ${describe(o.status)}`)
  const state = stateFromRecord(rec)
  const before = computeStatus(state, rec.deadline - 1).status
  const after = computeStatus(state, rec.deadline).status
  if (o.status !== before && o.status !== after) {
    throw new InvalidRecordError(`${w}: field "status" is "${String(o.status)}" but its results make it "${before}"${after !== before ? ` or "${after}"` : ''}`)
  }
  if (o.reasons !== undefined) {
    if (!Array.isArray(o.reasons) || o.reasons.length > MAX_PARTICIPANTS) throw new InvalidRecordError(`${w}: field "reasons" must be a list of at most ${MAX_PARTICIPANTS} strings, got ${describe(o.reasons)}`)
    for (const [i, x] of (o.reasons as unknown[]).entries()) {
      if (typeof x !== 'string' || x.length > MAX_REASON_LENGTH) throw new InvalidRecordError(`${w}: field "reasons" entry ${i} must be a string of at most ${MAX_REASON_LENGTH} characters`)
    }
    rec.reasons = o.reasons
  }
  if (o.finishedAt !== undefined) {
    if (typeof o.finishedAt !== 'number' || !Number.isSafeInteger(o.finishedAt) || o.finishedAt < 0) throw new InvalidRecordError(`${w}: field "finishedAt" must be a non-negative integer, got ${describe(o.finishedAt)}`)
    rec.finishedAt = o.finishedAt
  }
  if (o.copies !== undefined) {
    if (!Array.isArray(o.copies) || o.copies.length > 2 * MAX_PARTICIPANTS) throw new InvalidRecordError(`${w}: field "copies" must be a list of at most ${2 * MAX_PARTICIPANTS} copy reports, got ${describe(o.copies)}`)
    const reports: CopyReport[] = []
    for (const [i, x] of (o.copies as unknown[]).entries()) {
      const at = `${w}: copies[${i}]`
      let report: CopyReport
      try {
        report = decodeCopyReportObject(x, at)
      } catch (err: any) {
        throw new InvalidRecordError(String(err.message))
      }
      if (options.verify !== false) {
        try {
          await verifyCopyReport(report)
        } catch (err: any) {
          throw new InvalidRecordError(`${at}: ${String(err.message)}`)
        }
      }
      if (report.id !== rec.id) throw new InvalidRecordError(`${at}: field "id" is ${report.id}, a report on another snapshot`)
      const mismatch = copyReportMismatch(report, rec)
      if (mismatch != null) throw new InvalidRecordError(`${at}: ${mismatch}`)
      const prev = reports.at(-1)
      if (prev != null && !(prev.owner < report.owner)) throw new InvalidRecordError(`${at}: copy reports must be sorted by owner with one per owner`)
      reports.push(report)
    }
    if (reports.length > 0) rec.copies = reports
  }
  return rec
}
