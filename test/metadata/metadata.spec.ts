import assert from 'node:assert/strict'
import crypto from 'node:crypto'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import * as dagCbor from '@ipld/dag-cbor'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { Catalog, decodeHead, decodeRecord, encodeRecord, headKey, mergeRecords, recordFromState, recordKey, selectors, signHead, validators, type SnapshotRecord } from '../../src/metadata/index.js'
import { applyResult, newState, signResult, type Marker } from '../../src/snapshot/index.js'
import { RAW, cidForBytes } from '../../src/store/index.js'
import type { PrivateKey } from '@libp2p/interface'

interface Peer { key: PrivateKey, id: string }
async function peer (): Promise<Peer> {
  const key = await generateKeyPair('Ed25519')
  return { key, id: peerIdFromPrivateKey(key).toString() }
}

async function record (peers: Peer[], reporting: Peer[], startedAt = 1000, now = 2000): Promise<SnapshotRecord> {
  const m: Marker = { v: 1, type: 'marker', id: crypto.randomBytes(32).toString('hex'), initiator: peers[0].id, lamport: 3, startedAt, deadline: startedAt + 60_000, expected: peers.map(p => p.id).sort(), consistency: 'marker', tag: 'x' }
  let s = newState(m)
  for (const p of reporting) {
    s = applyResult(s, await signResult(p.key, { id: m.id, peerId: p.id, name: p.id.slice(-4), lamport: 4, time: startedAt + 500, status: 'ok', root: cidForBytes(new Uint8Array([1]), RAW) }))
  }
  return recordFromState(s, now)
}

describe('metadata / records', () => {
  it('round-trips, and the same results encode to the same CID whatever order they came in', async () => {
    const peers = [await peer(), await peer(), await peer()]
    const r = await record(peers, peers)
    assert.equal(r.status, 'complete')
    const { cid, bytes } = encodeRecord(r)
    const decoded = await decodeRecord(bytes)
    assert.ok(encodeRecord(decoded).cid.equals(cid))
    assert.equal(decoded.results.length, 3)
    const marker = { v: 1 as const, type: 'marker' as const, id: r.id, initiator: r.initiator, lamport: r.lamport, startedAt: r.startedAt, deadline: r.deadline, expected: r.expected, consistency: 'marker' as const, tag: r.tag }
    const reversed = [...r.results].reverse().reduce(applyResult, newState(marker))
    assert.ok(encodeRecord(recordFromState(reversed, 2000)).cid.equals(cid))
  })

  it('rejects a record carrying a result signed by another key, naming it', async () => {
    const [a, b] = [await peer(), await peer()]
    const r = await record([a, b], [a])
    const forged = await signResult(b.key, { id: r.id, peerId: a.id, name: 'evil', lamport: 9, time: 9, status: 'ok', root: cidForBytes(new Uint8Array([9]), RAW) })
    const bytes = dagCbor.encode({ ...r, results: [forged] })
    await assert.rejects(decodeRecord(bytes), /results\[0\].*not signed by its key/)
  })

  it('merging unions the results and recomputes the status', async () => {
    const [a, b] = [await peer(), await peer()]
    const onlyA = await record([a, b], [a])
    assert.equal(onlyA.status, 'running')
    const m = { ...onlyA }
    const fromB = { ...m, results: [await signResult(b.key, { id: m.id, peerId: b.id, name: 'b', lamport: 4, time: 1500, status: 'ok' as const, root: cidForBytes(new Uint8Array([2]), RAW) })] }
    const merged = mergeRecords(onlyA, fromB, 2000)
    assert.equal(merged.status, 'complete')
    assert.equal(merged.results.length, 2)
    assert.deepEqual(mergeRecords(fromB, onlyA, 2000), merged)
  })
})

