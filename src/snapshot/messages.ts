import { createHash } from 'node:crypto'
import * as dagCbor from '@ipld/dag-cbor'
import { peerIdFromString } from '@libp2p/peer-id'
import { CID } from 'multiformats/cid'
import { InvalidMessageError, InvalidSignatureError } from './errors.js'
import type { CaptureProblem, CaptureStats } from '../capture/index.js'
import type { PrivateKey } from '@libp2p/interface'

export const SNAPSHOT_TOPIC = '/snapmesh/snapshots/1.0.0'
/** No snapshot message may be larger than this. */
export const MAX_MESSAGE_BYTES = 256 * 1024
export const MAX_PARTICIPANTS = 1024
export const MAX_PROBLEMS = 200
const MAX_STRING = 4096

export interface Marker {
  v: 1
  type: 'marker'
  id: string
  initiator: string
  lamport: number
  tag?: string
  startedAt: number
  deadline: number
  expected: string[]
  consistency: 'marker'
}

/** a capture's figures, carried as they are in the result */
export type ResultStats = CaptureStats

export const STAT_FIELDS: Array<keyof ResultStats> = ['files', 'dirs', 'symlinks', 'bytes', 'filesRead', 'filesReused', 'bytesRead', 'chunks', 'newChunks', 'newBytes', 'durationMs']

export type Problem = CaptureProblem

export interface ResultBody {
  id: string
  peerId: string
  name: string
  lamport: number
  time: number
  status: 'ok' | 'error'
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
  sig: Uint8Array
}

export type SnapshotMessage = Marker | SignedResult

/** A fresh snapshot ID: 64 hex digits of sha256(initiator, lamport, time, random bytes). */
export function newSnapshotId (initiator: string, lamport: number, now: number, random: Uint8Array): string {
  return createHash('sha256').update(`${initiator}\n${lamport}\n${now}\n`).update(random).digest('hex')
}

/** drops undefined fields, which dag-cbor refuses */
function clean<T extends object> (o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T
}

export function encodeMarker (m: Marker): Uint8Array {
  return dagCbor.encode(clean(m))
}

function payload (body: ResultBody): Uint8Array {
  const { sig: _sig, ...rest } = body as Partial<SignedResult>
  return dagCbor.encode(clean({ ...clean(rest), v: 1, type: 'result' }))
}

/** Bounds the problem list so that the result fits in one message. */
export function boundProblems (body: ResultBody): ResultBody {
  if (body.problems == null || body.problems.length <= MAX_PROBLEMS) return body
  return { ...body, problems: body.problems.slice(0, MAX_PROBLEMS).map(p => ({ source: p.source.slice(0, 256), path: p.path.slice(0, 1024), message: p.message.slice(0, 512) })), problemCount: body.problemCount ?? body.problems.length }
}

/** Signs a result with the peer's own key; anyone can check it later from the peer ID alone. */
export async function signResult (privateKey: PrivateKey, body: ResultBody): Promise<SignedResult> {
  const b = boundProblems(body)
  const sig = await privateKey.sign(payload(b))
  return clean({ ...b, v: 1, type: 'result', sig }) as SignedResult
}

export async function verifyResult (r: SignedResult): Promise<void> {
  let ok = false
  try {
    const key = peerIdFromString(r.peerId).publicKey
    if (key == null) throw new Error('peer ID carries no public key')
    ok = await key.verify(payload(r), r.sig)
  } catch (err: any) {
    throw new InvalidSignatureError(`result for snapshot ${r.id.slice(0, 8)} from ${r.peerId}: cannot check signature: ${String(err.message)}`)
  }
  if (!ok) throw new InvalidSignatureError(`result for snapshot ${r.id.slice(0, 8)} claims peer ${r.peerId} but is not signed by its key`)
}

export function encodeResult (r: SignedResult): Uint8Array {
  return dagCbor.encode(clean(r))
}

// ---- strict decoding -------------------------------------------------------------------------

function fail (what: string): never {
  throw new InvalidMessageError(what)
}

const isObj = (v: unknown): v is Record<string, unknown> => v != null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Uint8Array)

function str (o: Record<string, unknown>, k: string, where: string, opt = false): string | undefined {
  const v = o[k]
  if (v === undefined && opt) return undefined
  if (typeof v !== 'string' || v.length > MAX_STRING) fail(`${where}: field "${k}" must be a string of at most ${MAX_STRING} characters`)
  return v
}

function uint (o: Record<string, unknown>, k: string, where: string, opt = false): number | undefined {
  const v = o[k]
  if (v === undefined && opt) return undefined
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) fail(`${where}: field "${k}" must be a non-negative integer`)
  return v
}

function peerIdField (o: Record<string, unknown>, k: string, where: string): string {
  const v = str(o, k, where) as string
  checkPeerId(v, `${where}: field "${k}"`)
  return v
}

export function checkPeerId (v: unknown, where: string): void {
  try {
    if (typeof v !== 'string') throw new Error('not a string')
    const id = peerIdFromString(v)
    if (id.type !== 'Ed25519') throw new Error('not an Ed25519 peer ID')
  } catch (err: any) {
    fail(`${where} is not a valid peer ID (${String(err.message)})`)
  }
}

