import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { BlockExchange, MAX_WANTS, RemoteBlockGetter, newChallenge, proveHolding } from '../../src/exchange/index.js'
import { createNode, type SnapmeshNode } from '../../src/node/index.js'
import { FsBlockStore, RAW, cidForBytes } from '../../src/store/index.js'
import type { Blocks } from '../../src/store/index.js'
import type { CID } from 'multiformats/cid'

async function node (): Promise<SnapmeshNode> {
  return createNode({
    privateKey: await generateKeyPair('Ed25519'),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    bootstrap: [],
    validators: {},
    selectors: {},
    maxMessageBytes: 64 * 1024,
    agentVersion: 'snapmesh/test'
  })
}

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
})
