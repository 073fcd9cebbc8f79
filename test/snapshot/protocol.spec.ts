import assert from 'node:assert/strict'
import crypto from 'node:crypto'
import * as dagCbor from '@ipld/dag-cbor'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { cidForBytes, RAW } from '../../src/store/index.js'
import {
  SnapshotProtocol, applyResult, computeStatus, decodeMessage, encodeMarker, encodeResult, newState, signResult, validateGossip, verifyResult,
  type Marker, type ResultBody, type SignedResult
} from '../../src/snapshot/index.js'
import type { PrivateKey } from '@libp2p/interface'

interface Peer { key: PrivateKey, id: string }

async function peer (): Promise<Peer> {
  const key = await generateKeyPair('Ed25519')
  return { key, id: peerIdFromPrivateKey(key).toString() }
}

function marker (initiator: string, expected: string[], over: Partial<Marker> = {}): Marker {
  return { v: 1, type: 'marker', id: crypto.randomBytes(32).toString('hex'), initiator, lamport: 1, startedAt: 1000, deadline: 61_000, expected: [...expected].sort(), consistency: 'marker', ...over }
}

function body (m: Marker, p: Peer, over: Partial<ResultBody> = {}): ResultBody {
  return { id: m.id, peerId: p.id, name: `host-${p.id.slice(-4)}`, lamport: 2, time: 2000, status: 'ok', root: cidForBytes(new Uint8Array([1, 2, 3]), RAW), ...over }
}

/** a seeded shuffle, so a failing order can be replayed */
function shuffle<T> (items: T[], seed: number): T[] {
  const out = [...items]
  let s = seed
  for (let i = out.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) & 0x7fffffff
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j], out[i]]
  }
  return out
}

describe('snapshot / messages', () => {
  it('a marker round-trips through its encoding', async () => {
    const a = await peer()
    const m = marker(a.id, [a.id], { tag: 'nightly' })
    assert.deepEqual(decodeMessage(encodeMarker(m)), m)
  })

  it('a signed result verifies, and one signed by another key does not', async () => {
    const a = await peer()
    const b = await peer()
    const m = marker(a.id, [a.id, b.id])
    const good = await signResult(a.key, body(m, a))
    await verifyResult(decodeMessage(encodeResult(good)) as SignedResult)
    const forged = await signResult(b.key, body(m, a))
    await assert.rejects(verifyResult(forged), /claims peer .* but is not signed by its key/)
    const tampered = { ...good, name: 'someone-else' }
    await assert.rejects(verifyResult(tampered), /not signed by its key/)
  })

  it('each malformed field is named', async () => {
    const a = await peer()
    const m = marker(a.id, [a.id])
    const enc = (o: object): Uint8Array => dagCbor.encode(o)
    assert.throws(() => decodeMessage(new TextEncoder().encode('not cbor at all')), /not dag-cbor|not a map/)
    assert.throws(() => decodeMessage(enc({ ...m, id: 'xyz' })), /field "id" must be 64 lowercase hex digits/)
    assert.throws(() => decodeMessage(enc({ ...m, lamport: -1 })), /field "lamport" must be a non-negative integer/)
    assert.throws(() => decodeMessage(enc({ ...m, initiator: 'QmNotAPeer' })), /field "initiator" is not a valid peer ID/)
    assert.throws(() => decodeMessage(enc({ ...m, expected: [] })), /field "expected" must list/)
    assert.throws(() => decodeMessage(enc({ ...m, deadline: 10 })), /deadline is not after startedAt/)
    assert.throws(() => decodeMessage(enc({ ...m, extra: 1 })), /unknown field "extra"/)
    assert.throws(() => decodeMessage(enc({ ...m, type: 'nope' })), /unknown message type/)
    const r = await signResult(a.key, body(m, a))
    assert.throws(() => decodeMessage(enc({ ...r, status: 'fine' })), /field "status" must be "ok" or "error"/)
    assert.throws(() => decodeMessage(enc({ ...r, sig: new Uint8Array(3) })), /field "sig" must be a 64-byte signature/)
    assert.throws(() => decodeMessage(new Uint8Array(300 * 1024)), /exceeds/)
  })

  it('a result with thousands of problems is cut to fit and keeps the count', async () => {
    const a = await peer()
    const m = marker(a.id, [a.id])
    const problems = Array.from({ length: 5000 }, (_, i) => ({ source: 's', path: `file-${i}`, message: 'EACCES: permission denied' }))
    const r = await signResult(a.key, body(m, a, { problems }))
    assert.equal(r.problemCount, 5000)
    assert.ok(encodeResult(r).length < 256 * 1024)
    await verifyResult(decodeMessage(encodeResult(r)) as SignedResult)
  })
})

