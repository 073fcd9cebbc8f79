import assert from 'node:assert/strict'
import * as dagCbor from '@ipld/dag-cbor'
import {
  DuplicateMessageError, ExpiredMarkerError, InvalidMessageError, InvalidSignatureError, MAX_MESSAGE_BYTES, MessageTooLargeError, SeenSet, WrongSenderError,
  encodeMarker, encodeResult, gossipActionFor, signResult, validateGossip, type GossipContext
} from '../../src/snapshot/index.js'
import { marker, okBody, peers } from './fixtures.js'

describe('snapshot / gossip validation', () => {
  const fresh: GossipContext = { seen: () => false, now: 5000 }

  it('accepts a good marker and a good result, handing back the decoded message', async () => {
    const [a, b] = await peers(2)
    const m = marker(a.id, [a.id, b.id])
    const vm = await validateGossip({ from: a.id, data: encodeMarker(m) }, fresh)
    assert.equal(vm.action, 'accept')
    assert.deepEqual(vm.message, m)
    const r = await signResult(b.key, okBody(m, b))
    const vr = await validateGossip({ from: b.id, data: encodeResult(r) }, fresh)
    assert.equal(vr.action, 'accept')
    assert.equal(vr.message?.type, 'result')
  })

  it('rejects undecodable bytes and bad fields', async () => {
    const [a] = await peers(1)
    const m = marker(a.id, [a.id])
    const junk = await validateGossip({ from: a.id, data: new Uint8Array([0xff, 0x00, 0x13]) }, fresh)
    assert.equal(junk.action, 'reject')
    assert.ok(junk.error instanceof InvalidMessageError)
    const bad = await validateGossip({ from: a.id, data: dagCbor.encode({ ...m, lamport: -4 }) }, fresh)
    assert.equal(bad.action, 'reject')
    assert.match(String(bad.error?.message), /"lamport"/)
  })

  it('rejects a message over the size limit, the network limit or the protocol one', async () => {
    const [a] = await peers(1)
    const m = marker(a.id, [a.id])
    const small = await validateGossip({ from: a.id, data: encodeMarker(m) }, { ...fresh, maxBytes: 10 })
    assert.equal(small.action, 'reject')
    assert.ok(small.error instanceof MessageTooLargeError)
    const huge = await validateGossip({ from: a.id, data: new Uint8Array(MAX_MESSAGE_BYTES + 1) }, { ...fresh, maxBytes: 4 * MAX_MESSAGE_BYTES })
    assert.equal(huge.action, 'reject')
    assert.ok(huge.error instanceof MessageTooLargeError)
  })

  it('rejects a marker whose initiator is not its author', async () => {
    const [a, b] = await peers(2)
    const v = await validateGossip({ from: b.id, data: encodeMarker(marker(a.id, [a.id, b.id])) }, fresh)
    assert.equal(v.action, 'reject')
    assert.ok(v.error instanceof WrongSenderError)
    assert.match(String(v.error?.message), new RegExp(`initiator ${a.id} but was sent by ${b.id}`))
  })

  it('rejects a result whose peer is not its author', async () => {
    const [a, b] = await peers(2)
    const m = marker(a.id, [a.id, b.id])
    const r = await signResult(b.key, okBody(m, b))
    const v = await validateGossip({ from: a.id, data: encodeResult(r) }, fresh)
    assert.equal(v.action, 'reject')
    assert.ok(v.error instanceof WrongSenderError)
  })

  it('rejects a result signed by another key than its peer\'s, even sent in that peer\'s name', async () => {
    const [a, b] = await peers(2)
    const m = marker(a.id, [a.id, b.id])
    const forged = await signResult(a.key, okBody(m, b))
    const v = await validateGossip({ from: b.id, data: encodeResult(forged) }, fresh)
    assert.equal(v.action, 'reject')
    assert.ok(v.error instanceof InvalidSignatureError)
    assert.match(String(v.error?.message), /not signed by its key/)
  })

  it('ignores a marker already seen and a duplicate result', async () => {
    const [a, b] = await peers(2)
    const m = marker(a.id, [a.id, b.id])
    const r = await signResult(b.key, okBody(m, b))
    const asked: unknown[][] = []
    const ctx: GossipContext = { now: 5000, seen: (...args) => { asked.push(args); return true } }
    const vm = await validateGossip({ from: a.id, data: encodeMarker(m) }, ctx)
    assert.equal(vm.action, 'ignore')
    assert.ok(vm.error instanceof DuplicateMessageError)
    const vr = await validateGossip({ from: b.id, data: encodeResult(r) }, ctx)
    assert.equal(vr.action, 'ignore')
    assert.deepEqual(asked, [[m.id, 'marker', undefined], [m.id, 'result', b.id]])
  })

  it('ignores a marker whose deadline is far in the past, but accepts a recently expired one', async () => {
    const [a] = await peers(1)
    const m = marker(a.id, [a.id])
    const old = await validateGossip({ from: a.id, data: encodeMarker(m) }, { ...fresh, now: m.deadline + 3 * 24 * 3600_000 })
    assert.equal(old.action, 'ignore')
    assert.ok(old.error instanceof ExpiredMarkerError)
    const late = await validateGossip({ from: a.id, data: encodeMarker(m) }, { ...fresh, now: m.deadline + 60_000 })
    assert.equal(late.action, 'accept')
    const strict = await validateGossip({ from: a.id, data: encodeMarker(m) }, { ...fresh, now: m.deadline + 60_000, maxAgeMs: 1000 })
    assert.equal(strict.action, 'ignore')
  })

  it('never throws: a failing seen lookup is ignored, not blamed on the author', async () => {
    const [a] = await peers(1)
    const v = await validateGossip({ from: a.id, data: encodeMarker(marker(a.id, [a.id])) }, { now: 0, seen: () => { throw new Error('db closed') } })
    assert.equal(v.action, 'ignore')
    assert.equal(v.error?.message, 'db closed')
    assert.equal(gossipActionFor(new TypeError('x')), 'ignore')
  })

  it('SeenSet remembers markers and results and forgets the oldest beyond its bound', () => {
    const seen = new SeenSet({ max: 2 })
    seen.add('a', 'marker')
    assert.ok(seen.seen('a', 'marker'))
    assert.ok(!seen.seen('a', 'result', 'p'))
    seen.add('a', 'result', 'p')
    assert.ok(seen.seen('a', 'result', 'p'))
    assert.ok(!seen.seen('a', 'result', 'q'))
    seen.add('b', 'marker')
    assert.equal(seen.size, 2)
    assert.ok(!seen.has('a', 'marker'), 'the oldest entry is forgotten')
    assert.throws(() => new SeenSet({ max: 0 }), RangeError)
  })
})
