// Forget notices: a signed statement by one member that a snapshot is to be forgotten. Notices
// travel on their own gossipsub topic and in every agent's head, so an agent that was down when
// the snapshot was forgotten learns it at its next sync instead of bringing the record back. The
// catalog keeps the notice in place of the record (a tombstone) for good. A notice is a "forget"
// envelope (see src/envelope) whose body is { id, by, time, prune }, signed by `by`.
import { KINDS, encodeEnvelope, openEnvelope, readEnvelope, rethrowAs, sealEnvelope, signedBytes, toSigned, verifyEnvelope, type Envelope, type EnvelopeError } from '../envelope/index.js'
import { isSnapshotId, peerIdProblem } from '../wire/index.js'
import { InvalidForgetNoticeError } from './errors.js'
import type { PrivateKey } from '@libp2p/interface'

/** The gossipsub topic that carries forget notices. */
export const FORGET_TOPIC = '/snapmesh/forget/1.0.0'
/** Largest forget notice accepted. */
export const MAX_FORGET_NOTICE_BYTES = KINDS.forget.maxBytes
const FIELDS: ReadonlySet<string> = new Set(['id', 'by', 'time', 'prune'])

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

/** A forget notice as held in memory: the body's fields, and the envelope's. */
export interface ForgetNotice extends ForgetNoticeBody {
  /** the signing format's version (snapmesh/signed/v1) */
  v: 1
  type: 'forget'
  /** the peer whose key signed: `by`, for a notice that verifies */
  signer: string
  /** Ed25519 signature by `signer`'s key of the notice's signed bytes (see forgetNoticePayload) */
  sig: Uint8Array
}

function fail (where: string, field: string, what: string): never {
  throw new InvalidForgetNoticeError(`${where}: field "${field}" ${what}`)
}

function decodeBody (m: Record<string, unknown>, where: string): ForgetNoticeBody {
  for (const k of Object.keys(m)) if (!FIELDS.has(k)) throw new InvalidForgetNoticeError(`${where}: unknown field "${k}"`)
  if (!isSnapshotId(m.id)) fail(where, 'id', 'must be 64 lowercase hex digits')
  const problem = peerIdProblem(m.by)
  if (problem != null) fail(where, 'by', problem)
  if (typeof m.time !== 'number' || !Number.isSafeInteger(m.time) || m.time < 0) fail(where, 'time', `must be a non-negative integer, got ${JSON.stringify(m.time) ?? 'nothing'}`)
  if (typeof m.prune !== 'boolean') fail(where, 'prune', 'must be true or false')
  return { id: m.id, by: m.by as string, time: m.time, prune: m.prune }
}

const asNoticeError = (e: EnvelopeError): Error => new InvalidForgetNoticeError(e.message, { cause: e })

/** A decoded value checked as a forget envelope (not its signature: see verifyForgetNotice). */
export function decodeForgetNoticeObject (o: unknown, where = 'forget notice'): ForgetNotice {
  try {
    return toSigned(readEnvelope(o, 'forget', decodeBody, { where }))
  } catch (err) {
    rethrowAs(err, asNoticeError)
  }
}

const label = (n: { id: string }): string => `forget notice for snapshot ${String(n.id).slice(0, 8)}`

function bodyMap (n: ForgetNoticeBody): ForgetNoticeBody {
  return { id: n.id, by: n.by, time: n.time, prune: n.prune }
}

/** The envelope of a notice held in memory. */
export function forgetNoticeEnvelope (n: ForgetNotice): Envelope<'forget', ForgetNoticeBody> {
  return { type: 'forget', body: bodyMap(n), signer: n.signer, sig: n.sig }
}

/** The exact bytes a notice's signature covers, for the member its body names (see src/envelope). */
export function forgetNoticePayload (body: ForgetNoticeBody): Uint8Array {
  return signedBytes('forget', body.by, bodyMap(body))
}

export async function signForgetNotice (privateKey: PrivateKey, body: ForgetNoticeBody): Promise<ForgetNotice> {
  return decodeForgetNoticeObject(await sealEnvelope(privateKey, 'forget', bodyMap(body)))
}

/** Checks that a notice is signed by the member it names; throws InvalidForgetNoticeError. */
export async function verifyForgetNotice (n: ForgetNotice): Promise<void> {
  try {
    await verifyEnvelope(forgetNoticeEnvelope(n), { where: label(n) })
  } catch (err) {
    rethrowAs(err, asNoticeError)
  }
}

export function encodeForgetNotice (n: ForgetNotice): Uint8Array {
  return encodeEnvelope(forgetNoticeEnvelope(n))
}

/** Decodes and checks a notice from the network or the catalog, its signature included. */
export async function decodeForgetNotice (bytes: Uint8Array): Promise<ForgetNotice> {
  try {
    return toSigned(await openEnvelope(bytes, 'forget', decodeBody, { where: 'forget notice', label }))
  } catch (err) {
    rethrowAs(err, asNoticeError)
  }
}
