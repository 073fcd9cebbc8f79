import assert from 'node:assert/strict'
import * as dagCbor from '@ipld/dag-cbor'
import {
  InvalidMessageError, SnapshotProtocol, computeStatus, decodeMessage, encodeMarker, encodePrepared, signResult, validateGossip,
  type Marker, type Prepared, type SignedResult, type SnapshotMessage
} from '../../src/snapshot/index.js'
import { errorBody, marker, okBody, peers, type Peer } from './fixtures.js'

interface Host {
  proto: SnapshotProtocol
  published: SnapshotMessage[]
  log: string[]
  clock: { now: number }
}

/** one participant; `log` records freeze, capture and thaw in order */
function host (self: Peer, over: { prepare?: (m: Marker) => Promise<void> } = {}): Host {
  const clock = { now: 1000 }
  const published: SnapshotMessage[] = []
  const log: string[] = []
  const proto = new SnapshotProtocol({
    peerId: self.id,
    clock: () => clock.now,
    random: () => new Uint8Array(32),
    publish: async (bytes) => { published.push(decodeMessage(bytes)) },
    capture: async (m) => { log.push('capture'); return okBody(m, self) },
    sign: async (body) => signResult(self.key, body),
    onChange: () => {},
    prepare: over.prepare ?? (async () => { log.push('freeze') }),
    release: async () => { log.push('thaw') }
  }, { deadlineMs: 60_000, name: 'host' })
  return { proto, published, log, clock }
}

function barrier (initiator: string, expected: string[], over: Partial<Marker> = {}): Marker {
  return marker(initiator, expected, { consistency: 'barrier', prepareTimeoutMs: 5_000, ...over })
}

const vote = (m: Marker, p: Peer, ok: boolean, error?: string): Prepared => ({ v: 1, type: 'prepared', id: m.id, peerId: p.id, lamport: 3, time: 1500, ok, ...(error != null ? { error } : {}) })
const votes = (h: Host): Prepared[] => h.published.filter((x): x is Prepared => x.type === 'prepared')
const results = (h: Host): SignedResult[] => h.published.filter((x): x is SignedResult => x.type === 'result')

