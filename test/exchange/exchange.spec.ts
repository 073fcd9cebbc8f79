import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import * as dagCbor from '@ipld/dag-cbor'
import { lpStream } from 'it-length-prefixed-stream'
import { BlockExchange, MAX_WANTS, RemoteBlockGetter, newChallenge, proveHolding } from '../../src/exchange/index.js'
import { BLOCKS_PROTOCOL, BLOCKS_SESSION_PROTOCOL, type SnapmeshNode } from '../../src/node/index.js'
import { FsBlockStore, RAW, cidForBytes } from '../../src/store/index.js'
import type { Blocks } from '../../src/store/index.js'
import type { CID } from 'multiformats/cid'
import { loopbackNode } from '../node/fixtures.js'

const node = loopbackNode

/** a holder that answers with other bytes than the ones asked for */
class LyingStore implements Pick<Blocks, 'get' | 'has'> {
  async has (): Promise<boolean> { return true }
  async get (): Promise<Uint8Array> { return new TextEncoder().encode('not what you asked for') }
}

describe('exchange / block exchange over loopback', function () {
  this.timeout(30_000)
  let dir: string
  const nodes: SnapmeshNode[] = []
  const exchanges: BlockExchange[] = []
  let honest: SnapmeshNode
  let liar: SnapmeshNode
  let asker: SnapmeshNode
  let askerStore: FsBlockStore
  let honestStore: FsBlockStore
  let askerExchange: BlockExchange
  const block = new Uint8Array(3 * 1024 * 1024).map((_, i) => (i * 31) & 0xff)
  let cid: CID

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'snapmesh-exchange-'))
    cid = cidForBytes(block, RAW)
    honestStore = new FsBlockStore({ path: path.join(dir, 'honest') })
    await honestStore.start()
    await honestStore.put(cid, block)
    askerStore = new FsBlockStore({ path: path.join(dir, 'asker') })
    await askerStore.start()
    honest = await node()
    liar = await node()
    asker = await node()
    nodes.push(honest, liar, asker)
    exchanges.push(new BlockExchange({ libp2p: honest, blocks: honestStore }), new BlockExchange({ libp2p: liar, blocks: new LyingStore() }))
    askerExchange = new BlockExchange({ libp2p: asker, blocks: askerStore }, { timeoutMs: 5000 })
    exchanges.push(askerExchange)
    for (const e of exchanges) await e.start()
    await asker.dial(honest.getMultiaddrs()[0])
    await asker.dial(liar.getMultiaddrs()[0])
  })

  after(async () => {
    for (const e of exchanges) await e.stop()
    await Promise.all(nodes.map(async n => { await n.stop() }))
    await fs.rm(dir, { recursive: true, force: true })
  })

  it('fetches a verified block and reports a missing one as missing', async () => {
    const absent = cidForBytes(new Uint8Array([9, 9, 9]), RAW)
    const [got, none] = await askerExchange.fetch(honest.peerId, [cid, absent])
    assert.deepEqual(got, block)
    assert.equal(none, undefined)
  })

  it('detects a holder that sends wrong bytes and takes the block from the next holder', async () => {
    await assert.rejects(askerExchange.fetch(liar.peerId, [cid]), (err: any) => err.code === 'ERR_CORRUPT_BLOCK' && err.message.includes(cid.toString()))
    const getter = new RemoteBlockGetter({ blocks: askerStore, exchange: askerExchange }, { holders: [liar.peerId.toString(), honest.peerId.toString()] })
    assert.deepEqual(await getter.get(cid), block)
    assert.equal(getter.blocksFetched, 1)
  })

  it('names every holder it tried when no one has an intact copy', async () => {
    const getter = new RemoteBlockGetter({ blocks: askerStore, exchange: askerExchange }, { holders: [liar.peerId.toString()] })
    await assert.rejects(getter.get(cid), (err: any) => err.code === 'ERR_BLOCK_UNAVAILABLE' && err.message.includes(liar.peerId.toString()))
  })

  it('a holder re-reads its copies on request and reports them intact, missing or corrupt', async () => {
    const absent = cidForBytes(new Uint8Array([7]), RAW)
    assert.deepEqual((await askerExchange.check(honest.peerId, [cid, absent])).map(a => a.state), ['ok', 'missing'])
    const file = honestStore.pathFor(cid)
    const bytes = await fs.readFile(file)
    bytes[10] ^= 1
    await fs.writeFile(file, bytes)
    assert.deepEqual((await askerExchange.check(honest.peerId, [cid])).map(a => a.state), ['corrupt'])
    bytes[10] ^= 1
    await fs.writeFile(file, bytes)
  })

  it('a holder proves it holds a block over random ranges; one that does not hold the right bytes cannot', async () => {
    const challenge = newChallenge(block.byteLength)
    const [good] = await askerExchange.check(honest.peerId, [cid], { challenge })
    assert.equal(good.state, 'ok')
    assert.ok(Buffer.from(good.proof as Uint8Array).equals(Buffer.from(proveHolding(block, challenge))))
    // a fresh nonce gives a different proof: an old answer cannot be replayed
    const other = newChallenge(block.byteLength)
    assert.ok(!Buffer.from(proveHolding(block, other)).equals(Buffer.from(good.proof as Uint8Array)))
    // the liar says it has the block, but its proof is over other bytes
    const [lie] = await askerExchange.check(liar.peerId, [cid], { challenge })
    assert.ok(lie.proof == null || !Buffer.from(lie.proof).equals(Buffer.from(proveHolding(block, challenge))))
  })

  it('refuses requests larger than the protocol allows', async () => {
    const many = Array.from({ length: MAX_WANTS + 1 }, (_, i) => cidForBytes(new Uint8Array([i]), RAW))
    await assert.rejects(askerExchange.fetch(honest.peerId, many), /at most 64 CIDs/)
  })

  /** blocks of several sizes in the honest holder's store, a few absent from it */
  async function someBlocks (n: number): Promise<Array<{ cid: CID, bytes: Uint8Array, stored: boolean }>> {
    const out = []
    for (let i = 0; i < n; i++) {
      const bytes = new Uint8Array(1000 + i * 37_000).map((_, j) => (i * 13 + j * 7) & 0xff)
      const stored = i % 5 !== 4
      const cid = cidForBytes(bytes, RAW)
      if (stored) await honestStore.put(cid, bytes)
      out.push({ cid, bytes, stored })
    }
    return out
  }

  it('hands each block of a request to the consumer as it arrives, in order, checked against its CID', async () => {
    const blocks = await someBlocks(20)
    const seen: number[] = []
    await askerExchange.fetchEach(honest.peerId, blocks.map(b => b.cid), async (i, got) => {
      seen.push(i)
      if (blocks[i].stored) {
        assert.ok(got != null)
        assert.ok(Buffer.from(got.subarray()).equals(Buffer.from(blocks[i].bytes)))
      } else {
        assert.equal(got, undefined)
      }
      // a slow consumer only slows the transfer down
      await new Promise(resolve => setTimeout(resolve, 5))
    })
    assert.deepEqual(seen, blocks.map((_, i) => i))
    await assert.rejects(askerExchange.fetchEach(liar.peerId, [cid], () => {}), (err: any) => err.code === 'ERR_CORRUPT_BLOCK')
  })

  it('answers many wants to one holder at once, each with its own block, over one stream', async () => {
    const blocks = await someBlocks(30)
    const got = await Promise.all(blocks.map(async b => askerExchange.want(honest.peerId.toString(), b.cid)))
    for (const [i, b] of blocks.entries()) {
      if (b.stored) assert.ok(Buffer.from(got[i] as Uint8Array).equals(Buffer.from(b.bytes)), `block ${i}`)
      else assert.equal(got[i], undefined)
    }
    const sessions = asker.getConnections(honest.peerId).flatMap(c => c.streams).filter(s => s.protocol === BLOCKS_SESSION_PROTOCOL)
    assert.equal(sessions.length, 1)
  })

  it('a want the caller gives up on leaves the other wants on the stream alone', async () => {
    const blocks = (await someBlocks(10)).filter(b => b.stored)
    const controller = new AbortController()
    const given = askerExchange.want(honest.peerId, blocks[1].cid, { signal: controller.signal })
    const others = blocks.filter((_, i) => i !== 1).map(async b => askerExchange.want(honest.peerId, b.cid))
    controller.abort(new Error('not needed any more'))
    await assert.rejects(given, /not needed any more/)
    const got = await Promise.all(others)
    assert.deepEqual(got.map(g => Buffer.from(g as Uint8Array).toString('hex')), blocks.filter((_, i) => i !== 1).map(b => Buffer.from(b.bytes).toString('hex')))
  })

  it('a corrupt copy fails only its own want; the wants after it on the stream get their blocks', async () => {
    const [bad, good] = (await someBlocks(4)).filter(b => b.stored)
    const file = honestStore.pathFor(bad.cid)
    const bytes = await fs.readFile(file)
    bytes[0] ^= 1
    await fs.chmod(file, 0o644)
    await fs.writeFile(file, bytes)
    const [first, second] = await Promise.allSettled([askerExchange.want(honest.peerId, bad.cid), askerExchange.want(honest.peerId, good.cid)])
    assert.equal(first.status, 'rejected')
    assert.equal((first as PromiseRejectedResult).reason.code, 'ERR_CORRUPT_BLOCK')
    assert.equal(second.status, 'fulfilled')
    assert.ok(Buffer.from((second as PromiseFulfilledResult<Uint8Array>).value).equals(Buffer.from(good.bytes)))
    // the holder quarantined its bad copy: it is missing now
    assert.equal(await askerExchange.want(honest.peerId, bad.cid), undefined)
  })

  it('a request that is not dag-cbor gets the stream reset, and the holder goes on serving', async () => {
    const stream = await asker.dialProtocol(honest.peerId, BLOCKS_PROTOCOL)
    const lp = lpStream(stream)
    await lp.write(new TextEncoder().encode('this is not a CID list'))
    await assert.rejects(lp.read({ signal: AbortSignal.timeout(5000) }))
    stream.abort(new Error('done'))
    const [got] = await askerExchange.fetch(honest.peerId, [cid])
    assert.deepEqual(got, block)
  })

  it('an asker may send several requests on one session stream and gets them answered in turn', async () => {
    const blocks = (await someBlocks(6)).filter(b => b.stored)
    const stream = await asker.dialProtocol(honest.peerId, BLOCKS_SESSION_PROTOCOL)
    const lp = lpStream(stream, { maxDataLength: 8 * 1024 * 1024 })
    await lp.write(dagCbor.encode(blocks.slice(0, 2).map(b => b.cid)))
    await lp.write(dagCbor.encode(blocks.slice(2).map(b => b.cid)))
    for (const b of blocks) {
      const frame = (await lp.read({ signal: AbortSignal.timeout(5000) })).subarray()
      assert.equal(frame[0], 0)
      assert.ok(Buffer.from(frame.subarray(1)).equals(Buffer.from(b.bytes)))
    }
    await stream.close()
  })
})
