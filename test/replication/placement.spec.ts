import assert from 'node:assert/strict'
import crypto from 'node:crypto'
import { holders } from '../../src/replication/placement.js'
import { RAW, cidForBytes } from '../../src/store/index.js'

const peers = Array.from({ length: 21 }, (_, i) => `12D3KooPeer${String(i).padStart(2, '0')}`)
const cids = Array.from({ length: 20_000 }, (_, i) => cidForBytes(crypto.createHash('sha256').update(`block ${i}`).digest(), RAW))

describe('replication / placement', function () {
  this.timeout(30_000)

  it('the owner is always a holder and the others are distinct members', () => {
    for (const cid of cids.slice(0, 500)) {
      const h = holders(cid, peers[0], peers, 3)
      assert.equal(h[0], peers[0])
      assert.equal(new Set(h).size, 3)
      assert.ok(h.every(p => peers.includes(p)))
    }
    assert.deepEqual(holders(cids[0], 'lonely', [], 3), ['lonely'])
    assert.throws(() => holders(cids[0], peers[0], peers, 0), /at least 1/)
  })

  it('does not depend on the order members are listed in', () => {
    const shuffled = [...peers].reverse()
    for (const cid of cids.slice(0, 500)) assert.deepEqual(holders(cid, peers[3], shuffled, 2), holders(cid, peers[3], peers, 2))
  })

  it('spreads copies over 20 peers within 10% of the mean', () => {
    // owner peers[0] places one extra copy of each of 20,000 blocks on the 20 others
    const counts = new Map<string, number>()
    for (const cid of cids) {
      const [, other] = holders(cid, peers[0], peers, 2)
      counts.set(other, (counts.get(other) ?? 0) + 1)
    }
    const mean = cids.length / 20
    assert.equal(counts.size, 20)
    for (const [peer, n] of counts) assert.ok(Math.abs(n - mean) / mean < 0.1, `${peer} holds ${n}, mean ${mean}`)
  })

  it('when a peer joins, only copies that move to it move', () => {
    const before = peers.slice(0, 20)
    const joined = peers
    let moved = 0
    const sample = cids.slice(0, 5000)
    for (const cid of sample) {
      const a = holders(cid, before[0], before, 3)
      const b = holders(cid, before[0], joined, 3)
      const lost = a.filter(p => !b.includes(p))
      const gained = b.filter(p => !a.includes(p))
      assert.ok(gained.every(p => p === peers[20]), 'copies move only to the newcomer')
      assert.equal(lost.length, gained.length)
      moved += gained.length
    }
    // the newcomer takes its fair share of the extra copies: one in 20 (it is one of 20 non-owners)
    const share = moved / (sample.length * 2)
    assert.ok(share > 0.04 && share < 0.06, `newcomer took ${(share * 100).toFixed(1)}% of the copies`)
  })

  it('when a peer leaves, only its copies move', () => {
    const gone = peers[7]
    const after = peers.filter(p => p !== gone)
    for (const cid of cids.slice(0, 5000)) {
      const a = holders(cid, peers[0], peers, 3)
      const b = holders(cid, peers[0], after, 3)
      if (!a.includes(gone)) assert.deepEqual(b, a)
      else assert.deepEqual(b.filter(p => a.includes(p)), a.filter(p => p !== gone))
    }
  })
})