describe('metadata / DHT validators and selectors', () => {
  it('a record is accepted only under the key of its own CID', async () => {
    const peers = [await peer()]
    const { cid, bytes } = encodeRecord(await record(peers, peers))
    await validators['snapmesh-snap'](recordKey(cid), bytes)
    const other = encodeRecord(await record(peers, peers))
    await assert.rejects(validators['snapmesh-snap'](recordKey(cid), other.bytes), /do not hash to the CID/)
    const junk = dagCbor.encode({ hello: 1 })
    await assert.rejects(validators['snapmesh-snap'](recordKey(cidForBytes(junk, 0x71)), junk), /not a snapmesh snapshot record/)
  })

  it('a head must be signed by the peer named in its key; the highest seq wins', async () => {
    const [a, b] = [await peer(), await peer()]
    const h1 = await signHead(a.key, { peerId: a.id, seq: 1, snapshots: [] })
    const h5 = await signHead(a.key, { peerId: a.id, seq: 5, snapshots: [{ id: 'f'.repeat(64), cid: cidForBytes(new Uint8Array([1]), 0x71) }] })
    await validators['snapmesh-head'](headKey(a.id), h5)
    assert.equal((await decodeHead(h5)).snapshots.length, 1)
    await assert.rejects(validators['snapmesh-head'](headKey(b.id), h5), /stored under the key of/)
    const forged = await signHead(b.key, { peerId: a.id, seq: 9, snapshots: [] })
    await assert.rejects(validators['snapmesh-head'](headKey(a.id), forged), /not signed by its key/)
    assert.equal(selectors['snapmesh-head'](headKey(a.id), [h1, h5, h1]), 1)
  })
})

describe('metadata / catalog', () => {
  let dir: string
  beforeEach(async () => { dir = await fs.mkdtemp(path.join(os.tmpdir(), 'snapmesh-catalog-')) })
  afterEach(async () => { await fs.rm(dir, { recursive: true, force: true }) })

  it('stores, merges, lists newest first, resolves prefixes, and survives a restart', async () => {
    const [a, b] = [await peer(), await peer()]
    let cat = new Catalog({ path: dir })
    await cat.start()
    const older = await record([a, b], [a], 1000)
    const newer = await record([a], [a], 5000, 6000)
    await cat.put(older, 2000)
    await cat.put(newer, 6000)
    assert.deepEqual((await cat.list()).map(r => r.id), [newer.id, older.id])
    const fromB = { ...older, results: [await signResult(b.key, { id: older.id, peerId: b.id, name: 'b', lamport: 4, time: 1500, status: 'ok' as const, root: cidForBytes(new Uint8Array([2]), RAW) })] }
    assert.equal((await cat.put(fromB, 2000)).status, 'complete')
    assert.equal((await cat.resolve(older.id.slice(0, 10))).id, older.id)
    await assert.rejects(cat.resolve('zz'), (err: any) => err.code === 'ERR_NOT_FOUND')
    if (older.id[0] === newer.id[0]) await assert.rejects(cat.resolve(older.id[0]), (err: any) => err.code === 'ERR_AMBIGUOUS')
    await assert.rejects(cat.resolve(''), (err: any) => err.code === 'ERR_NOT_FOUND')
    await cat.setMeta('last-root', 'bafy')
    await cat.stop()
    cat = new Catalog({ path: dir })
    await cat.start()
    assert.equal((await cat.get(older.id))?.status, 'complete')
    assert.equal(await cat.getMeta('last-root'), 'bafy')
    await cat.stop()
  })

  it('an ambiguous prefix is an error that lists the candidates', async () => {
    const a = await peer()
    const cat = new Catalog({ path: dir })
    await cat.start()
    const recs: SnapshotRecord[] = []
    for (let i = 0; i < 40; i++) recs.push(await cat.put(await record([a], [a], 1000 + i)))
    const byFirst = new Map<string, number>()
    for (const r of recs) byFirst.set(r.id[0], (byFirst.get(r.id[0]) ?? 0) + 1)
    const [dup] = [...byFirst.entries()].find(([, n]) => n > 1) ?? []
    assert.ok(dup != null, '40 random IDs share a first hex digit')
    await assert.rejects(cat.resolve(dup), (err: any) => err.code === 'ERR_AMBIGUOUS' && /give more of the ID/.test(err.message))
    await cat.stop()
  })
})
