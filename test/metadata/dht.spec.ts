import assert from 'node:assert/strict'
import * as dagCbor from '@ipld/dag-cbor'
import {
  HEAD_NAMESPACE, InvalidRecordError, MAX_HEAD_SNAPSHOTS, RECORD_NAMESPACE, decodeHead, encodeRecord, headKey, parseHeadKey, parseRecordKey, recordFromState, recordKey, selectors, signHead, validators
} from '../../src/metadata/index.js'
import { DAG_CBOR, RAW, cidForBytes } from '../../src/store/index.js'
import { applyResult, newState, signResult } from '../../src/snapshot/index.js'
import { marker, okBody, peer, peers, type Peer } from '../snapshot/fixtures.js'

const text = (b: Uint8Array): string => new TextDecoder().decode(b)

async function recordBytes (p: Peer, tag = 'x'): Promise<{ cid: ReturnType<typeof cidForBytes>, bytes: Uint8Array }> {
  const m = marker(p.id, [p.id], { tag })
  return encodeRecord(recordFromState(applyResult(newState(m), await signResult(p.key, okBody(m, p))), 2000))
}

function entry (n: number): { id: string, cid: ReturnType<typeof cidForBytes> } {
  return { id: n.toString(16).padStart(64, '0'), cid: cidForBytes(new Uint8Array([n]), DAG_CBOR) }
}

describe('metadata / DHT keys', () => {
  it('builds /snapmesh-snap/<base32 CID> and /snapmesh-head/<peer ID> keys and parses them back', async () => {
    const a = await peer()
    const { cid } = await recordBytes(a)
    assert.equal(text(recordKey(cid)), `/snapmesh-snap/${cid.toString()}`)
    assert.match(text(recordKey(cid)), /^\/snapmesh-snap\/b[a-z2-7]+$/)
    assert.ok(parseRecordKey(recordKey(cid)).equals(cid))
    assert.equal(text(headKey(a.id)), `/snapmesh-head/${a.id}`)
    assert.equal(parseHeadKey(headKey(a.id)), a.id)
    assert.deepEqual(Object.keys(validators).sort(), [HEAD_NAMESPACE, RECORD_NAMESPACE].sort())
    assert.deepEqual(Object.keys(selectors).sort(), [HEAD_NAMESPACE, RECORD_NAMESPACE].sort())
  })
})

