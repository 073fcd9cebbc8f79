import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { compare } from 'uint8arrays/compare'
import { equals } from 'uint8arrays/equals'
import { KINDS, decodeEnvelopeBytes, encodeEnvelope, openEnvelope, readEnvelope, rethrowAs, sealEnvelope, type EnvelopeError } from '../envelope/index.js'
import { isSnapshotId, peerIdProblem } from '../wire/index.js'
import { DAG_CBOR, cidForBytes } from '../store/index.js'
import { InvalidRecordError } from './errors.js'
import { decodeForgetNoticeObject, forgetNoticeEnvelope, verifyForgetNotice, type ForgetNotice } from './forget.js'
import { decodeRecord } from './record.js'
import type { AbortOptions, PrivateKey } from '@libp2p/interface'

/** `/snapmesh-snap/<record CID>` → record bytes */
export const RECORD_NAMESPACE = 'snapmesh-snap'
/** `/snapmesh-head/<peer ID>` → that agent's signed head */
export const HEAD_NAMESPACE = 'snapmesh-head'
/** Most snapshots one head lists (the most recent). */
export const MAX_HEAD_SNAPSHOTS = 1000
/** Most forget notices one head carries (the most recent). */
export const MAX_HEAD_FORGOTTEN = 200
/** Largest head accepted. */
export const MAX_HEAD_BYTES = KINDS.head.maxBytes
const SHA2_256 = 0x12

const enc = new TextEncoder()
const dec = new TextDecoder('utf-8', { fatal: true })

/** `/snapmesh-snap/<CID in base32>`: where a snapshot record lives, named by its own hash */
export function recordKey (cid: CID): Uint8Array {
  return enc.encode(`/${RECORD_NAMESPACE}/${cid.toV1().toString()}`)
}

/** `/snapmesh-head/<peer ID>`: that agent's signed list of the snapshots it knows */
export function headKey (peerId: string): Uint8Array {
  return enc.encode(`/${HEAD_NAMESPACE}/${peerId}`)
}

function keyRest (key: Uint8Array, ns: string): string {
  let s: string
  try {
    s = dec.decode(key)
  } catch {
    throw new InvalidRecordError(`DHT key of ${key.length} bytes is not UTF-8 text`)
  }
  const prefix = `/${ns}/`
  if (!s.startsWith(prefix)) throw new InvalidRecordError(`DHT key ${JSON.stringify(s.slice(0, 80))} is not in namespace /${ns}/`)
  return s.slice(prefix.length)
}

/** The CID a record key names; throws InvalidRecordError for anything else. */
export function parseRecordKey (key: Uint8Array): CID {
  const rest = keyRest(key, RECORD_NAMESPACE)
  let cid: CID
  try {
    cid = CID.parse(rest)
  } catch (err: any) {
    throw new InvalidRecordError(`record key /${RECORD_NAMESPACE}/${rest.slice(0, 80)} does not end in a CID: ${String(err.message)}`)
  }
  if (cid.version !== 1 || cid.code !== DAG_CBOR || cid.multihash.code !== SHA2_256) {
    throw new InvalidRecordError(`record key CID ${cid.toString()} must be a CIDv1 of dag-cbor over sha2-256`)
  }
  return cid
}

/** The peer ID a head key names; throws InvalidRecordError for anything else. */
export function parseHeadKey (key: Uint8Array): string {
  const peer = keyRest(key, HEAD_NAMESPACE)
  const problem = peerIdProblem(peer)
  if (problem != null) throw new InvalidRecordError(`head key /${HEAD_NAMESPACE}/${peer.slice(0, 80)}: the peer ID ${problem}`)
  return peer
}

export interface HeadEntry { id: string, cid: CID }

/**
 * An agent's signed list of the snapshots it knows, newest first, as held in memory: the body's
 * fields and the envelope's. On the wire a "head" envelope (see src/envelope) whose body is
 * { peerId, seq, snapshots: [{ id, cid }], forgotten?: [forget notice envelopes] }.
 */
