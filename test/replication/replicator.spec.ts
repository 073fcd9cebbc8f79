import assert from 'node:assert/strict'
import crypto from 'node:crypto'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { capture, manifestBlocks } from '../../src/capture/index.js'
import { BlockExchange } from '../../src/exchange/index.js'
import type { SnapmeshNode } from '../../src/node/index.js'
import { Replicator } from '../../src/replication/index.js'
import { FsBlockStore, RAW, cidForBytes } from '../../src/store/index.js'
import type { Blocks } from '../../src/store/index.js'
import type { CID } from 'multiformats/cid'
import { loopbackNode } from '../node/fixtures.js'

const node = loopbackNode

/** an owner that serves other bytes than the ones its CIDs name */
class LyingStore implements Pick<Blocks, 'get' | 'has'> {
  async has (): Promise<boolean> { return true }
  async get (): Promise<Uint8Array> { return crypto.randomBytes(300_000) }
}

describe('replication / pushing blocks to a holder', function () {
  this.timeout(60_000)
  let dir: string
  const nodes: SnapmeshNode[] = []
  const services: Array<{ stop: () => Promise<void> }> = []
  let owner: { node: SnapmeshNode, blocks: FsBlockStore, replicator: Replicator }
  let holder: { node: SnapmeshNode, blocks: FsBlockStore, puts: number }
  let liar: { node: SnapmeshNode, replicator: Replicator }
  let root: CID
  let cids: CID[]

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'snapmesh-replicator-'))
    const src = path.join(dir, 'src')
    await fs.mkdir(src)
    // chunks of the chunker's sizes and many small files: manifest nodes and tiny chunks
    await fs.writeFile(path.join(src, 'big.bin'), crypto.randomBytes(12_000_000))
    for (let i = 0; i < 40; i++) await fs.writeFile(path.join(src, `small-${i}.txt`), `small file ${i}`)

    const ownerStore = new FsBlockStore({ path: path.join(dir, 'owner') })
    await ownerStore.start()
    const ownerNode = await node()
    const ownerExchange = new BlockExchange({ libp2p: ownerNode, blocks: ownerStore })
    const ownerReplicator = new Replicator({ libp2p: ownerNode, blocks: ownerStore, exchange: ownerExchange }, { copies: 2 })
    owner = { node: ownerNode, blocks: ownerStore, replicator: ownerReplicator }

    const holderStore = new FsBlockStore({ path: path.join(dir, 'holder') })
    await holderStore.start()
    const holderNode = await node()
    holder = { node: holderNode, blocks: holderStore, puts: 0 }
    // counts the blocks the holder writes, to see that it pulls only what it lacks
    const counting: Blocks = {
      get: async (cid, options) => holderStore.get(cid, options),
      has: async (cid, options) => holderStore.has(cid, options),
      delete: async (cid, options) => { await holderStore.delete(cid, options) },
      put: async (cid, bytes, options) => {
        holder.puts++
        return holderStore.put(cid, bytes, options)
      }
    }
    const holderExchange = new BlockExchange({ libp2p: holderNode, blocks: holderStore })
    // a bandwidth limit that the test data passes through in well under a second
    const holderReplicator = new Replicator({ libp2p: holderNode, blocks: counting, exchange: holderExchange }, { copies: 2, bytesPerSecond: 200e6 })

    const liarNode = await node()
    const liarExchange = new BlockExchange({ libp2p: liarNode, blocks: new LyingStore() })
    const liarReplicator = new Replicator({ libp2p: liarNode, blocks: ownerStore, exchange: liarExchange }, { copies: 2 })
    liar = { node: liarNode, replicator: liarReplicator }

    nodes.push(ownerNode, holderNode, liarNode)
    for (const s of [ownerExchange, ownerReplicator, holderExchange, holderReplicator, liarExchange, liarReplicator]) {
      await s.start()
      services.push(s)
    }
    await ownerNode.dial(holderNode.getMultiaddrs()[0])
    await liarNode.dial(holderNode.getMultiaddrs()[0])

    root = (await capture({ blocks: ownerStore }, { peerId: ownerNode.peerId.toString(), name: 'owner', sources: [{ name: 'src', path: src }] })).root
    cids = []
    for await (const { cid } of manifestBlocks(ownerStore, root)) cids.push(cid)
  })

  after(async () => {
    for (const s of services.reverse()) await s.stop()
    await Promise.all(nodes.map(async n => { await n.stop() }))
    await fs.rm(dir, { recursive: true, force: true })
  })

  it('a holder offered blocks by an owner that lies about them stores and confirms none', async () => {
    const offered = cids.filter(c => c.code === RAW).slice(0, 5)
    assert.deepEqual(await liar.replicator.offer(holder.node.peerId.toString(), offered, {}), [])
    for (const cid of offered) assert.equal(await holder.blocks.has(cid), false)
    assert.equal(holder.puts, 0)
  })

  it('the holder pulls every block it lacks, checks and stores it, and confirms it to the owner', async () => {
    // the holder has one block already: it confirms it without pulling it again
    const first = await owner.blocks.get(cids[0])
    await holder.blocks.put(cids[0], first)
    const members = [owner.node.peerId.toString(), holder.node.peerId.toString()]
    const report = await owner.replicator.replicate(members[0], root, members)
    assert.deepEqual(report.failures, [])
    assert.equal(report.blocks, cids.length)
    assert.equal(report.copies, 2)
    assert.equal(holder.puts, cids.length - 1)
    for (const cid of cids) {
      assert.ok(Buffer.from(await holder.blocks.get(cid)).equals(Buffer.from(await owner.blocks.get(cid))), cid.toString())
    }
    // offered again, everything is confirmed and nothing is pulled
    assert.equal((await owner.replicator.offer(members[1], cids, {})).length, cids.length)
    assert.equal(holder.puts, cids.length - 1)
  })

  it('a holder with a bandwidth limit pulls no faster than the limit', async () => {
    const store = new FsBlockStore({ path: path.join(dir, 'slow') })
    await store.start()
    const slowNode = await node()
    nodes.push(slowNode)
    const exchange = new BlockExchange({ libp2p: slowNode, blocks: store })
    const rate = 10e6
    const replicator = new Replicator({ libp2p: slowNode, blocks: store, exchange }, { copies: 2, bytesPerSecond: rate })
    for (const s of [exchange, replicator]) {
      await s.start()
      services.push(s)
    }
    await owner.node.dial(slowNode.getMultiaddrs()[0])
    const sizes: number[] = []
    for (const cid of cids) sizes.push((await owner.blocks.get(cid)).byteLength)
    const started = Date.now()
    assert.equal((await owner.replicator.offer(slowNode.peerId.toString(), cids, {})).length, cids.length)
    // a limited holder asks for four blocks at a time, in the order offered, and waits before
    // each request for the bytes before it: only the last request's bytes are not waited for
    const waited = sizes.slice(0, -4).reduce((a, b) => a + b, 0)
    assert.ok(waited > 5e6, 'enough data to measure the limit')
    const elapsed = Date.now() - started
    assert.ok(elapsed >= waited / rate * 1000, `${waited} bytes went through in ${elapsed} ms`)
    for (const cid of cids) assert.equal(await store.has(cid), true)
  })

  it('blocks a holder could not get are not confirmed', async () => {
    const absent = cidForBytes(new TextEncoder().encode('the owner never had this'), RAW)
    const confirmed = await owner.replicator.offer(holder.node.peerId.toString(), [cids[1], absent], {})
    assert.deepEqual(confirmed.map(c => c.toString()), [cids[1].toString()])
    assert.equal(await holder.blocks.has(absent), false)
  })
})
