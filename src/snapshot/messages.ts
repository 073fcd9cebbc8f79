import { createHash } from 'node:crypto'
import * as dagCbor from '@ipld/dag-cbor'
import { peerIdFromString } from '@libp2p/peer-id'
import { CID } from 'multiformats/cid'
import { InvalidMessageError, InvalidSignatureError, MessageTooLargeError } from './errors.js'
import type { CaptureProblem, CaptureStats } from '../capture/index.js'
import type { PrivateKey } from '@libp2p/interface'

/** The gossipsub topic that carries markers and results. */
export const SNAPSHOT_TOPIC = '/snapmesh/snapshots/1.0.0'
/** No snapshot message may be larger than this. */
export const MAX_MESSAGE_BYTES = 256 * 1024
/** Most participants one marker may name. */
export const MAX_PARTICIPANTS = 1024
/** Most problems one result may list (the rest are only counted). */
export const MAX_PROBLEMS = 1000
/** Longest time from a marker's start to its deadline. */
export const MAX_DEADLINE_MS = 7 * 24 * 3600 * 1000
export const MAX_TAG_LENGTH = 256
export const MAX_NAME_LENGTH = 256
export const MAX_ERROR_LENGTH = 4096
const MAX_PEER_ID_LENGTH = 128
const MAX_PROBLEM_SOURCE = 256
const MAX_PROBLEM_PATH = 4096
const MAX_PROBLEM_MESSAGE = 1024
const SIGNATURE_BYTES = 64

export interface Marker {
  v: 1
  type: 'marker'
  /** 64 lowercase hex digits */
  id: string
  /** peer ID of the agent that started the snapshot */
  initiator: string
  lamport: number
  tag?: string
  /** ms since the epoch */
  startedAt: number
  /** ms since the epoch, absolute */
  deadline: number
  /** peer IDs: sorted, unique, including the initiator */
  expected: string[]
  /**
   * 'marker': each participant captures when the marker reaches it. 'barrier': each participant
   * freezes (pre hooks) and says so; captures start only once every expected participant is
   * prepared; see PROTOCOL.md
   */
  consistency: Consistency
  /** barrier mode only: how long a participant waits, frozen, for every other one to prepare */
  prepareTimeoutMs?: number
  /**
   * a scheduled snapshot: the schedule's name and the slot (ms since the epoch) it fired for. Its
   * `id` is scheduledSnapshotId(schedule, slot), so every agent that fires for the slot starts the
   * same snapshot; their markers merge (see mergeMarkers).
   */
  schedule?: string
  slot?: number
}

export const MAX_SCHEDULE_NAME = 128

/** The ID of the snapshot a schedule fires for a slot: the same on every agent. */
export function scheduledSnapshotId (schedule: string, slot: number): string {
  return createHash('sha256').update(`snapmesh schedule\n${schedule}\n${slot}`).digest('hex')
}

/**
 * The union of two markers of one scheduled snapshot, as sent by different agents firing for the
 * same slot: every peer either expects, the smallest initiator and Lamport time. Order-independent,
 * so agents that saw the same markers hold the same one. Throws InvalidMessageError for markers
 * that are not two firings of one slot.
 */
export function mergeMarkers (a: Marker, b: Marker): Marker {
  if (a.id !== b.id || a.schedule == null || a.schedule !== b.schedule || a.slot !== b.slot) {
    throw new InvalidMessageError(`markers of ${a.id.slice(0, 8)} and ${b.id.slice(0, 8)} are not firings of one schedule slot`)
  }
  for (const k of ['startedAt', 'deadline', 'consistency', 'tag'] as const) {
    if (a[k] !== b[k]) throw new InvalidMessageError(`two firings of schedule ${a.schedule} slot ${a.slot} differ in field "${k}"`, k)
  }
  const expected = [...new Set([...a.expected, ...b.expected])].sort().slice(0, MAX_PARTICIPANTS)
  const m: Marker = { ...a, initiator: a.initiator < b.initiator ? a.initiator : b.initiator, lamport: Math.min(a.lamport, b.lamport), expected }
  if (!m.expected.includes(m.initiator)) m.expected = [...new Set([...m.expected.slice(0, MAX_PARTICIPANTS - 1), m.initiator])].sort()
  return m
}

export type Consistency = 'marker' | 'barrier'

