import assert from 'node:assert/strict'
import { DHT_RECORD_TTL_MS, Republisher } from '../../src/metadata/index.js'

const key = (s: string): Uint8Array => new TextEncoder().encode(s)
const text = (b: Uint8Array): string => new TextDecoder().decode(b)
const HOUR = 3600_000

function setup (init: { intervalMs?: number, retryMs?: number } = {}): { r: Republisher, puts: string[], clock: { now: number }, fail: Set<string> } {
  const puts: string[] = []
  const fail = new Set<string>()
  const clock = { now: 0 }
  const r = new Republisher({
    clock: () => clock.now,
    put: async (k, v) => {
      if (fail.has(text(k))) throw new Error(`no peers for ${text(k)}`)
      puts.push(`${text(k)}=${text(v)}`)
    }
  }, { intervalMs: 12 * HOUR, retryMs: 5 * 60_000, ...init })
  return { r, puts, clock, fail }
}

describe('metadata / republish', () => {
  it('re-puts every value once per interval, well before the DHT drops it', async () => {
    const { r, puts, clock } = setup()
    await r.publish(key('/snapmesh-snap/a'), key('A'))
    assert.deepEqual(puts, ['/snapmesh-snap/a=A'])
    clock.now = 12 * HOUR - 1
    assert.deepEqual((await r.tick()).put, 0)
    clock.now = 12 * HOUR
    assert.deepEqual(await r.tick(), { put: 1, failed: 0, dropped: 0 })
    assert.equal(puts.length, 2)
    for (let h = 13; h <= 96; h++) {
      clock.now = h * HOUR
      await r.tick()
    }
    assert.equal(puts.length, 9, 'every 12 h over four days')
    assert.ok(12 * HOUR < DHT_RECORD_TTL_MS)
  })

  it('a new value for a key replaces the old one (a head with a higher seq)', async () => {
    const { r, puts, clock } = setup()
    await r.publish(key('/snapmesh-head/p'), key('seq1'))
    await r.publish(key('/snapmesh-head/p'), key('seq2'))
    assert.equal(r.size, 1)
    clock.now = 12 * HOUR
    await r.tick()
    assert.deepEqual(puts, ['/snapmesh-head/p=seq1', '/snapmesh-head/p=seq2', '/snapmesh-head/p=seq2'])
  })

  it('retries a failed put after retryMs, and publish reports the failure', async () => {
    const { r, puts, clock, fail } = setup()
    fail.add('/k')
    await assert.rejects(r.publish(key('/k'), key('v')), /no peers for \/k/)
    assert.equal(r.lastPut(key('/k')), undefined)
    clock.now = 4 * 60_000
    assert.equal((await r.tick()).put, 0)
    clock.now = 5 * 60_000
    assert.deepEqual(await r.tick(), { put: 0, failed: 1, dropped: 0 })
    fail.clear()
    clock.now = 10 * 60_000
    assert.deepEqual(await r.tick(), { put: 1, failed: 0, dropped: 0 })
    assert.equal(r.lastPut(key('/k')), 10 * 60_000)
    assert.deepEqual(puts, ['/k=v'])
  })

  it('tracked values without a last put are due at once; earliest due first', async () => {
    const { r, puts, clock } = setup()
    clock.now = 100
    r.track(key('/old'), key('1'), 100 - 12 * HOUR - 5)
    r.track(key('/new'), key('2'))
    r.track(key('/recent'), key('3'), 50)
    assert.deepEqual(r.due().map(text), ['/old', '/new'])
    assert.equal(r.nextDue(), 100 - 5)
    await r.tick()
    assert.deepEqual(puts, ['/old=1', '/new=2'])
    r.forget(key('/recent'))
    assert.equal(r.has(key('/recent')), false)
  })

  it('a loader is read at each put, and a value gone stops its republishing', async () => {
    const { r, puts, clock } = setup()
    let value: string | undefined = 'v1'
    await r.publish(key('/rec'), async () => value == null ? undefined : key(value))
    value = 'v2'
    clock.now = 12 * HOUR
    await r.tick()
    value = undefined
    clock.now = 24 * HOUR
    assert.deepEqual(await r.tick(), { put: 0, failed: 0, dropped: 1 })
    assert.equal(r.size, 0)
    assert.deepEqual(puts, ['/rec=v1', '/rec=v2'])
  })

  it('refuses an interval at or beyond the DHT expiry', () => {
    assert.throws(() => setup({ intervalMs: DHT_RECORD_TTL_MS }), /below the DHT expiry/)
    assert.throws(() => setup({ intervalMs: 0 }), RangeError)
  })
})
