// What a peer states about time is bounded by this agent's clock and config: a future-dated
// message is rejected, and a barrier marker cannot freeze this host for longer than its own config
// allows, whatever it asks and whatever else this host is capturing.
import assert from 'node:assert/strict'
import PQueue from 'p-queue'
import {
  FutureDatedError, SnapshotProtocol, decodeMessage, encodeMarker, encodePrepared, signResult, validateGossip, encodeResult,
  type Marker, type Prepared, type SnapshotMessage
} from '../../src/snapshot/index.js'
import { LocalCapture } from '../../src/snapshot/local.js'
import { marker, okBody, peers, type Peer } from './fixtures.js'

const MIN = 60_000

describe('snapshot / bounds on what peers claim', () => {
  let a: Peer
  let b: Peer

  before(async () => { [a, b] = await peers(2) })

  it('rejects a marker, a result and a vote dated more than the allowed skew ahead; accepts them within it', async () => {
    const now = 10 * MIN
    const ctx = { seen: () => false, now, maxSkewMs: 5 * MIN }
    const ahead = marker(a.id, [a.id, b.id], { startedAt: now + 6 * MIN, deadline: now + 8 * MIN })
    const within = marker(a.id, [a.id, b.id], { startedAt: now + 4 * MIN, deadline: now + 8 * MIN })
    const far = await validateGossip({ from: a.id, data: encodeMarker(ahead) }, ctx)
    assert.equal(far.action, 'reject')
    assert.ok(far.error instanceof FutureDatedError)
    assert.match(far.error.message, /"startedAt" is 360 s ahead of this agent's clock, more than the 300 s allowed/)
    assert.equal((await validateGossip({ from: a.id, data: encodeMarker(within) }, ctx)).action, 'accept')

    const body = (time: number) => ({ ...okBody(within, b), time })
    assert.equal((await validateGossip({ from: b.id, data: encodeResult(await signResult(b.key, body(now + 6 * MIN))) }, ctx)).action, 'reject')
    assert.equal((await validateGossip({ from: b.id, data: encodeResult(await signResult(b.key, body(now + MIN))) }, ctx)).action, 'accept')

    const vote = (time: number): Prepared => ({ v: 1, type: 'prepared', id: within.id, peerId: b.id, lamport: 2, time, ok: true })
    assert.equal((await validateGossip({ from: b.id, data: encodePrepared(vote(now + 6 * MIN)) }, ctx)).action, 'reject')
    assert.equal((await validateGossip({ from: b.id, data: encodePrepared(vote(now)) }, ctx)).action, 'accept')
  })

  it('a barrier marker asking for an hour of prepare is held to this host\'s own cap, and the host thaws', async () => {
    const clock = { now: 1000 }
    const published: SnapshotMessage[] = []
    const log: string[] = []
    const proto = new SnapshotProtocol({
      peerId: a.id,
      clock: () => clock.now,
      random: () => new Uint8Array(32),
      publish: async (bytes) => { published.push(decodeMessage(bytes)) },
      capture: async (m) => { log.push('capture'); return okBody(m, a) },
      sign: async (body) => signResult(a.key, body),
      onChange: () => {},
      prepare: async () => { log.push('freeze') },
      release: async () => { log.push('thaw') }
    }, { deadlineMs: 60_000, name: 'a', maxPrepareTimeoutMs: 2_000, maxFreezeMs: 10_000 })
    const m: Marker = marker(b.id, [a.id, b.id], { startedAt: 1000, deadline: 1000 + 6 * 24 * 60 * MIN, consistency: 'barrier', prepareTimeoutMs: 60 * MIN })
    await proto.handleMarker(m)
    assert.deepEqual(log, ['freeze'])
    assert.deepEqual(proto.frozen(), [m.id])
    clock.now += 1_500
    proto.tick(clock.now)
    assert.deepEqual(proto.frozen(), [m.id], 'still within the cap')
    clock.now += 1_000
    proto.tick(clock.now)
    await new Promise(resolve => setTimeout(resolve, 10))
    assert.deepEqual(log, ['freeze', 'thaw'])
    assert.deepEqual(proto.frozen(), [])
    const no = published.find((x): x is Prepared => x.type === 'prepared' && !x.ok)
    assert.match(no?.error ?? '', /gave up after 2000 ms/)
  })

  it('a barrier capture gives up waiting behind a long capture or prune at its freeze bound; a marker capture waits its turn', async () => {
    const serial = new PQueue({ concurrency: 1 })
    let releaseLong: () => void = () => {}
    const order: string[] = []
    // a long task holds the queue (a capture or prune of real, unabortable length)
    void serial.add(async () => { order.push('long'); await new Promise<void>(resolve => { releaseLong = resolve }) })
    void serial.add(async () => { order.push('prune') })
    const local = new LocalCapture({
      blocks: {} as any,
      state: { get: async () => undefined, set: async () => {} },
      apps: { cut: () => {}, wait: async () => ({}), release: async () => {} },
      serial,
      lamport: () => 7
    }, { peerId: a.id, name: 'a', sources: [], appsSource: 'apps' })
    const m = marker(b.id, [a.id, b.id], { consistency: 'barrier', prepareTimeoutMs: 1000 })
    const started = Date.now()
    const result = await local.capture(m, { signal: AbortSignal.timeout(300) })
    const waited = Date.now() - started
    assert.equal(result.status, 'error')
    assert.match(result.error ?? '', /behind another capture or prune until the freeze bound ended/)
    assert.ok(waited < 2_000, `gave up after ${waited} ms`)
    // the control: a marker-mode capture waits for the long task and then runs
    const plain = local.capture(marker(b.id, [a.id, b.id]), {})
    let settled = false
    void plain.then(() => { settled = true })
    await new Promise(resolve => setTimeout(resolve, 100))
    assert.equal(settled, false, 'a marker-mode capture waits behind the long task')
    releaseLong()
    const done = await plain
    assert.equal(done.peerId, a.id)
    assert.deepEqual(order, ['long', 'prune'])
    local.stop()
  })

  it('refuses at once a capture past the number one initiator may have waiting; another initiator\'s still queues', async () => {
    const serial = new PQueue({ concurrency: 1 })
    let releaseLong: () => void = () => {}
    void serial.add(async () => { await new Promise<void>(resolve => { releaseLong = resolve }) })
    const local = new LocalCapture({
      blocks: {} as any,
      state: { get: async () => undefined, set: async () => {} },
      apps: { cut: () => {}, wait: async () => ({}), release: async () => {} },
      serial,
      lamport: () => 7
    }, { peerId: a.id, name: 'a', sources: [], appsSource: 'apps', maxWaitingPerInitiator: 2 })
    const first = local.capture(marker(b.id, [a.id, b.id]))
    const second = local.capture(marker(b.id, [a.id, b.id]))
    const third = await local.capture(marker(b.id, [a.id, b.id]))
    assert.equal(third.status, 'error')
    assert.match(third.error ?? '', /refused: 2 captures started by .* are already waiting here \(at most 2\)/)
    const other = local.capture(marker(a.id, [a.id, b.id]))
    let otherDone = false
    void other.then(() => { otherDone = true })
    await new Promise(resolve => setTimeout(resolve, 50))
    assert.equal(otherDone, false, 'another initiator\'s capture queues rather than being refused')
    releaseLong()
    for (const r of await Promise.all([first, second, other])) assert.doesNotMatch(r.error ?? '', /refused/)
    // the queue drained: the same initiator may start again
    const again = await local.capture(marker(b.id, [a.id, b.id]))
    assert.doesNotMatch(again.error ?? '', /refused/)
    local.stop()
  })
})