describe('snapshot / gossip validation', () => {
  const none = { seen: () => false, now: 5000 }

  it('accepts a good marker and result, rejects forgeries, ignores duplicates', async () => {
    const a = await peer()
    const b = await peer()
    const m = marker(a.id, [a.id, b.id])
    assert.equal((await validateGossip({ from: a.id, data: encodeMarker(m) }, none)).action, 'accept')
    assert.equal((await validateGossip({ from: b.id, data: encodeMarker(m) }, none)).action, 'reject', 'marker relayed under another sender')
    assert.equal((await validateGossip({ from: a.id, data: encodeMarker(m) }, { ...none, seen: () => true })).action, 'ignore')
    assert.equal((await validateGossip({ from: a.id, data: new Uint8Array([1, 2, 3]) }, none)).action, 'reject')
    const r = await signResult(b.key, body(m, b))
    assert.equal((await validateGossip({ from: b.id, data: encodeResult(r) }, none)).action, 'accept')
    assert.equal((await validateGossip({ from: a.id, data: encodeResult(r) }, none)).action, 'reject', 'result sent by a peer it does not name')
    const forged = await signResult(a.key, body(m, b))
    const v = await validateGossip({ from: b.id, data: encodeResult(forged) }, none)
    assert.equal(v.action, 'reject')
    assert.match(String(v.error?.message), /not signed by its key/)
    assert.equal((await validateGossip({ from: a.id, data: encodeMarker(m) }, { ...none, now: m.deadline + 3 * 24 * 3600_000 })).action, 'ignore', 'marker replayed days later')
    assert.equal((await validateGossip({ from: a.id, data: encodeMarker(m) }, { ...none, maxBytes: 10 })).action, 'reject', 'over the size limit')
  })
})

describe('snapshot / status', () => {
  it('complete once every expected participant reported ok, whatever the time', async () => {
    const [a, b] = [await peer(), await peer()]
    const m = marker(a.id, [a.id, b.id])
    let s = newState(m)
    assert.equal(computeStatus(s, 2000).status, 'running')
    s = applyResult(s, await signResult(a.key, body(m, a)))
    assert.equal(computeStatus(s, 2000).status, 'running')
    s = applyResult(s, await signResult(b.key, body(m, b)))
    assert.equal(computeStatus(s, 2000).status, 'complete')
    assert.equal(computeStatus(s, 999_999).status, 'complete')
  })

  it('partial or failed after the deadline, with reasons; a late result upgrades it', async () => {
    const [a, b] = [await peer(), await peer()]
    const m = marker(a.id, [a.id, b.id])
    let s = applyResult(newState(m), await signResult(a.key, body(m, a, { status: 'error', root: undefined, error: 'disk on fire' })))
    const failed = computeStatus(s, m.deadline)
    assert.equal(failed.status, 'failed')
    assert.ok(failed.reasons.some(r => r.includes('disk on fire')))
    assert.ok(failed.reasons.some(r => r.includes(b.id) && r.includes('did not report')))
    s = applyResult(s, await signResult(b.key, body(m, b, { time: 99_000 })))
    assert.equal(computeStatus(s, 100_000).status, 'partial')
    s = applyResult(s, await signResult(a.key, body(m, a, { time: 100_000 })))
    assert.equal(computeStatus(s, 100_001).status, 'complete')
  })

  it('duplicates change nothing, ok beats error, extra participants do not count', async () => {
    const [a, b, c] = [await peer(), await peer(), await peer()]
    const m = marker(a.id, [a.id, b.id])
    const ok = await signResult(a.key, body(m, a))
    let s = applyResult(newState(m), ok)
    assert.equal(applyResult(s, ok), s)
    const err = await signResult(a.key, body(m, a, { status: 'error', root: undefined, error: 'x', time: 9000 }))
    assert.equal(applyResult(s, err), s, 'a later error does not replace an ok result')
    s = applyResult(s, await signResult(c.key, body(m, c)))
    assert.equal(s.results.size, 2)
    assert.equal(computeStatus(s, 2000).status, 'running')
  })

  it('every order of the same results gives the same status and the same best results', async () => {
    const peers = await Promise.all(Array.from({ length: 5 }, async () => peer()))
    const m = marker(peers[0].id, peers.slice(0, 4).map(p => p.id))
    const results: SignedResult[] = []
    for (const [i, p] of peers.entries()) {
      results.push(await signResult(p.key, body(m, p, { status: i === 2 ? 'error' : 'ok', root: i === 2 ? undefined : cidForBytes(new Uint8Array([i]), RAW), error: i === 2 ? 'boom' : undefined, time: 2000 + i })))
    }
    results.push(await signResult(peers[2].key, body(m, peers[2], { time: 5000 })))
    results.push(results[0])
    const reference = results.reduce(applyResult, newState(m))
    for (let seed = 1; seed <= 200; seed++) {
      const s = shuffle(results, seed).reduce(applyResult, newState(m))
      for (const now of [3000, m.deadline + 1]) assert.deepEqual(computeStatus(s, now), computeStatus(reference, now), `seed ${seed}`)
      assert.deepEqual([...s.results.entries()].sort(), [...reference.results.entries()].sort(), `seed ${seed}`)
    }
  })
})