/** Longest prepare timeout a barrier marker may ask for. */
export const MAX_PREPARE_TIMEOUT_MS = 3600 * 1000

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

/** a capture's figures, carried as they are in the result */
export type ResultStats = CaptureStats

export const STAT_FIELDS: ReadonlyArray<keyof ResultStats> = ['files', 'dirs', 'symlinks', 'bytes', 'filesRead', 'filesReused', 'bytesRead', 'chunks', 'newChunks', 'newBytes', 'durationMs']

export type Problem = CaptureProblem

/** What a participant reports for a snapshot, before it is signed. */
export interface ResultBody {
  id: string
  peerId: string
  /** the host's name, for people */
  name: string
  lamport: number
  /** ms since the epoch */
  time: number
  status: 'ok' | 'error'
  /** manifest root; required when status is 'ok', absent otherwise */
  root?: CID
  stats?: ResultStats
  problems?: Problem[]
  /** how many problems there were in all, when `problems` was cut short */
  problemCount?: number
  error?: string
}

export interface SignedResult extends ResultBody {
  v: 1
  type: 'result'
  /** Ed25519 signature by `peerId`'s key over the dag-cbor encoding of the result without `sig` */
  sig: Uint8Array
}

export type SnapshotMessage = Marker | SignedResult | Prepared

/** A fresh snapshot ID: 64 hex digits of sha256(initiator, lamport, time, random bytes). */
export function newSnapshotId (initiator: string, lamport: number, now: number, randomBytes: Uint8Array): string {
  return createHash('sha256').update(`${initiator}\n${lamport}\n${now}\n`).update(randomBytes).digest('hex')
}

/** drops undefined fields, which dag-cbor refuses */
function clean<T extends object> (o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T
}

/** cuts a string to at most `max` UTF-16 units without splitting a surrogate pair */
function clip (s: string, max: number): string {
  if (s.length <= max) return s
  let end = max
  const c = s.charCodeAt(end - 1)
  if (c >= 0xd800 && c <= 0xdbff) end--
  return s.slice(0, end)
}

// ---- strict field checks ---------------------------------------------------------------------

type Obj = Record<string, unknown>

const isObj = (v: unknown): v is Obj => v != null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Uint8Array) && CID.asCID(v) == null

function describe (v: unknown): string {
  if (v === undefined) return 'nothing'
  if (v === null) return 'null'
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)
  if (typeof v === 'number' || typeof v === 'boolean') return String(v)
  if (v instanceof Uint8Array) return `${v.length} bytes`
  if (Array.isArray(v)) return `a list of ${v.length}`
  if (CID.asCID(v) != null) return 'a CID'
  return `a ${typeof v === 'object' ? 'map' : typeof v}`
}

function fail (where: string, field: string, what: string, ...value: unknown[]): never {
  const got = value.length > 0 ? `, got ${describe(value[0])}` : ''
  throw new InvalidMessageError(`${where}: field "${field}" ${what}${got}`, field)
}

function str (o: Obj, k: string, where: string, max: number): string {
  const v = o[k]
  if (typeof v !== 'string') fail(where, k, 'must be a string', v)
  if (v.length > max) fail(where, k, `must be at most ${max} characters long, got ${v.length}`)
  return v
}

function optStr (o: Obj, k: string, where: string, max: number): string | undefined {
  return o[k] === undefined ? undefined : str(o, k, where, max)
}

function uint (o: Obj, k: string, where: string): number {
  const v = o[k]
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) fail(where, k, 'must be a non-negative integer', v)
  return v
}

function optUint (o: Obj, k: string, where: string): number | undefined {
  return o[k] === undefined ? undefined : uint(o, k, where)
}

