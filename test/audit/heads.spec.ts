import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { HeadStore, InvalidAuditHeadError, WrongAuditHeadAuthorError, StaleAuditHeadError, decodeAuditHead, signAuditHead, validateAuditHeadGossip } from '../../src/audit/index.js'
import { peers, type Peer } from '../snapshot/fixtures.js'

const hash = (c: string): string => c.repeat(64)

describe('audit / heads', () => {
  let a: Peer
  let b: Peer
  let self: Peer
  let dir: string

  before(async () => {
    [a, b, self] = await peers(3)
  })

  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'snapmesh-audit-heads-'))
  })

  afterEach(async () => {
    await fs.rm(dir, { recursive: true, force: true })
  })

  const head = async (p: Peer, seq: number, h = hash('a'), signer: Peer = p): Promise<Uint8Array> => signAuditHead(signer.key, { peerId: p.id, seq, hash: h, time: 1000 + seq })

  it('a genuine head from its own peer is accepted; the store keeps the newest per peer, durably', async () => {
    const store = new HeadStore({ dir })
    await store.start()
    const v = await validateAuditHeadGossip({ from: a.id, data: await head(a, 3) }, store, self.id)
    assert.equal(v.action, 'accept')
    assert.ok(v.message != null)
    assert.equal(await store.offer(v.message), 'kept')
    assert.equal(await store.offer(await decodeAuditHead(await head(a, 5, hash('b')))), 'kept')
    assert.equal(await store.offer(await decodeAuditHead(await head(b, 1))), 'kept')
    const again = new HeadStore({ dir })
    await again.start()
    assert.equal(again.get(a.id)?.head.seq, 5)
    assert.equal(again.get(a.id)?.head.hash, hash('b'))
    assert.equal(again.get(b.id)?.head.seq, 1)
    assert.equal(again.list().length, 2)
  })

  it('a bad signature or a head sent by another peer than it names is rejected', async () => {
    const store = new HeadStore({ dir })
    await store.start()
    const forged = await head(a, 3, hash('a'), b)
    const v1 = await validateAuditHeadGossip({ from: a.id, data: forged }, store, self.id)
    assert.equal(v1.action, 'reject')
    assert.ok(v1.error instanceof InvalidAuditHeadError, String(v1.error))
    assert.match(v1.error.message, /not signed by its key/)
    const v2 = await validateAuditHeadGossip({ from: b.id, data: await head(a, 3) }, store, self.id)
    assert.equal(v2.action, 'reject')
    assert.ok(v2.error instanceof WrongAuditHeadAuthorError)
    const v3 = await validateAuditHeadGossip({ from: a.id, data: new Uint8Array([1, 2, 3]) }, store, self.id)
    assert.equal(v3.action, 'reject')
    // and the control: the same head from its author passes
    assert.equal((await validateAuditHeadGossip({ from: a.id, data: await head(a, 3) }, store, self.id)).action, 'accept')
  })

  it('a head older than (or the same as) the one kept is ignored, and not kept', async () => {
    const store = new HeadStore({ dir })
    await store.start()
    await store.offer(await decodeAuditHead(await head(a, 7)))
    for (const data of [await head(a, 6), await head(a, 7)]) {
      const v = await validateAuditHeadGossip({ from: a.id, data }, store, self.id)
      assert.equal(v.action, 'ignore')
      assert.ok(v.error instanceof StaleAuditHeadError)
    }
    assert.equal(await store.offer(await decodeAuditHead(await head(a, 2))), 'stale')
    assert.equal(store.get(a.id)?.head.seq, 7)
    // a head of this host itself is not kept here
    assert.equal((await validateAuditHeadGossip({ from: self.id, data: await head(self, 9) }, store, self.id)).action, 'ignore')
  })

  it('another hash for a seq already held is kept as evidence of a fork, once, and survives a restart', async () => {
    const store = new HeadStore({ dir })
    await store.start()
    await store.offer(await decodeAuditHead(await head(a, 4, hash('a'))))
    const v = await validateAuditHeadGossip({ from: a.id, data: await head(a, 4, hash('c')) }, store, self.id)
    assert.equal(v.action, 'accept')
    assert.ok(v.message != null)
    assert.equal(await store.offer(v.message), 'fork')
    assert.equal(store.judge(v.message), 'stale', 'the same fork again is not news')
    assert.deepEqual(store.forks(), [{ peerId: a.id, seq: 4, hashes: [hash('a'), hash('c')] }])
    const again = new HeadStore({ dir })
    await again.start()
    assert.deepEqual(again.forks(), [{ peerId: a.id, seq: 4, hashes: [hash('a'), hash('c')] }])
    assert.equal(again.get(a.id)?.head.hash, hash('a'), 'the first head stays the one kept')
  })
})
