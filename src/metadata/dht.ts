import * as dagCbor from '@ipld/dag-cbor'
import { peerIdFromString } from '@libp2p/peer-id'
import { CID } from 'multiformats/cid'
import { equals } from 'uint8arrays/equals'
import { DAG_CBOR, cidForBytes } from '../store/index.js'
import { InvalidRecordError } from './errors.js'
import { decodeRecord } from './record.js'
import type { PrivateKey } from '@libp2p/interface'

export const RECORD_NAMESPACE = 'snapmesh-snap'
export const HEAD_NAMESPACE = 'snapmesh-head'
export const MAX_HEAD_SNAPSHOTS = 1000

const enc = new TextEncoder()
const dec = new TextDecoder()

/** `/snapmesh-snap/<CID>`: where a snapshot record lives, named by its own hash */
export function recordKey (cid: CID): Uint8Array {
  return enc.encode(`/${RECORD_NAMESPACE}/${cid.toString()}`)
}

/** `/snapmesh-head/<peer ID>`: that agent's signed list of the snapshots it knows */
export function headKey (peerId: string): Uint8Array {
  return enc.encode(`/${HEAD_NAMESPACE}/${peerId}`)
}

function keyRest (key: Uint8Array, ns: string): string {
  const s = dec.decode(key)
  const prefix = `/${ns}/`
  if (!s.startsWith(prefix)) throw new InvalidRecordError(`key ${s} is not in namespace ${ns}`)
  return s.slice(prefix.length)
}

export interface Head {
  v: 1
  type: 'snapmesh/head'
  peerId: string
  seq: number
  snapshots: Array<{ id: string, cid: CID }>
  sig: Uint8Array
}

function headPayload (h: Omit<Head, 'sig'>): Uint8Array {
  return dagCbor.encode({ v: 1, type: 'snapmesh/head', peerId: h.peerId, seq: h.seq, snapshots: h.snapshots.map(s => ({ id: s.id, cid: s.cid })) })
}

export async function signHead (privateKey: PrivateKey, h: { peerId: string, seq: number, snapshots: Array<{ id: string, cid: CID }> }): Promise<Uint8Array> {
  const body = { v: 1 as const, type: 'snapmesh/head' as const, peerId: h.peerId, seq: h.seq, snapshots: h.snapshots.slice(0, MAX_HEAD_SNAPSHOTS) }
  const sig = await privateKey.sign(headPayload(body))
  return dagCbor.encode({ ...body, sig })
}

/** Decodes a head and checks its signature against the peer it names. */
export async function decodeHead (bytes: Uint8Array): Promise<Head> {
  let o: any
  try {
    o = dagCbor.decode(bytes)
  } catch (err: any) {
    throw new InvalidRecordError(`head is not dag-cbor: ${String(err.message)}`)
  }
  if (o == null || o.v !== 1 || o.type !== 'snapmesh/head') throw new InvalidRecordError('not a snapmesh head')
  if (typeof o.seq !== 'number' || !Number.isSafeInteger(o.seq) || o.seq < 0) throw new InvalidRecordError('head: field "seq" must be a non-negative integer')
  if (!Array.isArray(o.snapshots) || o.snapshots.length > MAX_HEAD_SNAPSHOTS) throw new InvalidRecordError(`head: field "snapshots" must list at most ${MAX_HEAD_SNAPSHOTS} entries`)
  for (const s of o.snapshots) {
    if (typeof s?.id !== 'string' || !/^[0-9a-f]{64}$/.test(s.id) || CID.asCID(s.cid) == null) throw new InvalidRecordError('head: a snapshot entry is not { id, cid }')
  }
  if (!(o.sig instanceof Uint8Array)) throw new InvalidRecordError('head: field "sig" is missing')
  let ok = false
  try {
    const key = peerIdFromString(o.peerId).publicKey
    ok = key != null && await key.verify(headPayload(o), o.sig)
  } catch {}
  if (!ok) throw new InvalidRecordError(`head claims peer ${String(o.peerId)} but is not signed by its key`)
  return o as Head
}

/** kad-dht validators: peers store a value under our namespaces only if these pass. */
export const validators = {
  [RECORD_NAMESPACE]: async (key: Uint8Array, value: Uint8Array): Promise<void> => {
    const cid = CID.parse(keyRest(key, RECORD_NAMESPACE))
    if (cid.code !== DAG_CBOR) throw new InvalidRecordError(`record key ${cid.toString()} is not a dag-cbor CID`)
    if (!equals(cidForBytes(value, DAG_CBOR).multihash.bytes, cid.multihash.bytes)) {
      throw new InvalidRecordError(`record bytes do not hash to the CID in the key ${cid.toString()}`)
    }
    await decodeRecord(value)
  },
  [HEAD_NAMESPACE]: async (key: Uint8Array, value: Uint8Array): Promise<void> => {
    const peer = keyRest(key, HEAD_NAMESPACE)
    const head = await decodeHead(value)
    if (head.peerId !== peer) throw new InvalidRecordError(`head of ${head.peerId} stored under the key of ${peer}`)
  }
}

/** kad-dht selectors: records are immutable; for heads the highest `seq` wins. */
export const selectors = {
  [RECORD_NAMESPACE]: (_key: Uint8Array, _values: Uint8Array[]): number => 0,
  [HEAD_NAMESPACE]: (_key: Uint8Array, values: Uint8Array[]): number => {
    let best = 0
    let bestSeq = -1
    values.forEach((v, i) => {
      try {
        const seq = (dagCbor.decode(v) as any)?.seq
        if (typeof seq === 'number' && seq > bestSeq) { best = i; bestSeq = seq }
      } catch {}
    })
    return best
  }
}