function only (o: Obj, known: ReadonlySet<string>, where: string): void {
  for (const k of Object.keys(o)) {
    if (!known.has(k)) throw new InvalidMessageError(`${where}: unknown field "${k}"`, k)
  }
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

function peerIdField (o: Obj, k: string, where: string): string {
  const problem = peerIdProblem(o[k])
  if (problem != null) throw new InvalidMessageError(`${where}: field "${k}" ${problem}`, k)
  return o[k] as string
}

export function isSnapshotId (v: unknown): v is string {
  return typeof v === 'string' && /^[0-9a-f]{64}$/.test(v)
}

function idField (o: Obj, where: string): string {
  if (!isSnapshotId(o.id)) fail(where, 'id', 'must be 64 lowercase hex digits', o.id)
  return o.id
}

function constField (o: Obj, k: string, value: unknown, where: string): void {
  if (o[k] !== value) fail(where, k, `must be ${JSON.stringify(value)}`, o[k])
}

/** The marker fields a snapshot record repeats: checked alike in markers and records. */
export interface MarkerFields {
  id: string
  initiator: string
  lamport: number
  tag?: string
  startedAt: number
  deadline: number
  expected: string[]
}

/** Checks the snapshot-describing fields of a marker or record map; throws InvalidMessageError. */
export function checkMarkerFields (o: Obj, where: string): MarkerFields {
  const id = idField(o, where)
  const initiator = peerIdField(o, 'initiator', where)
  const lamport = uint(o, 'lamport', where)
  const tag = optStr(o, 'tag', where, MAX_TAG_LENGTH)
  const startedAt = uint(o, 'startedAt', where)
  const deadline = uint(o, 'deadline', where)
  if (deadline <= startedAt) fail(where, 'deadline', `must be after startedAt (${startedAt})`, deadline)
  if (deadline - startedAt > MAX_DEADLINE_MS) fail(where, 'deadline', `must be at most ${MAX_DEADLINE_MS} ms after startedAt (${startedAt})`, deadline)
  const exp = o.expected
  if (!Array.isArray(exp) || exp.length === 0 || exp.length > MAX_PARTICIPANTS) fail(where, 'expected', `must list 1 to ${MAX_PARTICIPANTS} peer IDs`, exp)
  const expected: string[] = []
  for (const [i, p] of exp.entries()) {
    const problem = peerIdProblem(p)
    if (problem != null) throw new InvalidMessageError(`${where}: field "expected" entry ${i} ${problem}`, 'expected')
    if (i > 0 && !((exp[i - 1] as string) < p)) fail(where, 'expected', `must be sorted and list each peer once (entry ${i} is ${describe(p)}, after ${describe(exp[i - 1])})`)
    expected.push(p)
  }
  if (!expected.includes(initiator)) fail(where, 'expected', `must include the initiator ${initiator}`)
  return clean({ id, initiator, lamport, tag, startedAt, deadline, expected })
}

const MARKER_FIELDS = new Set(['v', 'type', 'id', 'initiator', 'lamport', 'tag', 'startedAt', 'deadline', 'expected', 'consistency', 'prepareTimeoutMs', 'schedule', 'slot'])
const PREPARED_FIELDS = new Set(['v', 'type', 'id', 'peerId', 'lamport', 'time', 'ok', 'error'])
const RESULT_FIELDS = new Set(['v', 'type', 'id', 'peerId', 'name', 'lamport', 'time', 'status', 'root', 'stats', 'problems', 'problemCount', 'error', 'sig'])
const STAT_SET = new Set<string>(STAT_FIELDS)
const PROBLEM_FIELDS = new Set(['source', 'path', 'message'])

/** A decoded map checked field by field as a marker; returns a fresh Marker. */
export function decodeMarkerObject (o: Obj, where = 'marker'): Marker {
  constField(o, 'v', 1, where)
  constField(o, 'type', 'marker', where)
  only(o, MARKER_FIELDS, where)
  const fields = checkMarkerFields(o, where)
  const mode = checkConsistency(o, where)
  return clean({ v: 1 as const, type: 'marker' as const, ...fields, ...mode, ...checkSchedule(o, where, fields.id, mode.consistency) })
}

/** The schedule fields of a marker or record map: both or neither, and the ID they imply. */
export function checkSchedule (o: Obj, where: string, id: string, consistency: Consistency): { schedule?: string, slot?: number } {
  if (o.schedule === undefined && o.slot === undefined) return {}
  const schedule = str(o, 'schedule', where, MAX_SCHEDULE_NAME)
  const slot = uint(o, 'slot', where)
  if (consistency !== 'marker') fail(where, 'consistency', 'must be "marker" for a scheduled snapshot')
  if (scheduledSnapshotId(schedule, slot) !== id) fail(where, 'id', `is not the ID of schedule ${JSON.stringify(schedule)} slot ${slot}`)
  return { schedule, slot }
}

/** The consistency fields of a marker or record map: absent means marker mode. */
export function checkConsistency (o: Obj, where: string): { consistency: Consistency, prepareTimeoutMs?: number } {
  const c = o.consistency ?? 'marker'
  if (c !== 'marker' && c !== 'barrier') fail(where, 'consistency', 'must be "marker" or "barrier"', o.consistency)
  if (c === 'marker') {
    if (o.prepareTimeoutMs !== undefined) fail(where, 'prepareTimeoutMs', 'is only for consistency "barrier"')
    return { consistency: 'marker' }
  }
  const t = uint(o, 'prepareTimeoutMs', where)
  if (t < 1 || t > MAX_PREPARE_TIMEOUT_MS) fail(where, 'prepareTimeoutMs', `must be 1 to ${MAX_PREPARE_TIMEOUT_MS}`, t)
  return { consistency: 'barrier', prepareTimeoutMs: t }
}

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

/** A decoded map checked field by field as a signed result (not its signature: see verifyResult). */
export function decodeResultObject (o: unknown, where = 'result'): SignedResult {
  if (!isObj(o)) throw new InvalidMessageError(`${where}: must be a map, got ${describe(o)}`)
  constField(o, 'v', 1, where)
  constField(o, 'type', 'result', where)
  only(o, RESULT_FIELDS, where)
  const id = idField(o, where)
  const peerId = peerIdField(o, 'peerId', where)
  const name = str(o, 'name', where, MAX_NAME_LENGTH)
  const lamport = uint(o, 'lamport', where)
  const time = uint(o, 'time', where)
  const status = o.status
  if (status !== 'ok' && status !== 'error') fail(where, 'status', 'must be "ok" or "error"', status)
  let root: CID | undefined
  if (o.root !== undefined) {
    root = CID.asCID(o.root) ?? undefined
    if (root == null) fail(where, 'root', 'must be a CID', o.root)
    if (status === 'error') fail(where, 'root', 'must be absent from an error result')
  } else if (status === 'ok') {
    fail(where, 'root', 'is required in an ok result')
  }
  let stats: ResultStats | undefined
  if (o.stats !== undefined) {
    const s = o.stats
    if (!isObj(s)) fail(where, 'stats', 'must be a map', s)
    only(s, STAT_SET, `${where}: stats`)
    stats = Object.fromEntries(STAT_FIELDS.map(k => [k, uint(s, k, `${where}: stats`)])) as unknown as ResultStats
  }
  let problems: Problem[] | undefined
  if (o.problems !== undefined) {
    const ps = o.problems
    if (!Array.isArray(ps) || ps.length > MAX_PROBLEMS) fail(where, 'problems', `must be a list of at most ${MAX_PROBLEMS} problems`, ps)
    problems = ps.map((p, i) => {
      const at = `${where}: problems[${i}]`
      if (!isObj(p)) throw new InvalidMessageError(`${at}: must be a map, got ${describe(p)}`, 'problems')
      only(p, PROBLEM_FIELDS, at)
      return { source: str(p, 'source', at, MAX_PROBLEM_SOURCE), path: str(p, 'path', at, MAX_PROBLEM_PATH), message: str(p, 'message', at, MAX_PROBLEM_MESSAGE) }
    })
  }
  const problemCount = optUint(o, 'problemCount', where)
  if (problemCount != null && problemCount < (problems?.length ?? 0)) fail(where, 'problemCount', `must be at least the ${problems?.length ?? 0} problems listed`, problemCount)
  const error = optStr(o, 'error', where, MAX_ERROR_LENGTH)
  if (!(o.sig instanceof Uint8Array) || o.sig.length !== SIGNATURE_BYTES) fail(where, 'sig', `must be a ${SIGNATURE_BYTES}-byte signature`, o.sig)
  return clean({ v: 1, type: 'result', id, peerId, name, lamport, time, status, root, stats, problems, problemCount, error, sig: o.sig }) as SignedResult
}

// ---- encoding and signatures -----------------------------------------------------------------

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

export function encodeResult (r: SignedResult): Uint8Array {
  return dagCbor.encode(clean(r))
}

/** Decodes bytes that must hold a result (its signature is not checked: see verifyResult). */
export function decodeResult (bytes: Uint8Array, options: { maxBytes?: number } = {}): SignedResult {
  const m = decodeMessage(bytes, options)
  if (m.type !== 'result') throw new InvalidMessageError(`expected a result, got a ${m.type}`, 'type')
  return m
}

/** The bytes a result's signature covers: its dag-cbor encoding without `sig`. */
export function resultPayload (body: ResultBody): Uint8Array {
  const { sig: _sig, ...rest } = body as Partial<SignedResult>
  return dagCbor.encode(clean({ ...clean(rest), v: 1, type: 'result' }))
}

/** a capture figure as the wire carries it: a non-negative safe integer */
function figure (n: unknown): number {
  const v = typeof n === 'number' && Number.isFinite(n) ? Math.round(n) : 0
  return Math.min(Math.max(v, 0), Number.MAX_SAFE_INTEGER)
}

function bodyOnly (body: ResultBody): ResultBody {
  return clean({
    id: body.id,
    peerId: body.peerId,
    name: clip(body.name, MAX_NAME_LENGTH),
    lamport: body.lamport,
    time: body.time,
    status: body.status,
    root: body.root,
    stats: body.stats == null ? undefined : Object.fromEntries(STAT_FIELDS.map(k => [k, figure(body.stats?.[k])])) as unknown as ResultStats,
    problems: body.problems,
    problemCount: body.problemCount,
    error: body.error == null ? undefined : clip(body.error, MAX_ERROR_LENGTH)
  })
}

const placeholderSig = new Uint8Array(SIGNATURE_BYTES)

function sizeOf (body: ResultBody): number {
  return encodeResult({ ...body, v: 1, type: 'result', sig: placeholderSig }).length
}

/**
 * Shortens a result so that, signed, it fits in `maxBytes`: over-long strings are clipped, and the
 * problem list is cut to the most that fit, with `problemCount` keeping the full count.
 */
export function fitResult (body: ResultBody, maxBytes = MAX_MESSAGE_BYTES): ResultBody {
  const b = bodyOnly(body)
  const all = b.problems ?? []
  const total = Math.max(b.problemCount ?? 0, all.length)
  const problems = all.map(p => ({ source: clip(p.source, MAX_PROBLEM_SOURCE), path: clip(p.path, MAX_PROBLEM_PATH), message: clip(p.message, MAX_PROBLEM_MESSAGE) }))
  const withFirst = (k: number): ResultBody => clean({ ...b, problems: b.problems == null ? undefined : problems.slice(0, k), problemCount: k < total || b.problemCount != null ? total : undefined })
  const limit = Math.min(problems.length, MAX_PROBLEMS)
  if (sizeOf(withFirst(limit)) <= maxBytes) return withFirst(limit)
  let lo = 0
  let hi = limit
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2)
    if (sizeOf(withFirst(mid)) <= maxBytes) lo = mid
    else hi = mid - 1
  }
  const fitted = withFirst(lo)
  const size = sizeOf(fitted)
  if (size > maxBytes) throw new MessageTooLargeError(`result for snapshot ${b.id.slice(0, 8)} is ${size} bytes even without problems, over the limit of ${maxBytes}`)
  return fitted
}