describe('metadata / DHT record validator', () => {
  it('accepts a record stored under its own CID', async () => {
    const a = await peer()
    const { cid, bytes } = await recordBytes(a)
    await validators[RECORD_NAMESPACE](recordKey(cid), bytes)
  })

  it('rejects bytes that do not hash to the key\'s CID', async () => {
    const a = await peer()
    const { cid } = await recordBytes(a, 'one')
    const other = await recordBytes(a, 'two')
    await assert.rejects(validators[RECORD_NAMESPACE](recordKey(cid), other.bytes), (err: any) => err instanceof InvalidRecordError && err.message.includes(`do not hash to the CID in the key ${cid.toString()}`))
  })

  it('rejects bytes that hash right but are not a valid record', async () => {
    const junk = dagCbor.encode({ hello: 1 })
    await assert.rejects(validators[RECORD_NAMESPACE](recordKey(cidForBytes(junk, DAG_CBOR)), junk), /field "v" must be 1/)
  })

  it('rejects keys that do not name a dag-cbor sha2-256 CID', async () => {
    const a = await peer()
    const { bytes } = await recordBytes(a)
    const enc = (s: string): Uint8Array => new TextEncoder().encode(s)
    await assert.rejects(validators[RECORD_NAMESPACE](enc('/snapmesh-snap/not-a-cid'), bytes), /does not end in a CID/)
    await assert.rejects(validators[RECORD_NAMESPACE](recordKey(cidForBytes(bytes, RAW)), bytes), /must be a CIDv1 of dag-cbor over sha2-256/)
    await assert.rejects(validators[RECORD_NAMESPACE](enc('/other/x'), bytes), /not in namespace \/snapmesh-snap\//)
  })

  it('the record selector keeps the first copy: records are immutable', () => {
    assert.equal(selectors[RECORD_NAMESPACE](new Uint8Array(), [new Uint8Array([1]), new Uint8Array([2])]), 0)
  })
})

describe('metadata / DHT heads', () => {
  it('round-trips a signed head', async () => {
    const a = await peer()
    const bytes = await signHead(a.key, { peerId: a.id, seq: 3, snapshots: [entry(1), entry(2)] })
    const head = await decodeHead(bytes)
    assert.equal(head.peerId, a.id)
    assert.equal(head.seq, 3)
    assert.deepEqual(head.snapshots.map(s => s.id), [entry(1).id, entry(2).id])
    assert.ok(head.snapshots[1].cid.equals(entry(2).cid))
    await validators[HEAD_NAMESPACE](headKey(a.id), bytes)
  })

  it('keeps only the first MAX_HEAD_SNAPSHOTS entries', async () => {
    const a = await peer()
    const many = Array.from({ length: MAX_HEAD_SNAPSHOTS + 5 }, (_, i) => entry(i))
    const head = await decodeHead(await signHead(a.key, { peerId: a.id, seq: 1, snapshots: many }))
    assert.equal(head.snapshots.length, MAX_HEAD_SNAPSHOTS)
    assert.equal(head.snapshots[0].id, many[0].id)
  })

  it('rejects a head signed by another key than the one its peer ID names', async () => {
    const [a, b] = await peers(2)
    const forged = await signHead(b.key, { peerId: a.id, seq: 9, snapshots: [] })
    await assert.rejects(validators[HEAD_NAMESPACE](headKey(a.id), forged), (err: any) => err instanceof InvalidRecordError && err.message.includes(`head claims peer ${a.id} but is not signed by its key`))
  })

  it('rejects a valid head stored under another peer\'s key', async () => {
    const [a, b] = await peers(2)
    const head = await signHead(a.key, { peerId: a.id, seq: 1, snapshots: [] })
    await assert.rejects(validators[HEAD_NAMESPACE](headKey(b.id), head), new RegExp(`head of ${a.id} stored under the key of ${b.id}`))
    await assert.rejects(validators[HEAD_NAMESPACE](new TextEncoder().encode('/snapmesh-head/bob'), head), /the peer ID is not a valid peer ID/)
  })

  it('rejects a tampered head and malformed fields, naming them', async () => {
    const a = await peer()
    const good = dagCbor.decode(await signHead(a.key, { peerId: a.id, seq: 1, snapshots: [entry(1)] })) as any
    const check = async (o: object, re: RegExp): Promise<void> => { await assert.rejects(decodeHead(dagCbor.encode(o)), (err: any) => err instanceof InvalidRecordError && re.test(err.message)) }
    // a head is an envelope { type, body, signer, sig }: tamper with its body or the envelope itself
    const body = (over: object): object => ({ ...good, body: { ...good.body, ...over } })
    await check(body({ seq: 2 }), /not signed by its key/)
    await check(body({ seq: -1 }), /field "seq" must be a non-negative integer/)
    await check(body({ snapshots: [{ id: 'x', cid: entry(1).cid }] }), /snapshots\[0\]: field "id"/)
    await check(body({ snapshots: [{ id: entry(1).id, cid: 'bafy' }] }), /snapshots\[0\]: field "cid"/)
    await check({ ...good, sig: new Uint8Array(2) }, /field "sig" must be a 64-byte signature/)
    await check(body({ extra: true }), /unknown field "extra"/)
    await check({ ...good, extra: true }, /unknown field "extra"/)
    await check({ ...good, type: 'result' }, /field "type" must be "head"/)
  })

  it('the head selector picks the highest seq, and the same one on every peer', async () => {
    const a = await peer()
    const h1 = await signHead(a.key, { peerId: a.id, seq: 1, snapshots: [] })
    const h5 = await signHead(a.key, { peerId: a.id, seq: 5, snapshots: [entry(1)] })
    const h5b = await signHead(a.key, { peerId: a.id, seq: 5, snapshots: [entry(2)] })
    const key = headKey(a.id)
    assert.equal(selectors[HEAD_NAMESPACE](key, [h1, h5, h1]), 1)
    assert.equal(selectors[HEAD_NAMESPACE](key, [h5, h1]), 0)
    assert.equal(selectors[HEAD_NAMESPACE](key, [new Uint8Array([0xff]), h1]), 1, 'undecodable values lose')
    const one = selectors[HEAD_NAMESPACE](key, [h5, h5b])
    const two = selectors[HEAD_NAMESPACE](key, [h5b, h5])
    assert.equal([h5, h5b][one], [h5b, h5][two], 'a tie on seq is broken the same way in any order')
  })
})
