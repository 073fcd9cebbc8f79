// Copy reports: how many confirmed copies one participant's data has, signed by the agent that
// counted them (the owner after pushing its part, or the member that took over a gone owner's
// part). Reports travel on their own gossipsub topic and are merged into the snapshot record, so
// every agent, and the DHT copy of the record, can tell whether a snapshot is protected.
import * as dagCbor from '@ipld/dag-cbor'
import { peerIdFromString } from '@libp2p/peer-id'
import { CID } from 'multiformats/cid'
import { MAX_PARTICIPANTS, isSnapshotId, peerIdProblem } from '../snapshot/index.js'
import { InvalidCopyReportError } from './errors.js'
import type { PrivateKey } from '@libp2p/interface'

/** The gossipsub topic that carries copy reports. */
export const COPIES_TOPIC = '/snapmesh/copies/1.0.0'
/** Largest copy report accepted. */
export const MAX_COPY_REPORT_BYTES = 64 * 1024
/** Most holders one report may name. */
export const MAX_HOLDERS = 64
const SIGNATURE_BYTES = 64
const FIELDS: ReadonlySet<string> = new Set(['v', 'type', 'id', 'owner', 'root', 'reporter', 'time', 'blocks', 'copies', 'wanted', 'holders', 'sig'])

export interface CopyReportBody {
  /** the snapshot */
  id: string
  /** the participant whose data was counted */
  owner: string
  /** the owner's manifest root in that snapshot */
  root: CID
  /** the agent that counted, and signed */
  reporter: string
  /** ms since the epoch */
  time: number
  /** blocks of the owner's part (manifest nodes and chunks) */
  blocks: number
  /** the fewest confirmed copies any of those blocks has, every holder counted once */
  copies: number
  /** the copies the reporter's config asks for (replication.copies) */
  wanted: number
  /** peers that confirmed holding blocks of the part, sorted */
  holders: string[]
}

export interface CopyReport extends CopyReportBody {
  v: 1
  type: 'copies'
  /** Ed25519 signature by `reporter`'s key over the dag-cbor encoding of the report without `sig` */
  sig: Uint8Array
}

type Obj = Record<string, unknown>

function fail (where: string, field: string, what: string): never {
  throw new InvalidCopyReportError(`${where}: field "${field}" ${what}`)
}

function uint (o: Obj, k: string, where: string): number {
  const v = o[k]
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) fail(where, k, `must be a non-negative integer, got ${JSON.stringify(v) ?? 'nothing'}`)
  return v
}

function peer (o: Obj, k: string, where: string): string {
  const problem = peerIdProblem(o[k])
  if (problem != null) fail(where, k, problem)
  return o[k] as string
}

/** A decoded map checked field by field as a copy report (not its signature: see verifyCopyReport). */
export function decodeCopyReportObject (o: unknown, where = 'copy report'): CopyReport {
  if (o == null || typeof o !== 'object' || Array.isArray(o) || o instanceof Uint8Array || CID.asCID(o) != null) throw new InvalidCopyReportError(`${where} must be a map`)
  const m = o as Obj
  if (m.v !== 1) fail(where, 'v', 'must be 1')
  if (m.type !== 'copies') fail(where, 'type', 'must be "copies"')
  for (const k of Object.keys(m)) if (!FIELDS.has(k)) throw new InvalidCopyReportError(`${where}: unknown field "${k}"`)
  if (!isSnapshotId(m.id)) fail(where, 'id', 'must be 64 lowercase hex digits')
  const owner = peer(m, 'owner', where)
  const reporter = peer(m, 'reporter', where)
  const root = CID.asCID(m.root)
  if (root == null) fail(where, 'root', 'must be a CID')
  const time = uint(m, 'time', where)
  const blocks = uint(m, 'blocks', where)
  const copies = uint(m, 'copies', where)
  const wanted = uint(m, 'wanted', where)
  if (copies > MAX_PARTICIPANTS) fail(where, 'copies', `must be at most ${MAX_PARTICIPANTS}`)
  if (wanted < 1 || wanted > 16) fail(where, 'wanted', 'must be 1 to 16')
  if (!Array.isArray(m.holders) || m.holders.length > MAX_HOLDERS) fail(where, 'holders', `must be a list of at most ${MAX_HOLDERS} peer IDs`)
  const holders: string[] = []
  for (const [i, h] of (m.holders as unknown[]).entries()) {
    const problem = peerIdProblem(h)
    if (problem != null) fail(where, 'holders', `entry ${i} ${problem}`)
    if (i > 0 && !(holders[i - 1] < (h as string))) fail(where, 'holders', 'must be sorted and list each peer once')
    holders.push(h as string)
  }
  if (copies > Math.max(holders.length, 1)) fail(where, 'copies', `is ${copies} but only ${holders.length} holders are named`)
  // only an agent that holds the part counts its copies: the owner, or the member that took it over
  if (!holders.includes(reporter)) fail(where, 'holders', `must include the reporter ${reporter}`)
  if (!(m.sig instanceof Uint8Array) || m.sig.length !== SIGNATURE_BYTES) fail(where, 'sig', `must be a ${SIGNATURE_BYTES}-byte signature`)
  return { v: 1, type: 'copies', id: m.id, owner, root, reporter, time, blocks, copies, wanted, holders, sig: m.sig }
}

