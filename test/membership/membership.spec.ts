import assert from 'node:assert/strict'
import { Membership } from '../../src/membership/index.js'
import { BLOCKS_PROTOCOL } from '../../src/node/index.js'
import type { KnownPeer } from '../../src/node/index.js'

describe('membership', () => {
  let now: number
  let connected: string[]
  let asked: string[]
  let m: Membership

  beforeEach(async () => {
    now = 1_000_000
    connected = []
    asked = []
    m = new Membership({
      mesh: {
        peerId: 'self',
        connectedSpeaking: async (protocol) => { asked.push(protocol); return [...connected].sort() },
        knownSpeaking: async (): Promise<KnownPeer[]> => []
      },
      clock: () => now
    })
    await m.start()
  })

  it('members are the connected peers that speak the block protocol; a snapshot expects them and this agent', async () => {
    connected = ['p2', 'p1']
    assert.deepEqual(await m.connected(), ['p1', 'p2'])
    assert.deepEqual(await m.current(), ['self', 'p1', 'p2'])
    assert.deepEqual([...new Set(asked)], [BLOCKS_PROTOCOL])
  })

  it('a member is presumed gone only once it has been away for longer than the grace period', async () => {
    connected = ['p1', 'p2']
    await m.connected()
    connected = ['p1']
    now += 5_000
    const live = new Set(await m.connected())
    assert.equal(m.presumedGone('p2', live, 10_000), false)
    assert.equal(m.presumedGone('p1', live, 10_000), false)
    now += 6_000
    // p2 last seen 11 s ago; p1 is connected; this agent is never gone
    assert.equal(m.presumedGone('p2', live, 10_000), true)
    assert.equal(m.presumedGone('p1', live, 10_000), false)
    assert.equal(m.presumedGone('self', new Set(), 0), false)
    // a member never seen counts from this agent's start
    assert.equal(m.presumedGone('p9', live, 10_000), true)
    assert.equal(m.presumedGone('p9', live, 20_000), false)
  })
})
