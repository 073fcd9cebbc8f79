// Copy reports: how many confirmed copies one participant's data has, signed by the agent that
// counted them (the owner after pushing its part, or the member that took over a gone owner's
// part). Reports travel on their own gossipsub topic and are merged into the snapshot record, so
// every agent, and the DHT copy of the record, can tell whether a snapshot is protected. A report
// is a "copies" envelope (see src/envelope) signed by its reporter.
import { CID } from 'multiformats/cid'
import { compare } from 'uint8arrays/compare'
import { KINDS, encodeEnvelope, openEnvelope, readEnvelope, rethrowAs, sealEnvelope, signedBytes, toSigned, verifyEnvelope, type Envelope, type EnvelopeError } from '../envelope/index.js'
import { MAX_PARTICIPANTS, isSnapshotId, peerIdProblem } from '../wire/index.js'
import { InvalidCopyReportError } from './errors.js'
import type { PrivateKey } from '@libp2p/interface'

/** The gossipsub topic that carries copy reports. */
export const COPIES_TOPIC = '/snapmesh/copies/1.0.0'
/** Largest copy report accepted. */
export const MAX_COPY_REPORT_BYTES = KINDS.copies.maxBytes
/** Most holders one report may name. */
export const MAX_HOLDERS = 64
const FIELDS: ReadonlySet<string> = new Set(['id', 'owner', 'root', 'reporter', 'time', 'blocks', 'copies', 'wanted', 'holders'])

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

/** A copy report as held in memory: the body's fields, and the envelope's. */
export interface CopyReport extends CopyReportBody {
  /** the signing format's version (snapmesh/signed/v1) */
  v: 1
  type: 'copies'
  /** the peer whose key signed: `reporter`, for a report that verifies */
  signer: string
  /** Ed25519 signature by `signer`'s key of the report's signed bytes (see copyReportPayload) */
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

function decodeBody (m: Obj, where: string): CopyReportBody {
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
  return { id: m.id, owner, root, reporter, time, blocks, copies, wanted, holders }
}

const asReportError = (e: EnvelopeError): Error => new InvalidCopyReportError(e.message, { cause: e })

const label = (r: { id: string }): string => `copy report for snapshot ${String(r.id).slice(0, 8)}`

/** A decoded value checked as a copies envelope (not its signature: see verifyCopyReport). */
export function decodeCopyReportObject (o: unknown, where = 'copy report'): CopyReport {
  try {
    return toSigned(readEnvelope(o, 'copies', decodeBody, { where }))
  } catch (err) {
    rethrowAs(err, asReportError)
  }
}

function bodyMap (b: CopyReportBody): CopyReportBody {
  const { id, owner, root, reporter, time, blocks, copies, wanted, holders } = b
  return { id, owner, root, reporter, time, blocks, copies, wanted, holders }
}

/** The envelope of a report held in memory. */
export function copyReportEnvelope (r: CopyReport): Envelope<'copies', CopyReportBody> {
  return { type: 'copies', body: bodyMap(r), signer: r.signer, sig: r.sig }
}

/** The exact bytes a report's signature covers, for the reporter its body names (see src/envelope). */
export function copyReportPayload (body: CopyReportBody): Uint8Array {
  return signedBytes('copies', body.reporter, bodyMap(body))
}

/** Signs a report with the reporter's key; `holders` is sorted and deduplicated first. */
export async function signCopyReport (privateKey: PrivateKey, body: CopyReportBody): Promise<CopyReport> {
  const b: CopyReportBody = bodyMap({ ...body, holders: [...new Set(body.holders)].sort().slice(0, MAX_HOLDERS) })
  return decodeCopyReportObject(await sealEnvelope(privateKey, 'copies', b))
}

/** Checks that a report is signed by the reporter it names; throws InvalidCopyReportError. */
export async function verifyCopyReport (r: CopyReport): Promise<void> {
  try {
    await verifyEnvelope(copyReportEnvelope(r), { where: label(r) })
  } catch (err) {
    rethrowAs(err, asReportError)
  }
}

export function encodeCopyReport (r: CopyReport): Uint8Array {
  return encodeEnvelope(copyReportEnvelope(r))
}

/** Decodes and checks a report from the network, its signature included. */
export async function decodeCopyReport (bytes: Uint8Array): Promise<CopyReport> {
  try {
    return toSigned(await openEnvelope(bytes, 'copies', decodeBody, { where: 'copy report', label }))
  } catch (err) {
    rethrowAs(err, asReportError)
  }
}

/**
 * Which of two reports on one owner's part stands: the newer count wins (copies go down when
 * holders die and up when repair ends); at equal times the higher count, then the smaller
 * signature, so every agent keeps the same one whatever the order they arrive in.
 */
export function betterCopyReport (a: CopyReport, b: CopyReport): CopyReport {
  if (a.time !== b.time) return a.time > b.time ? a : b
  if (a.copies !== b.copies) return a.copies > b.copies ? a : b
  return compare(a.sig, b.sig) <= 0 ? a : b
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