export interface Head {
  /** the signing format's version (snapmesh/signed/v1) */
  v: 1
  type: 'head'
  peerId: string
  /** grows with every new head of this peer; the DHT keeps the highest */
  seq: number
  snapshots: HeadEntry[]
  /** the snapshots this agent forgot, each with the notice it was forgotten by */
  forgotten: ForgetNotice[]
  /** the peer whose key signed: `peerId`, for a head that verifies */
  signer: string
  sig: Uint8Array
}

interface HeadBody { peerId: string, seq: number, snapshots: HeadEntry[], forgotten?: ForgetNotice[] }

const HEAD_FIELDS: ReadonlySet<string> = new Set(['peerId', 'seq', 'snapshots', 'forgotten'])

const asRecordError = (e: EnvelopeError): Error => new InvalidRecordError(e.message, { cause: e })

/** A head's body map checked field by field, its notices' signatures not yet checked. */
function decodeHeadBody (o: Record<string, unknown>, w: string): Required<HeadBody> {
  for (const k of Object.keys(o)) if (!HEAD_FIELDS.has(k)) throw new InvalidRecordError(`${w}: unknown field "${k}"`)
  const problem = peerIdProblem(o.peerId)
  if (problem != null) throw new InvalidRecordError(`${w}: field "peerId" ${problem}`)
  if (typeof o.seq !== 'number' || !Number.isSafeInteger(o.seq) || o.seq < 0) throw new InvalidRecordError(`${w}: field "seq" must be a non-negative integer`)
  if (!Array.isArray(o.snapshots) || o.snapshots.length > MAX_HEAD_SNAPSHOTS) throw new InvalidRecordError(`${w}: field "snapshots" must be a list of at most ${MAX_HEAD_SNAPSHOTS} entries`)
  const snapshots: HeadEntry[] = []
  for (const [i, s] of (o.snapshots as any[]).entries()) {
    if (s == null || typeof s !== 'object' || Object.keys(s).some(k => k !== 'id' && k !== 'cid')) throw new InvalidRecordError(`${w}: snapshots[${i}] must be a map of { id, cid }`)
    if (!isSnapshotId(s.id)) throw new InvalidRecordError(`${w}: snapshots[${i}]: field "id" must be 64 lowercase hex digits`)
    const cid = CID.asCID(s.cid)
    if (cid == null || cid.version !== 1 || cid.code !== DAG_CBOR || cid.multihash.code !== SHA2_256) throw new InvalidRecordError(`${w}: snapshots[${i}]: field "cid" must be a CIDv1 of dag-cbor over sha2-256`)
    snapshots.push({ id: s.id, cid })
  }
  const forgotten: ForgetNotice[] = []
  if (o.forgotten !== undefined) {
    if (!Array.isArray(o.forgotten) || o.forgotten.length === 0 || o.forgotten.length > MAX_HEAD_FORGOTTEN) throw new InvalidRecordError(`${w}: field "forgotten" must be a list of 1 to ${MAX_HEAD_FORGOTTEN} forget notices`)
    for (const [i, n] of (o.forgotten as unknown[]).entries()) {
      try {
        forgotten.push(decodeForgetNoticeObject(n, `${w}: forgotten[${i}]`))
      } catch (err: any) {
        throw new InvalidRecordError(String(err.message), { cause: err })
      }
    }
  }
  return { peerId: o.peerId as string, seq: o.seq, snapshots, forgotten }
}

function toHead (env: { body: Required<HeadBody>, signer: string, sig: Uint8Array }): Head {
  return { v: 1, type: 'head', ...env.body, signer: env.signer, sig: env.sig }
}

/**
 * Signs and encodes a head. The list is cut to the first MAX_HEAD_SNAPSHOTS entries, so pass it
 * newest first; the notices to the first MAX_HEAD_FORGOTTEN.
 */