describe('snapshot / barrier mode', () => {
  let a: Peer
  let b: Peer
  let c: Peer

  before(async () => { [a, b, c] = await peers(3) })

  it('freezes and votes on the marker, captures only once every participant voted yes, then thaws', async () => {
    const h = host(a)
    const m = barrier(b.id, [a.id, b.id, c.id])
    await h.proto.handleMarker(m)
    assert.deepEqual(h.log, ['freeze'])
    assert.deepEqual(votes(h).map(v => [v.peerId, v.ok]), [[a.id, true]])
    assert.equal(h.proto.barrierPhase(m.id), 'prepared')
    assert.deepEqual(h.proto.frozen(), [m.id])
    await h.proto.handlePrepared(vote(m, b, true))
    assert.deepEqual(h.log, ['freeze'], 'one vote is still missing')
    await h.proto.handlePrepared(vote(m, c, true))
    assert.deepEqual(h.log, ['freeze', 'capture', 'thaw'])
    assert.equal(results(h)[0].status, 'ok')
    assert.equal(h.proto.barrierPhase(m.id), 'done')
    assert.deepEqual(h.proto.frozen(), [])
  })

  it('a vote against, before or after this host froze, aborts it: thawed, error result naming the peer, never captured', async () => {
    const h = host(a)
    const m = barrier(b.id, [a.id, b.id, c.id])
    await h.proto.handleMarker(m)
    await h.proto.handlePrepared(vote(m, b, true))
    await h.proto.handlePrepared(vote(m, c, false, 'pre hook exited with code 3: database busy'))
    assert.deepEqual(h.log, ['freeze', 'thaw'])
    const r = results(h)[0]
    assert.equal(r.status, 'error')
    assert.match(r.error ?? '', new RegExp(`aborted: ${c.id} could not prepare: pre hook exited with code 3: database busy`))
    // a vote against that arrives before the marker: this host does not freeze at all
    const early = host(a)
    const m2 = barrier(b.id, [a.id, b.id, c.id])
    await early.proto.handlePrepared(vote(m2, c, false, 'disk full'))
    await early.proto.handleMarker(m2)
    assert.deepEqual(early.log, [])
    assert.match(results(early)[0].error ?? '', /aborted: .*disk full/)
  })

  it('a failing pre hook votes no with its reason and does not run the post hooks', async () => {
    const h = host(a, { prepare: async () => { throw new Error('pg_ctl: could not freeze') } })
    const m = barrier(b.id, [a.id, b.id])
    await h.proto.handleMarker(m)
    assert.deepEqual(h.log, [])
    assert.equal(votes(h)[0].ok, false)
    assert.match(votes(h)[0].error ?? '', /pre hook failed: pg_ctl: could not freeze/)
    assert.match(results(h)[0].error ?? '', /pre hook failed/)
  })

  it('gives up at the prepare timeout on its own clock, votes no naming who did not prepare, and thaws', async () => {
    const h = host(a)
    // the initiator's clock is an hour ahead: its times mean nothing here
    const m = barrier(b.id, [a.id, b.id, c.id], { startedAt: 3_600_000, deadline: 3_660_000 })
    await h.proto.handleMarker(m)
    await h.proto.handlePrepared(vote(m, b, true))
    h.clock.now = 1000 + 4_999
    h.proto.tick()
    assert.deepEqual(h.log, ['freeze'])
    h.clock.now = 1000 + 5_001
    h.proto.tick()
    await new Promise(resolve => setImmediate(resolve))
    assert.deepEqual(h.log, ['freeze', 'thaw'])
    const no = votes(h).find(v => !v.ok)
    assert.match(no?.error ?? '', new RegExp(`waiting for ${c.id} to prepare`))
    assert.match(results(h)[0].error ?? '', /aborted: gave up/)
    h.clock.now += 10_000
    h.proto.tick()
    assert.equal(votes(h).filter(v => !v.ok).length, 1, 'one vote against, not one per tick')
  })

  it('a participant that already committed captures on; the snapshot then fails as a whole', async () => {
    const h = host(a)
    const m = barrier(a.id, [a.id, b.id])
    await h.proto.handleMarker(m)
    await h.proto.handlePrepared(vote(m, b, true))
    await h.proto.handlePrepared(vote(m, b, false, 'too late'))
    assert.deepEqual(h.log, ['freeze', 'capture', 'thaw'])
    const state = h.proto.get(m.id)
    assert.ok(state != null)
    const mine = results(h)[0]
    assert.equal(mine.status, 'ok')
    const theirs = await signResult(b.key, errorBody(m, b, 'aborted: gave up'))
    await h.proto.handleResult(theirs)
    const s = computeStatus(h.proto.get(m.id) as any, 2000)
    assert.equal(s.status, 'failed', 'all or nothing, final as soon as everyone reported')
    assert.equal(computeStatus(h.proto.get(m.id) as any, m.deadline + 1).status, 'failed')
  })

  it('hosts outside the expected list do not freeze', async () => {
    const h = host(c)
    await h.proto.handleMarker(barrier(a.id, [a.id, b.id]))
    assert.deepEqual(h.log, [])
    assert.deepEqual(h.published, [])
  })

  it('markers and votes check their fields; votes are authenticated by their sender', async () => {
    const m = barrier(a.id, [a.id, b.id])
    assert.equal((decodeMessage(encodeMarker(m)) as Marker).prepareTimeoutMs, 5_000)
    assert.throws(() => encodeMarker({ ...m, prepareTimeoutMs: undefined }), (err: any) => err instanceof InvalidMessageError && /prepareTimeoutMs/.test(err.message))
    assert.throws(() => encodeMarker({ ...m, consistency: 'marker' }), /prepareTimeoutMs" is only for consistency "barrier"/)
    assert.throws(() => decodeMessage(dagCbor.encode({ ...m, consistency: 'eventual' })), /consistency" must be "marker" or "barrier"/)
    assert.throws(() => encodePrepared({ ...vote(m, a, true), error: 'x' }), /must be absent when ok is true/)
    const bytes = encodePrepared(vote(m, b, true))
    const forged = await validateGossip({ from: a.id, data: bytes }, { now: 2000, seen: () => false })
    assert.equal(forged.action, 'reject')
    const good = await validateGossip({ from: b.id, data: bytes }, { now: 2000, seen: () => false })
    assert.equal(good.action, 'accept')
    const again = await validateGossip({ from: b.id, data: bytes }, { now: 2000, seen: (id, kind, p) => kind === 'prepared' && p === b.id })
    assert.equal(again.action, 'ignore')
  })
})
