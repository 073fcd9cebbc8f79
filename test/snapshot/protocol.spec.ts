import assert from 'node:assert/strict'
import {
  SnapshotProtocol, computeStatus, decodeMessage, signResult, validateGossip, verifyResult,
  type Marker, type ResultBody, type SignedResult, type SnapshotMessage, type SnapshotProtocolComponents, type SnapshotState, type SnapshotStatus
} from '../../src/snapshot/index.js'
import { marker, okBody, peer, peers, prng, seededBytes, type Peer } from './fixtures.js'

interface Harness {
  proto: SnapshotProtocol
  published: SnapshotMessage[]
  changes: Array<{ id: string, status: SnapshotStatus, results: number }>
  captures: Marker[]
  clock: { now: number }
}

function harness (self: Peer, over: Partial<SnapshotProtocolComponents> = {}, init: { deadlineMs?: number, lamport?: number, retainMs?: number, maxMarkerAgeMs?: number } = {}): Harness {
  const clock = { now: 1000 }
  const published: SnapshotMessage[] = []
  const changes: Harness['changes'] = []
  const captures: Marker[] = []
  const proto = new SnapshotProtocol({
    peerId: self.id,
    clock: () => clock.now,
    random: seededBytes(7),
    publish: async (bytes) => { published.push(decodeMessage(bytes)) },
    capture: async (m) => { captures.push(m); return okBody(m, self) },
    sign: async (body) => signResult(self.key, body),
    onChange: (s, status) => { changes.push({ id: s.marker.id, status, results: s.results.size }) },
    ...over
  }, { deadlineMs: init.deadlineMs ?? 10_000, lamport: init.lamport, retainMs: init.retainMs, maxMarkerAgeMs: init.maxMarkerAgeMs })
  return { proto, published, changes, captures, clock }
}

describe('snapshot / protocol', () => {
  it('captures once per marker, publishes a signed result, applies it, and completes with the other result', async () => {
    const [a, b] = await peers(2)
    const h = harness(a)
    const m = marker(b.id, [a.id, b.id], { lamport: 7 })
    await h.proto.handleMarker(m)
    await h.proto.handleMarker(m)
    assert.equal(h.captures.length, 1, 'a marker seen again is not captured again')
    assert.equal(h.published.length, 1)
    const mine = h.published[0] as SignedResult
    assert.equal(mine.type, 'result')
    assert.equal(mine.id, m.id)
    assert.equal(mine.peerId, a.id)
    assert.ok(mine.lamport > 7, 'the result is stamped after the marker in Lamport time')
    assert.equal(mine.time, 1000, 'the result is stamped with the protocol clock')
    await verifyResult(mine)
    assert.ok(h.proto.get(m.id)?.results.has(a.id), 'its own result is applied locally')
    assert.ok(h.proto.seen(m.id, 'marker'))
    assert.ok(h.proto.seen(m.id, 'result', a.id))
    assert.ok(!h.proto.seen(m.id, 'result', b.id))
    await h.proto.handleResult(await signResult(b.key, okBody(m, b)))
    assert.equal(h.changes.at(-1)?.status, 'complete')
    const count = h.changes.length
    h.proto.tick(50_000)
    assert.equal(h.changes.length, count, 'tick reports nothing when no status changed')
  })

  it('start publishes a marker naming itself and the members, captures, and tick ends it at the deadline', async () => {
    const [a, b] = await peers(2)
    const h = harness(a)
    const s = await h.proto.start('nightly', [b.id, b.id])
    const m = h.published[0] as Marker
    assert.equal(m.type, 'marker')
    assert.equal(m.initiator, a.id)
    assert.equal(m.tag, 'nightly')
    assert.deepEqual(m.expected, [a.id, b.id].sort())
    assert.equal(m.startedAt, 1000)
    assert.equal(m.deadline, 11_000)
    assert.match(m.id, /^[0-9a-f]{64}$/)
    assert.equal(s.marker.id, m.id)
    await h.proto.settled()
    assert.equal(h.captures.length, 1)
    assert.equal((h.published[1] as SignedResult).type, 'result')
    h.proto.tick(10_999)
    assert.equal(h.changes.at(-1)?.status, 'running')
    h.proto.tick(11_000)
    assert.equal(h.changes.at(-1)?.status, 'partial')
    const n = h.changes.length
    h.proto.tick(11_500)
    assert.equal(h.changes.length, n, 'partial is reported once')
    await h.proto.handleResult(await signResult(b.key, okBody(m, b, { time: 11_400 })))
    assert.equal(h.changes.at(-1)?.status, 'complete', 'a late result upgrades the status')
  })

  it('keeps its Lamport clock above every message seen', async () => {
    const [a, b] = await peers(2)
    const h = harness(a, {}, { lamport: 3 })
    assert.equal(h.proto.lamport, 3)
    await h.proto.handleResult(await signResult(b.key, okBody(marker(b.id, [b.id]), b, { lamport: 41 })))
    assert.ok(h.proto.lamport > 41)
    await h.proto.start(undefined, [])
    const m = h.published[0] as Marker
    assert.ok(m.lamport > 41)
    await h.proto.settled()
    assert.ok((h.published[1] as SignedResult).lamport > m.lamport)
  })

  it('is deterministic: the same clock, random source and inputs publish the same bytes', async () => {
    const [a, b] = await peers(2)
    const runs: SnapshotMessage[][] = []
    for (let i = 0; i < 2; i++) {
      const h = harness(a)
      await h.proto.start('t', [b.id])
      await h.proto.settled()
      runs.push(h.published)
    }
    assert.deepEqual(runs[0].map(m => m.id), runs[1].map(m => m.id))
    assert.deepEqual((runs[0][1] as SignedResult).sig, (runs[1][1] as SignedResult).sig)
  })

  it('keeps a result that arrives before its marker and counts it once the marker comes', async () => {
    const [a, b] = await peers(2)
    const h = harness(a)
    const m = marker(b.id, [a.id, b.id])
    await h.proto.handleResult(await signResult(b.key, okBody(m, b)))
    assert.equal(h.changes.length, 0)
    await h.proto.handleMarker(m)
    assert.equal(h.changes.at(-1)?.status, 'complete')
  })

  it('publishes an error result when the capture throws', async () => {
    const a = await peer()
    const h = harness(a, { capture: async () => { throw new Error('sources folder vanished') } })
    const m = marker(a.id, [a.id])
    await h.proto.handleMarker(m)
    const r = h.published[0] as SignedResult
    assert.equal(r.status, 'error')
    assert.match(String(r.error), /sources folder vanished/)
    await verifyResult(r)
    h.proto.tick(m.deadline)
    assert.equal(h.changes.at(-1)?.status, 'failed')
  })

  it('does not capture for a marker long past its deadline, and forgets old snapshots', async () => {
    const [a, b] = await peers(2)
    const h = harness(a, {}, { retainMs: 1000, maxMarkerAgeMs: 50_000 })
    h.clock.now = 100_000
    await h.proto.handleMarker(marker(b.id, [a.id, b.id], { startedAt: 1000, deadline: 11_000 }))
    assert.equal(h.captures.length, 0)
    h.clock.now = 2000
    const m = marker(b.id, [a.id, b.id])
    await h.proto.handleMarker(m)
    assert.ok(h.proto.get(m.id) != null)
    // learned at 2000 with a 60 s span: kept until 62,000 + retainMs on this agent's clock
    h.proto.tick(63_000)
    assert.ok(h.proto.get(m.id) != null)
    h.proto.tick(63_001)
    assert.equal(h.proto.get(m.id), undefined)
  })

  it('a marker from an initiator whose clock is an hour behind is captured and kept for its span', async () => {
    const [a, b] = await peers(2)
    const h = harness(a, {}, { retainMs: 1000 })
    h.clock.now = 3_600_000 + 2000
    const m = marker(b.id, [a.id, b.id], { startedAt: 2000, deadline: 62_000 })
    await h.proto.handleMarker(m)
    assert.equal(h.captures.length, 1)
    h.proto.tick(3_600_000 + 30_000)
    assert.ok(h.proto.get(m.id) != null, 'still held: its span has not passed on this clock')
  })

  it('stop aborts a capture in flight', async () => {
    const a = await peer()
    let sawAbort = false
    const h = harness(a, {
      capture: async (m, options) => {
        await new Promise<void>(resolve => options?.signal?.addEventListener('abort', () => { resolve() }))
        sawAbort = true
        return { ...okBody(m, a), status: 'error', root: undefined, error: 'aborted' } satisfies ResultBody
      }
    })
    await h.proto.start(undefined, [])
    await h.proto.stop()
    assert.ok(sawAbort)
  })
})

