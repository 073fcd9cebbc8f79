// Forget notices: a signed statement by one member that a snapshot is to be forgotten. Notices
// travel on their own gossipsub topic and in every agent's head, so an agent that was down when
// the snapshot was forgotten learns it at its next sync instead of bringing the record back. The
// catalog keeps the notice in place of the record (a tombstone) for good.
import * as dagCbor from '@ipld/dag-cbor'
import { peerIdFromString } from '@libp2p/peer-id'
import { CID } from 'multiformats/cid'
import { isSnapshotId, peerIdProblem } from '../snapshot/index.js'
import { InvalidForgetNoticeError } from './errors.js'
import type { PrivateKey } from '@libp2p/interface'

/** The gossipsub topic that carries forget notices. */
export const FORGET_TOPIC = '/snapmesh/forget/1.0.0'
/** Largest forget notice accepted. */
export const MAX_FORGET_NOTICE_BYTES = 1024
const SIGNATURE_BYTES = 64
const FIELDS: ReadonlySet<string> = new Set(['v', 'type', 'id', 'by', 'time', 'prune', 'sig'])

export interface ForgetNoticeBody {
  /** the snapshot forgotten */
  id: string
  /** the agent that forgot it, and signed */
  by: string
  /** ms since the epoch */
  time: number
  /** every agent that applies the notice prunes its store afterwards */
  prune: boolean
}

export interface ForgetNotice extends ForgetNoticeBody {
  v: 1
  type: 'forget'
  /** Ed25519 signature by `by`'s key over the dag-cbor encoding of the notice without `sig` */
  sig: Uint8Array
}

function fail (where: string, field: string, what: string): never {
  throw new InvalidForgetNoticeError(`${where}: field "${field}" ${what}`)
}

/** A decoded map checked field by field as a notice (not its signature: see verifyForgetNotice). */
export function decodeForgetNoticeObject (o: unknown, where = 'forget notice'): ForgetNotice {
  if (o == null || typeof o !== 'object' || Array.isArray(o) || o instanceof Uint8Array || CID.asCID(o) != null) throw new InvalidForgetNoticeError(`${where} must be a map`)
  const m = o as Record<string, unknown>
  if (m.v !== 1) fail(where, 'v', 'must be 1')
  if (m.type !== 'forget') fail(where, 'type', 'must be "forget"')
  for (const k of Object.keys(m)) if (!FIELDS.has(k)) throw new InvalidForgetNoticeError(`${where}: unknown field "${k}"`)
  if (!isSnapshotId(m.id)) fail(where, 'id', 'must be 64 lowercase hex digits')
  const problem = peerIdProblem(m.by)
  if (problem != null) fail(where, 'by', problem)
  if (typeof m.time !== 'number' || !Number.isSafeInteger(m.time) || m.time < 0) fail(where, 'time', `must be a non-negative integer, got ${JSON.stringify(m.time) ?? 'nothing'}`)
  if (typeof m.prune !== 'boolean') fail(where, 'prune', 'must be true or false')
  if (!(m.sig instanceof Uint8Array) || m.sig.length !== SIGNATURE_BYTES) fail(where, 'sig', `must be a ${SIGNATURE_BYTES}-byte signature`)
  return { v: 1, type: 'forget', id: m.id, by: m.by as string, time: m.time, prune: m.prune, sig: m.sig }
}

/** The bytes a notice's signature covers: its dag-cbor encoding without `sig`. */
export function forgetNoticePayload (body: ForgetNoticeBody): Uint8Array {
  return dagCbor.encode({ v: 1, type: 'forget', id: body.id, by: body.by, time: body.time, prune: body.prune })
}

export async function signForgetNotice (privateKey: PrivateKey, body: ForgetNoticeBody): Promise<ForgetNotice> {
  const sig = await privateKey.sign(forgetNoticePayload(body))
  return decodeForgetNoticeObject({ ...body, v: 1, type: 'forget', sig })
}

/** Checks a notice's signature against the peer ID it names; throws InvalidForgetNoticeError. */
export async function verifyForgetNotice (n: ForgetNotice): Promise<void> {
  let ok = false
  try {
    const key = peerIdFromString(n.by).publicKey
    if (key == null) throw new Error('the peer ID carries no public key')
    ok = await key.verify(forgetNoticePayload(n), n.sig)
  } catch (err: any) {
    throw new InvalidForgetNoticeError(`forget notice for snapshot ${n.id.slice(0, 8)} by ${n.by}: cannot check its signature: ${String(err.message)}`)
  }
  if (!ok) throw new InvalidForgetNoticeError(`forget notice for snapshot ${n.id.slice(0, 8)} claims ${n.by} but is not signed by its key`)
}

export function encodeForgetNotice (n: ForgetNotice): Uint8Array {
  return dagCbor.encode({ ...n })
}

/** Decodes and checks a notice from the network or the catalog, its signature included. */
export async function decodeForgetNotice (bytes: Uint8Array): Promise<ForgetNotice> {
  if (bytes.length > MAX_FORGET_NOTICE_BYTES) throw new InvalidForgetNoticeError(`forget notice of ${bytes.length} bytes exceeds the limit of ${MAX_FORGET_NOTICE_BYTES}`)
  let o: unknown
  try {
    o = dagCbor.decode(bytes)
  } catch (err: any) {
    throw new InvalidForgetNoticeError(`forget notice is not dag-cbor: ${String(err.message)}`)
  }
  const n = decodeForgetNoticeObject(o)
  await verifyForgetNotice(n)
  return n
}
