import assert from 'node:assert/strict'
import crypto from 'node:crypto'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { capture, manifestBlocks } from '../../src/capture/index.js'
import { holders } from '../../src/replication/placement.js'
import { placementFor, takeOver, takerFor } from '../../src/replication/takeover.js'
import { FsBlockStore, RAW, cidForBytes } from '../../src/store/index.js'
import type { CID } from 'multiformats/cid'

const peers = Array.from({ length: 8 }, (_, i) => `12D3KooPeer${i}`)
const cids = Array.from({ length: 2000 }, (_, i) => cidForBytes(crypto.createHash('sha256').update(`b${i}`).digest(), RAW))

describe('replication / taking over a gone owner\'s part', function () {
  this.timeout(60_000)

  it('places a live owner\'s blocks as placement does, and a gone owner\'s on the wanted number of live members', () => {
    const owner = peers[0]
    const live = peers.slice(1)
    for (const cid of cids.slice(0, 300)) {
      assert.deepEqual(placementFor(owner, peers, 2)(cid), holders(cid, owner, peers, 2))
      const placed = placementFor(owner, live, 3)(cid)
      assert.equal(placed.length, 3)
      assert.ok(!placed.includes(owner) && placed.every(p => live.includes(p)))
      // the owner's former second holder keeps its copy: only the owner's own copy moves
      assert.equal(placed[0], holders(cid, owner, peers, 3)[1])
    }
  })

  it('every agent picks the same taker from the same members, and takers spread over the members', () => {
    const picks = new Map<string, number>()
    for (const cid of cids) {
      const t = takerFor(cid, peers)
      assert.equal(takerFor(cid, [...peers].reverse()), t)
      picks.set(t as string, (picks.get(t as string) ?? 0) + 1)
    }
    assert.equal(picks.size, peers.length)
    assert.equal(takerFor(cids[0], []), undefined)
  })

  describe('with stores on disk', () => {
    let dir: string
    let stores: Map<string, FsBlockStore>
    let root: CID
    const self = peers[1]

    beforeEach(async () => {
      dir = await fs.mkdtemp(path.join(os.tmpdir(), 'snapmesh-takeover-'))
      stores = new Map()
      for (const p of peers.slice(1, 5)) {
        const s = new FsBlockStore({ path: path.join(dir, p) })
        await s.start()
        stores.set(p, s)
      }
      const src = path.join(dir, 'src')
      await fs.mkdir(path.join(src, 'sub'), { recursive: true })
      await fs.writeFile(path.join(src, 'big.bin'), crypto.randomBytes(3_000_000))
      await fs.writeFile(path.join(src, 'sub', 'small.txt'), 'small')
      // the owner's store, gone with the owner after its blocks reached peers[2]
      const ownerStore = new FsBlockStore({ path: path.join(dir, 'owner') })
      await ownerStore.start()
      root = (await capture({ blocks: ownerStore }, { peerId: peers[0], name: 'gone', sources: [{ name: 'files', path: src }] })).root
      for await (const { cid } of manifestBlocks(ownerStore, root)) await stores.get(peers[2])?.put(cid, await ownerStore.get(cid))
      await ownerStore.stop()
    })

    afterEach(async () => {
      for (const s of stores.values()) await s.stop()
      await fs.rm(dir, { recursive: true, force: true })
    })

    it('gathers the part from a surviving holder, pushes every block to its placed holders and counts the copies', async () => {
      const live = peers.slice(1, 5)
      const mine = stores.get(self) as FsBlockStore
      const offered = new Map<string, number>()
      const report = await takeOver({
        blocks: mine,
        getter: { get: async (cid) => (stores.get(peers[2]) as FsBlockStore).get(cid) },
        // a holder stores what it is offered from the taker's store, as the replicate protocol does
        offer: async (holder, list) => {
          offered.set(holder, (offered.get(holder) ?? 0) + list.length)
          for (const cid of list) await stores.get(holder)?.put(cid, await mine.get(cid))
          return list
        }
      }, { root, self, placement: placementFor(peers[0], live, 2) })
      const all: CID[] = []
      for await (const { cid } of manifestBlocks(mine, root)) all.push(cid)
      assert.equal(report.blocks, all.length)
      assert.deepEqual(report.failures, [])
      assert.ok(report.copies >= 2, `copies ${report.copies}`)
      assert.ok(!offered.has(self))
      for (const cid of all) {
        assert.ok(await mine.has(cid))
        for (const h of placementFor(peers[0], live, 2)(cid)) assert.ok(await stores.get(h)?.has(cid), `${h} lacks ${cid.toString()}`)
      }
      assert.deepEqual(report.holders, [...new Set([self, ...offered.keys()])].sort())
    })

    it('a holder that refuses lowers the count and is named, and a part nobody has fails with the block named', async () => {
      const live = peers.slice(1, 5)
      const mine = stores.get(self) as FsBlockStore
      const report = await takeOver({
        blocks: mine,
        getter: { get: async (cid) => (stores.get(peers[2]) as FsBlockStore).get(cid) },
        offer: async (holder) => { throw new Error(`${holder} is unreachable`) }
      }, { root, self, placement: placementFor(peers[0], live, 3) })
      assert.equal(report.copies, 1)
      assert.ok(report.failures.length > 0 && report.failures.every(f => /is unreachable/.test(f)))
      assert.deepEqual(report.holders, [self])

      const empty = new FsBlockStore({ path: path.join(dir, 'empty') })
      await empty.start()
      try {
        await assert.rejects(takeOver({
          blocks: empty,
          getter: { get: async (cid) => { throw new Error(`no holder has ${cid.toString()}`) } },
          offer: async () => []
        }, { root, self: peers[4], placement: placementFor(peers[0], live, 2) }), new RegExp(`no holder has ${root.toString()}`))
      } finally {
        await empty.stop()
      }
    })
  })
})