export function checkId (v: unknown, where: string): string {
  if (typeof v !== 'string' || !/^[0-9a-f]{64}$/.test(v)) fail(`${where}: field "id" must be 64 lowercase hex digits`)
  return v
}

export function decodeMarkerObject (o: Record<string, unknown>): Marker {
  const w = 'marker'
  if (o.v !== 1) fail(`${w}: unsupported version ${JSON.stringify(o.v)}`)
  checkId(o.id, w)
  const initiator = peerIdField(o, 'initiator', w)
  uint(o, 'lamport', w)
  const tag = str(o, 'tag', w, true)
  if (tag != null && tag.length > 256) fail(`${w}: field "tag" is longer than 256 characters`)
  uint(o, 'startedAt', w)
  uint(o, 'deadline', w)
  if ((o.deadline as number) <= (o.startedAt as number)) fail(`${w}: deadline is not after startedAt`)
  if (!Array.isArray(o.expected) || o.expected.length === 0 || o.expected.length > MAX_PARTICIPANTS) fail(`${w}: field "expected" must list 1 to ${MAX_PARTICIPANTS} peer IDs`)
  o.expected.forEach((p, i) => { checkPeerId(p, `${w}: expected[${i}]`) })
  if (new Set(o.expected).size !== o.expected.length) fail(`${w}: field "expected" lists a peer twice`)
  if (!o.expected.includes(initiator)) fail(`${w}: field "expected" does not include the initiator`)
  if (o.consistency !== 'marker') fail(`${w}: unsupported consistency ${JSON.stringify(o.consistency)}`)
  const known = new Set(['v', 'type', 'id', 'initiator', 'lamport', 'tag', 'startedAt', 'deadline', 'expected', 'consistency'])
  for (const k of Object.keys(o)) if (!known.has(k)) fail(`${w}: unknown field "${k}"`)
  return clean({ v: 1, type: 'marker', id: o.id as string, initiator, lamport: o.lamport as number, tag, startedAt: o.startedAt as number, deadline: o.deadline as number, expected: [...o.expected as string[]].sort(), consistency: 'marker' }) as Marker
}

export function decodeResultObject (o: Record<string, unknown>): SignedResult {
  const w = 'result'
  if (o.v !== 1) fail(`${w}: unsupported version ${JSON.stringify(o.v)}`)
  checkId(o.id, w)
  peerIdField(o, 'peerId', w)
  const name = str(o, 'name', w) as string
  if (name.length > 256) fail(`${w}: field "name" is longer than 256 characters`)
  uint(o, 'lamport', w)
  uint(o, 'time', w)
  if (o.status !== 'ok' && o.status !== 'error') fail(`${w}: field "status" must be "ok" or "error"`)
  if (o.root !== undefined && CID.asCID(o.root) == null) fail(`${w}: field "root" must be a CID`)
  if (o.status === 'ok' && o.root === undefined) fail(`${w}: an ok result must carry "root"`)
  if (o.stats !== undefined) {
    if (!isObj(o.stats)) fail(`${w}: field "stats" must be a map`)
    for (const k of STAT_FIELDS) uint(o.stats, k, `${w}.stats`)
  }
  if (o.problems !== undefined) {
    if (!Array.isArray(o.problems) || o.problems.length > MAX_PROBLEMS) fail(`${w}: field "problems" must list at most ${MAX_PROBLEMS} problems`)
    o.problems.forEach((p, i) => {
      if (!isObj(p)) fail(`${w}: problems[${i}] must be a map`)
      for (const k of ['source', 'path', 'message']) str(p, k, `${w}: problems[${i}]`)
    })
  }
  uint(o, 'problemCount', w, true)
  str(o, 'error', w, true)
  if (!(o.sig instanceof Uint8Array) || o.sig.length !== 64) fail(`${w}: field "sig" must be a 64-byte signature`)
  const known = new Set(['v', 'type', 'id', 'peerId', 'name', 'lamport', 'time', 'status', 'root', 'stats', 'problems', 'problemCount', 'error', 'sig'])
  for (const k of Object.keys(o)) if (!known.has(k)) fail(`${w}: unknown field "${k}"`)
  return o as unknown as SignedResult
}

/** Decodes and checks every field of a gossip message (not its signature: see verifyResult). */
export function decodeMessage (bytes: Uint8Array): SnapshotMessage {
  if (bytes.length > MAX_MESSAGE_BYTES) fail(`message of ${bytes.length} bytes exceeds ${MAX_MESSAGE_BYTES}`)
  let o: unknown
  try {
    o = dagCbor.decode(bytes)
  } catch (err: any) {
    fail(`message is not dag-cbor: ${String(err.message)}`)
  }
  if (!isObj(o)) fail('message is not a map')
  if (o.type === 'marker') return decodeMarkerObject(o)
  if (o.type === 'result') return decodeResultObject(o)
  fail(`unknown message type ${JSON.stringify(o.type)}`)
}