/**
 * Signs a result with the peer's own key, so anyone can check it later from the peer ID alone.
 * The result is first fitted to `maxBytes`, and checked as receivers will check it.
 */
export async function signResult (privateKey: PrivateKey, body: ResultBody, options: { maxBytes?: number } = {}): Promise<SignedResult> {
  const b = fitResult(body, Math.min(options.maxBytes ?? MAX_MESSAGE_BYTES, MAX_MESSAGE_BYTES))
  const sig = await privateKey.sign(resultPayload(b))
  const signed = clean({ ...b, v: 1, type: 'result', sig }) as SignedResult
  return decodeResultObject(signed)
}

/** Checks a result's signature against the key embedded in its peer ID; throws InvalidSignatureError. */
export async function verifyResult (r: SignedResult): Promise<void> {
  let ok = false
  try {
    const key = peerIdFromString(r.peerId).publicKey
    if (key == null) throw new Error('the peer ID carries no public key')
    if (!(r.sig instanceof Uint8Array)) throw new Error('the result has no signature')
    ok = await key.verify(resultPayload(r), r.sig)
  } catch (err: any) {
    throw new InvalidSignatureError(`result for snapshot ${String(r.id).slice(0, 8)} from ${r.peerId}: cannot check its signature: ${String(err.message)}`)
  }
  if (!ok) throw new InvalidSignatureError(`result for snapshot ${r.id.slice(0, 8)} claims peer ${r.peerId} but is not signed by its key`)
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
