import assert from 'node:assert/strict'
import * as dagCbor from '@ipld/dag-cbor'
import { Catalog, decodeRecord, encodeRecord, mergeRecords, recordFromState } from '../../src/metadata/index.js'
import {
  SnapshotProtocol, applyResult, decodeMessage, encodeMarker, mergeMarkers, newState, scheduledSnapshotId, signResult, validateGossip,
  type Marker, type SnapshotMessage
} from '../../src/snapshot/index.js'
import { okBody, peers, type Peer } from './fixtures.js'

const SLOT = 1_800_000_000_000

function firing (p: Peer, expected: string[], over: Partial<Marker> = {}): Marker {
  return { v: 1, type: 'marker', id: scheduledSnapshotId('nightly', SLOT), initiator: p.id, lamport: 4, startedAt: SLOT, deadline: SLOT + 60_000, expected: [...new Set([p.id, ...expected])].sort(), consistency: 'marker', schedule: 'nightly', slot: SLOT, tag: 'nightly', ...over }
}

describe('snapshot / schedules', () => {
  let a: Peer
  let b: Peer
  let c: Peer
  before(async () => { [a, b, c] = await peers(3) })

  it('a slot has one ID on every agent; a marker whose ID is not its slot\'s is refused', () => {
    assert.equal(scheduledSnapshotId('nightly', SLOT), scheduledSnapshotId('nightly', SLOT))
    assert.notEqual(scheduledSnapshotId('nightly', SLOT), scheduledSnapshotId('nightly', SLOT + 1000))
    assert.notEqual(scheduledSnapshotId('nightly', SLOT), scheduledSnapshotId('hourly', SLOT))
    const m = firing(a, [b.id])
    assert.deepEqual(decodeMessage(encodeMarker(m)), m)
    assert.throws(() => encodeMarker({ ...m, slot: SLOT + 1 }), /field "id" is not the ID of schedule "nightly" slot/)
    const { slot: _slot, ...noSlot } = m
    assert.throws(() => decodeMessage(dagCbor.encode(noSlot)), /field "slot" must be a non-negative integer/)
    assert.throws(() => encodeMarker({ ...m, consistency: 'barrier', prepareTimeoutMs: 1000 }), /must be "marker" for a scheduled snapshot/)
  })

  it('firings by different agents merge into one marker, whatever the order', () => {
    const fa = firing(a, [a.id, b.id])
    const fb = firing(b, [b.id, c.id], { lamport: 2 })
    const ab = mergeMarkers(fa, fb)
    assert.deepEqual(ab, mergeMarkers(fb, fa))
    assert.deepEqual(ab.expected, [a.id, b.id, c.id].sort())
    assert.equal(ab.initiator, a.id < b.id ? a.id : b.id)
    assert.equal(ab.lamport, 2)
    assert.throws(() => mergeMarkers(fa, firing(b, [], { deadline: SLOT + 1 })), /differ in field "deadline"/)
    assert.throws(() => mergeMarkers(fa, { ...fa, schedule: undefined, slot: undefined }), /not firings of one schedule slot/)
  })

  it('an agent captures a slot once, whether its own firing or another agent\'s marker came first, and merges the others', async () => {
    const published: SnapshotMessage[] = []
    let captures = 0
    const proto = new SnapshotProtocol({
      peerId: a.id,
      clock: () => SLOT + 10,
      random: () => new Uint8Array(32),
      publish: async (bytes) => { published.push(decodeMessage(bytes)) },
      capture: async (m) => { captures++; return okBody(m, a) },
      sign: async (body) => signResult(a.key, body),
      onChange: () => {}
    }, { deadlineMs: 60_000 })
    await proto.handleMarker(firing(b, [b.id, a.id]))
    assert.equal(captures, 1)
    assert.ok(proto.seen(scheduledSnapshotId('nightly', SLOT), 'marker', b.id))
    assert.ok(!proto.seen(scheduledSnapshotId('nightly', SLOT), 'marker', c.id), 'a firing by another initiator is news')
    const st = await proto.startScheduled('nightly', SLOT, [c.id])
    await proto.settled()
    assert.equal(captures, 1, 'its own firing does not capture again')
    assert.equal(published.filter(m => m.type === 'marker').length, 1, 'it publishes its own firing once')
    await proto.handleMarker(firing(c, [c.id]))
    assert.deepEqual(proto.get(st.marker.id)?.marker.expected, [a.id, b.id, c.id].sort())
    // gossip validation lets other initiators' firings through and drops repeats
    const bytes = encodeMarker(firing(c, [c.id]))
    const again = await validateGossip({ from: c.id, data: bytes }, { now: SLOT, seen: (id, kind, p) => proto.seen(id, kind, p) })
    assert.equal(again.action, 'ignore')
  })

  it('records of one slot from different agents merge in the catalog and in the DHT format', async () => {
    const fa = firing(a, [a.id])
    const fb = firing(b, [b.id])
    const ra = recordFromState(applyResult(newState(fa), await signResult(a.key, okBody(fa, a))), SLOT + 100)
    const rb = recordFromState(applyResult(newState(fb), await signResult(b.key, okBody(fb, b))), SLOT + 100)
    assert.equal(ra.status, 'complete', 'each alone thinks it is complete')
    const merged = mergeRecords(ra, rb, SLOT + 100)
    assert.deepEqual(merged.expected, [a.id, b.id].sort())
    assert.equal(merged.status, 'complete')
    assert.equal(merged.schedule, 'nightly')
    const back = await decodeRecord(encodeRecord(merged).bytes)
    assert.equal(back.slot, SLOT)
    assert.equal(encodeRecord(mergeRecords(rb, ra, SLOT + 100)).cid.toString(), encodeRecord(merged).cid.toString())
    const fc = firing(c, [c.id])
    const rc = recordFromState(newState(fc), SLOT + 100)
    assert.equal(mergeRecords(merged, rc, SLOT + 100).status, 'running', 'a third firing adds a participant still to report')
    const dir = await (await import('node:fs/promises')).mkdtemp((await import('node:path')).join((await import('node:os')).tmpdir(), 'snapmesh-sched-'))
    const cat = new Catalog({ path: dir, clock: () => SLOT + 100 })
    await cat.start()
    try {
      await cat.put(ra)
      const stored = await cat.put(rb)
      assert.deepEqual(stored.expected, [a.id, b.id].sort())
    } finally {
      await cat.stop()
    }
  })
})