export async function signHead (privateKey: PrivateKey, h: HeadBody, options: AbortOptions = {}): Promise<Uint8Array> {
  options.signal?.throwIfAborted()
  const body: Record<string, unknown> = { peerId: h.peerId, seq: h.seq, snapshots: h.snapshots.slice(0, MAX_HEAD_SNAPSHOTS).map(s => ({ id: s.id, cid: s.cid })) }
  const forgotten = (h.forgotten ?? []).slice(0, MAX_HEAD_FORGOTTEN)
  // a head with no forget notices has no "forgotten" field
  if (forgotten.length > 0) body.forgotten = forgotten.map(forgetNoticeEnvelope)
  const bytes = encodeEnvelope(await sealEnvelope(privateKey, 'head', body))
  try {
    readEnvelope(decodeEnvelopeBytes(bytes, 'head'), 'head', decodeHeadBody)
  } catch (err) {
    rethrowAs(err, asRecordError)
  }
  return bytes
}

/** Decodes a head strictly and checks its signature against the peer it names, and every notice's. */
export async function decodeHead (bytes: Uint8Array): Promise<Head> {
  let head: Head
  try {
    head = toHead(await openEnvelope(bytes, 'head', decodeHeadBody, { where: 'head' }))
  } catch (err) {
    rethrowAs(err, asRecordError)
  }
  // each notice stands on its own signature: a head may pass on notices signed by other agents
  for (const n of head.forgotten) {
    try {
      await verifyForgetNotice(n)
    } catch (err: any) {
      throw new InvalidRecordError(`head of ${head.peerId}: ${String(err.message)}`, { cause: err })
    }
  }
  return head
}

/** A record key's validator: the value must hash to the key's CID and decode as a valid record. */
async function validateRecord (key: Uint8Array, value: Uint8Array, options?: AbortOptions): Promise<void> {
  const cid = parseRecordKey(key)
  if (!equals(cidForBytes(value, DAG_CBOR).multihash.bytes, cid.multihash.bytes)) {
    throw new InvalidRecordError(`record bytes do not hash to the CID in the key ${cid.toString()}`)
  }
  options?.signal?.throwIfAborted()
  await decodeRecord(value)
}

/** A head key's validator: a valid head, signed by the peer the key names. */
async function validateHead (key: Uint8Array, value: Uint8Array, options?: AbortOptions): Promise<void> {
  const peer = parseHeadKey(key)
  options?.signal?.throwIfAborted()
  const head = await decodeHead(value)
  if (head.peerId !== peer) throw new InvalidRecordError(`head of ${head.peerId} stored under the key of ${peer}`)
}

/** kad-dht validators, by namespace: peers store a value under our namespaces only if these pass. */
export const validators: Record<string, (key: Uint8Array, value: Uint8Array, options?: AbortOptions) => Promise<void>> = {
  [RECORD_NAMESPACE]: validateRecord,
  [HEAD_NAMESPACE]: validateHead
}

/** The index of the head with the highest seq; equal seqs go to the smallest bytes, so every peer picks the same. */
function selectHead (_key: Uint8Array, values: Uint8Array[]): number {
  let best = 0
  let bestSeq = -1
  values.forEach((v, i) => {
    let seq: unknown
    try {
      seq = (dagCbor.decode(v) as any)?.body?.seq
    } catch {
      return
    }
    if (typeof seq !== 'number' || !Number.isSafeInteger(seq)) return
    if (seq > bestSeq || (seq === bestSeq && compare(v, values[best]) < 0)) {
      best = i
      bestSeq = seq
    }
  })
  return best
}

/** kad-dht selectors, by namespace: records are immutable (any copy will do); heads: the highest seq. */
export const selectors: Record<string, (key: Uint8Array, values: Uint8Array[]) => number> = {
  [RECORD_NAMESPACE]: (_key: Uint8Array, _values: Uint8Array[]): number => 0,
  [HEAD_NAMESPACE]: selectHead
}