/** The bytes a report's signature covers: its dag-cbor encoding without `sig`. */
export function copyReportPayload (body: CopyReportBody): Uint8Array {
  const { id, owner, root, reporter, time, blocks, copies, wanted, holders } = body
  return dagCbor.encode({ v: 1, type: 'copies', id, owner, root, reporter, time, blocks, copies, wanted, holders })
}

/** Signs a report with the reporter's key; `holders` is sorted and deduplicated first. */
export async function signCopyReport (privateKey: PrivateKey, body: CopyReportBody): Promise<CopyReport> {
  const b: CopyReportBody = { ...body, holders: [...new Set(body.holders)].sort().slice(0, MAX_HOLDERS) }
  const sig = await privateKey.sign(copyReportPayload(b))
  return decodeCopyReportObject({ ...b, v: 1, type: 'copies', sig })
}

/** Checks a report's signature against the reporter's peer ID; throws InvalidCopyReportError. */
export async function verifyCopyReport (r: CopyReport): Promise<void> {
  let ok = false
  try {
    const key = peerIdFromString(r.reporter).publicKey
    if (key == null) throw new Error('the peer ID carries no public key')
    ok = await key.verify(copyReportPayload(r), r.sig)
  } catch (err: any) {
    throw new InvalidCopyReportError(`copy report for snapshot ${r.id.slice(0, 8)} by ${r.reporter}: cannot check its signature: ${String(err.message)}`)
  }
  if (!ok) throw new InvalidCopyReportError(`copy report for snapshot ${r.id.slice(0, 8)} claims reporter ${r.reporter} but is not signed by its key`)
}

export function encodeCopyReport (r: CopyReport): Uint8Array {
  return dagCbor.encode({ ...r })
}

/** Decodes and checks a report from the network, its signature included. */
export async function decodeCopyReport (bytes: Uint8Array): Promise<CopyReport> {
  if (bytes.length > MAX_COPY_REPORT_BYTES) throw new InvalidCopyReportError(`copy report of ${bytes.length} bytes exceeds the limit of ${MAX_COPY_REPORT_BYTES}`)
  let o: unknown
  try {
    o = dagCbor.decode(bytes)
  } catch (err: any) {
    throw new InvalidCopyReportError(`copy report is not dag-cbor: ${String(err.message)}`)
  }
  const r = decodeCopyReportObject(o)
  await verifyCopyReport(r)
  return r
}

function compareBytes (a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i]
  return a.length - b.length
}

/**
 * Which of two reports on one owner's part stands: the newer count wins (copies go down when
 * holders die and up when repair ends); at equal times the higher count, then the smaller
 * signature, so every agent keeps the same one whatever the order they arrive in.
 */
export function betterCopyReport (a: CopyReport, b: CopyReport): CopyReport {
  if (a.time !== b.time) return a.time > b.time ? a : b
  if (a.copies !== b.copies) return a.copies > b.copies ? a : b
  return compareBytes(a.sig, b.sig) <= 0 ? a : b
}

/** what a record must offer for its reports to be checked against its results */
export interface ResultRoots { results: Array<{ peerId: string, status: string, root?: CID }> }

/**
 * Why `report` cannot belong to a snapshot with these results, or undefined when it can: the
 * owner's result, once known, must be ok with the same root. A report may arrive before the
 * owner's result does.
 */
export function copyReportMismatch (report: CopyReport, record: ResultRoots): string | undefined {
  const result = record.results.find(r => r.peerId === report.owner)
  if (result == null) return undefined
  if (result.status !== 'ok' || result.root == null) return `owner ${report.owner} has no data in this snapshot`
  const want = result.root.toString()
  if (want !== report.root.toString()) return `root ${report.root.toString()} is not the owner's root ${want}`
  return undefined
}

/**
 * The union of two sets of reports on one snapshot: one per owner (the better one), each matching
 * the results, sorted by owner. Order-independent, so agents converge.
 */
export function mergeCopyReports (a: readonly CopyReport[], b: readonly CopyReport[], record: ResultRoots): CopyReport[] {
  const best = new Map<string, CopyReport>()
  for (const r of [...a, ...b]) {
    if (copyReportMismatch(r, record) != null) continue
    const have = best.get(r.owner)
    best.set(r.owner, have == null ? r : betterCopyReport(have, r))
  }
  return [...best.values()].sort((x, y) => x.owner < y.owner ? -1 : x.owner > y.owner ? 1 : 0)
}