describe('snapshot / protocol', () => {
  it('captures once per marker, publishes a signed result, and reaches complete', async () => {
    const [a, b] = [await peer(), await peer()]
    let now = 1000
    const published: Uint8Array[] = []
    const changes: string[] = []
    let captures = 0
    const proto = new SnapshotProtocol({
      peerId: a.id,
      clock: () => now,
      random: (n) => new Uint8Array(n).fill(7),
      publish: async (bytes) => { published.push(bytes) },
      capture: async (m) => { captures++; return body(m, a) },
      sign: async (bd) => signResult(a.key, bd),
      onChange: (_s, status) => { changes.push(status) }
    }, { deadlineMs: 10_000 })
    const m = marker(b.id, [a.id, b.id])
    await proto.handleMarker(m)
    await proto.handleMarker(m)
    assert.equal(captures, 1, 'a marker seen again is ignored')
    const mine = decodeMessage(published[0]) as SignedResult
    assert.equal(mine.type, 'result')
    await verifyResult(mine)
    assert.ok(proto.lamport > m.lamport)
    await proto.handleResult(await signResult(b.key, body(m, b)))
    assert.equal(changes.at(-1), 'complete')
    now = 50_000
    proto.tick(now)
    assert.equal(changes.at(-1), 'complete')
  })

  it('start publishes a marker naming itself and the members, and tick ends it at the deadline', async () => {
    const [a, b] = [await peer(), await peer()]
    let now = 1000
    const published: Uint8Array[] = []
    const changes: string[] = []
    const proto = new SnapshotProtocol({
      peerId: a.id,
      clock: () => now,
      random: (n) => new Uint8Array(n).fill(1),
      publish: async (bytes) => { published.push(bytes) },
      capture: async (m) => body(m, a),
      sign: async (bd) => signResult(a.key, bd),
      onChange: (_s, status) => { changes.push(status) }
    }, { deadlineMs: 10_000 })
    const s = await proto.start('t', [b.id])
    const m = decodeMessage(published[0]) as Marker
    assert.equal(m.type, 'marker')
    assert.deepEqual(m.expected, [a.id, b.id].sort())
    assert.equal(m.deadline, 11_000)
    assert.equal(s.marker.id, m.id)
    await new Promise(resolve => setTimeout(resolve, 50))
    now = 11_000
    proto.tick(now)
    assert.equal(changes.at(-1), 'partial')
  })
})

describe('snapshot / protocol ordering', () => {
  it('a result that arrives before its marker is kept and counted once the marker comes', async () => {
    const [a, b] = [await peer(), await peer()]
    const changes: string[] = []
    const proto = new SnapshotProtocol({
      peerId: a.id,
      clock: () => 2000,
      random: (n) => new Uint8Array(n),
      publish: async () => {},
      capture: async (m) => body(m, a),
      sign: async (bd) => signResult(a.key, bd),
      onChange: (_s, status) => { changes.push(status) }
    }, { deadlineMs: 10_000 })
    const m = marker(b.id, [a.id, b.id])
    await proto.handleResult(await signResult(b.key, body(m, b)))
    assert.deepEqual(changes, [])
    await proto.handleMarker(m)
    assert.equal(changes.at(-1), 'complete')
  })
})