describe('snapshot / protocol simulation', () => {
  /** agents joined by an in-memory gossip bus that delivers in a seeded random order */
  async function simulate (seed: number, n: number, down: number): Promise<Array<{ status: SnapshotStatus, reasons: string[] }>> {
    const ps = await peers(n)
    const rnd = prng(seed)
    const queue: Array<{ from: string, to: number, data: Uint8Array }> = []
    const now = { t: 1000 }
    const agents = ps.map((p, i) => {
      const states = new Map<string, SnapshotState>()
      const proto: SnapshotProtocol = new SnapshotProtocol({
        peerId: p.id,
        clock: () => now.t,
        random: seededBytes(seed * 100 + i),
        publish: async (data) => { ps.forEach((_, j) => { if (j !== i) queue.push({ from: p.id, to: j, data }) }) },
        capture: async (m) => okBody(m, p),
        sign: async (body) => signResult(p.key, body),
        onChange: (s) => { states.set(s.marker.id, s) }
      }, { deadlineMs: 10_000 })
      return { proto, states }
    })
    const alive = (j: number): boolean => j < n - down
    await agents[0].proto.start('sim', ps.map(p => p.id))
    while (queue.length > 0) {
      const [msg] = queue.splice(Math.floor(rnd() * queue.length), 1)
      if (!alive(msg.to)) continue
      const target = agents[msg.to].proto
      const v = await validateGossip(msg, { now: now.t, seen: (id, kind, peerId) => target.seen(id, kind, peerId) })
      if (v.action !== 'accept' || v.message == null) continue
      if (v.message.type === 'marker') await target.handleMarker(v.message)
      else if (v.message.type === 'result') await target.handleResult(v.message)
      await Promise.all(agents.map(async a => a.proto.settled()))
    }
    await Promise.all(agents.map(async a => a.proto.settled()))
    now.t = 20_000
    return agents.filter((_, j) => alive(j)).map(a => {
      const [s] = [...a.states.values()]
      a.proto.tick(now.t)
      const { status, reasons } = computeStatus(s, now.t)
      return { status, reasons }
    })
  }

  it('every live agent reaches the same status, whatever the delivery order', async function () {
    this.timeout(20_000)
    for (let seed = 1; seed <= 8; seed++) {
      const all = await simulate(seed, 4, 0)
      assert.ok(all.every(x => x.status === 'complete'), `seed ${seed}: ${JSON.stringify(all)}`)
      const some = await simulate(seed, 4, 1)
      assert.ok(some.every(x => x.status === 'partial'), `seed ${seed}`)
      assert.ok(some.every(x => JSON.stringify(x) === JSON.stringify(some[0])), `seed ${seed}: agents disagree`)
      assert.equal(some[0].reasons.length, 1)
    }
  })
})
