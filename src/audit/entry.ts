// One entry of the audit log, as it lies on disk: a JSON line
//
//   {"seq":7,"time":"2026-12-04T03:30:00.000Z","prev":"<64 hex>","action":"admin","data":{...},"signer":"12D3Koo...","sig":"<base64>"}
//
// `prev` is the sha2-256 of the exact bytes of the previous entry's line (without its newline), 64
// zeros for the first entry; `sig` is the signature of an "audit" envelope (src/envelope) whose body
// is { seq, time, prev, action, data }, by the host's key. `data` is plain JSON: it is normalised
// through JSON before signing, so the body rebuilt from the line is the body that was signed.
import crypto from 'node:crypto'
import { MalformedEnvelopeError, EnvelopeError, isMap, openEnvelope, peerIdProblem, sealEnvelope, type Envelope } from '../envelope/index.js'
import { MalformedAuditEntryError } from './errors.js'
import type { PrivateKey } from '@libp2p/interface'

/** `prev` of the first entry of a log */
export const GENESIS = '0'.repeat(64)
/** largest `data` of one entry, as JSON; a larger one is replaced by a note of its size */
export const MAX_DATA_CHARS = 16 * 1024

/**
 * What an entry can record, each with what its `data` holds. A new kind of entry (member changes,
 * proposals, approvals, key rotation) is one more entry here.
 */
export const ACTIONS = {
  /** an admin request that is none of the four below: { route, params?, outcome, result? } */
  admin: 'an admin request',
  /** a snapshot this host took part in, when it ended here: { id, status, tag?, initiator, part } */
  snapshot: 'a snapshot this host took part in',
  /** admin requests that restore, check or delete data: { route, params?, outcome, result? }; forget also { id, by, via, prune } for another member's notice */
  restore: 'a restore',
  verify: 'a verify',
  forget: 'a forget',
  prune: 'a prune',
  /** rejected gossip in one window: { from, to, counts: [{ peer, topic, reason, count }], more? } */
  'gossip-rejected': 'gossip messages rejected in one window',
  /** the log was found with a partial last line when opened (a crash during a write): { file, bytes } */
  'log-recovered': 'a partial last line cut off at start'
} as const satisfies Record<string, string>

export type AuditAction = keyof typeof ACTIONS

export function isAction (v: unknown): v is AuditAction {
  return typeof v === 'string' && Object.hasOwn(ACTIONS, v)
}

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue }

/** The signed body of an entry. */
export interface AuditBody {
  seq: number
  /** ISO time */
  time: string
  /** hex sha2-256 of the previous line */
  prev: string
  action: AuditAction
  data: { [key: string]: JsonValue }
}

/** An entry as read back: the body, who signed it, and its signature. */
export interface AuditEntry extends AuditBody {
  signer: string
  sig: Uint8Array
}

const LINE_FIELDS = ['seq', 'time', 'prev', 'action', 'data', 'signer', 'sig']

/** hex sha2-256 of one line's bytes (without the newline) */
export function hashLine (line: string | Uint8Array): string {
  return crypto.createHash('sha256').update(line).digest('hex')
}

/** `data` as plain JSON (undefined fields dropped), or a note of its size when it is too large */
export function normaliseData (data: object): { [key: string]: JsonValue } {
  const text = JSON.stringify(data) ?? '{}'
  if (text.length > MAX_DATA_CHARS) return { truncated: true, chars: text.length }
  const value = JSON.parse(text)
  return isMap(value) ? value as { [key: string]: JsonValue } : { value }
}

function bad (message: string): never {
  throw new MalformedAuditEntryError(message)
}

/** checks a body map field by field (the decoder the envelope's open path calls) */
export function decodeAuditBody (b: Record<string, unknown>, where: string): AuditBody {
  for (const k of Object.keys(b)) if (!['seq', 'time', 'prev', 'action', 'data'].includes(k)) bad(`${where}: unknown field "${k}"`)
  if (!Number.isSafeInteger(b.seq) || (b.seq as number) < 1) bad(`${where}: field "seq" must be a positive integer`)
  if (typeof b.time !== 'string' || Number.isNaN(Date.parse(b.time))) bad(`${where}: field "time" must be an ISO time`)
  if (typeof b.prev !== 'string' || !/^[0-9a-f]{64}$/.test(b.prev)) bad(`${where}: field "prev" must be 64 hex digits`)
  if (!isAction(b.action)) bad(`${where}: field "action" is not a known action: ${JSON.stringify(b.action)}`)
  if (!isMap(b.data)) bad(`${where}: field "data" must be a map`)
  return b as unknown as AuditBody
}

/** Signs the next entry and renders its line (no newline). */
export async function sealEntry (privateKey: PrivateKey, body: AuditBody): Promise<{ entry: AuditEntry, line: string }> {
  const env = await sealEnvelope(privateKey, 'audit', { seq: body.seq, time: body.time, prev: body.prev, action: body.action, data: body.data })
  const entry: AuditEntry = { ...body, signer: env.signer, sig: env.sig }
  const line = JSON.stringify({ seq: body.seq, time: body.time, prev: body.prev, action: body.action, data: body.data, signer: env.signer, sig: Buffer.from(env.sig).toString('base64') })
  return { entry, line }
}

/** Parses one line into an entry without checking its signature; throws MalformedAuditEntryError. */
export function parseLine (line: string): AuditEntry {
  let v: unknown
  try {
    v = JSON.parse(line)
  } catch (err: any) {
    bad(`not JSON: ${String(err.message)}`)
  }
  if (!isMap(v)) bad('not a JSON object')
  for (const k of Object.keys(v)) if (!LINE_FIELDS.includes(k)) bad(`unknown field "${k}"`)
  const { signer, sig, ...body } = v
  const problem = peerIdProblem(signer)
  if (problem != null) bad(`field "signer" ${problem}`)
  if (typeof sig !== 'string' || !/^[A-Za-z0-9+/]+={0,2}$/.test(sig)) bad('field "sig" must be base64')
  const bytes = new Uint8Array(Buffer.from(sig, 'base64'))
  if (bytes.length !== 64) bad('field "sig" must be a 64-byte signature')
  return { ...decodeAuditBody(body, 'entry'), signer: signer as string, sig: bytes }
}

/** The envelope an entry is a rendering of. */
export function entryEnvelope (e: AuditEntry): Envelope<'audit', AuditBody> {
  return { type: 'audit', body: { seq: e.seq, time: e.time, prev: e.prev, action: e.action, data: e.data }, signer: e.signer, sig: e.sig }
}

/**
 * Checks an entry's signature by the key its signer names. Throws MalformedAuditEntryError
 * (its cause the envelope error) when it does not verify.
 */
export async function verifyEntry (e: AuditEntry): Promise<void> {
  try {
    await openEnvelope(entryEnvelope(e), 'audit', decodeAuditBody, { where: `audit entry ${e.seq}` })
  } catch (err) {
    if (err instanceof EnvelopeError) throw new MalformedAuditEntryError(err.message, { cause: err })
    throw err
  }
}

/** An audit envelope from dag-cbor bytes (the form every other kind travels in), checked and verified. */
export async function decodeAuditEnvelope (bytes: Uint8Array): Promise<Envelope<'audit', AuditBody>> {
  try {
    return await openEnvelope(bytes, 'audit', decodeAuditBody)
  } catch (err) {
    if (err instanceof EnvelopeError || err instanceof MalformedEnvelopeError) throw new MalformedAuditEntryError(err.message, { cause: err })
    throw err
  }
}
