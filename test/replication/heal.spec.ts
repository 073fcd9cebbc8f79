import assert from 'node:assert/strict'
import crypto from 'node:crypto'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { BlockExchange, RemoteBlockGetter } from '../../src/exchange/index.js'
import type { SnapmeshNode } from '../../src/node/index.js'
import { BlockHealer } from '../../src/replication/heal.js'
import { CorruptBlockError, FsBlockStore, RAW, cidForBytes } from '../../src/store/index.js'
import type { Blocks } from '../../src/store/index.js'
import type { CID } from 'multiformats/cid'
import { loopbackNode } from '../node/fixtures.js'

const node = loopbackNode

/** a member that says it has every block and serves other bytes */
class LyingStore implements Pick<Blocks, 'get' | 'has'> {
  async has (): Promise<boolean> { return true }
  async get (): Promise<Uint8Array> { return crypto.randomBytes(1000) }
}

async function flipByte (file: string): Promise<void> {
  const bytes = await fs.readFile(file)
  bytes[bytes.length >> 1] ^= 0x40
  await fs.chmod(file, 0o644)
  await fs.writeFile(file, bytes)
}

async function waitUntil (what: string, check: () => boolean, ms = 10_000): Promise<void> {
  const until = Date.now() + ms
  while (!check()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

describe('replication / replacing quarantined blocks', function () {
  this.timeout(30_000)
  let dir: string
  const nodes: SnapmeshNode[] = []
  const exchanges: BlockExchange[] = []
  let good: FsBlockStore
  let mine: FsBlockStore
  let healer: BlockHealer | undefined
  let myExchange: BlockExchange
  let goodNode: SnapmeshNode
  let liarNode: SnapmeshNode
  let fetches = 0
  /** holders the healer asks, in order */
  let holders: () => string[]

  const blocks = Array.from({ length: 4 }, (_, i) => crypto.randomBytes(200_000 + i))
  const cids = blocks.map(b => cidForBytes(b, RAW))

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'snapmesh-heal-'))
    good = new FsBlockStore({ path: path.join(dir, 'good') })
    await good.start()
    mine = new FsBlockStore({ path: path.join(dir, 'mine'), onCorrupt: (cid) => { healer?.corrupt(cid) } })
    await mine.start()
    for (let i = 0; i < blocks.length; i++) {
      await good.put(cids[i], blocks[i])
      await mine.put(cids[i], blocks[i])
    }
    goodNode = await node()
    liarNode = await node()
    const myNode = await node()
    nodes.push(goodNode, liarNode, myNode)
    myExchange = new BlockExchange({ libp2p: myNode, blocks: mine }, { timeoutMs: 5000 })
    exchanges.push(new BlockExchange({ libp2p: goodNode, blocks: good }), new BlockExchange({ libp2p: liarNode, blocks: new LyingStore() }), myExchange)
    for (const e of exchanges) await e.start()
    await myNode.dial(goodNode.getMultiaddrs()[0])
    await myNode.dial(liarNode.getMultiaddrs()[0])
    holders = () => [liarNode.peerId.toString(), goodNode.peerId.toString()]
  })

  beforeEach(async () => {
    fetches = 0
    healer = new BlockHealer({
      blocks: mine,
      fetch: async (cid: CID, options) => {
        fetches++
        return new RemoteBlockGetter({ blocks: mine, exchange: myExchange }, { holders: holders() }).get(cid, options)
      }
    }, { retryDelaysMs: [50, 50] })
    await healer.start()
  })

  afterEach(async () => {
    await healer?.stop()
    healer = undefined
  })

  after(async () => {
    for (const e of exchanges) await e.stop()
    await Promise.all(nodes.map(async n => { await n.stop() }))
    await fs.rm(dir, { recursive: true, force: true })
  })

  it('a block a read finds corrupt is quarantined and replaced with a verified copy from another member', async () => {
    await flipByte(mine.pathFor(cids[0]))
    await assert.rejects(mine.get(cids[0]), (err: any) => err instanceof CorruptBlockError && err.message.includes('quarantine'))
    // the liar is asked first: its bytes do not match the CID, so the good member's copy is taken
    await waitUntil('the block to be replaced', () => healer?.stats().replaced === 1)
    assert.deepEqual(await mine.get(cids[0]), blocks[0])
    assert.deepEqual(healer?.stats(), { quarantined: 1, replaced: 1, failed: 0, pending: 0 })
    const kept = await fs.readdir(path.join(dir, 'mine', 'quarantine'))
    assert.ok(kept.some(name => name.startsWith(cids[0].toString())), 'the damaged bytes stay in quarantine/')
  })

  it('the same block found corrupt by several reads at once is fetched once', async () => {
    await flipByte(mine.pathFor(cids[1]))
    const reads = await Promise.allSettled([mine.get(cids[1]), mine.get(cids[1]), mine.get(cids[1])])
    assert.ok(reads.every(r => r.status === 'rejected'))
    healer?.corrupt(cids[1])
    await waitUntil('the block to be replaced', () => healer?.stats().pending === 0)
    assert.equal(fetches, 1)
    assert.deepEqual(await mine.get(cids[1]), blocks[1])
  })

  it('a block no member can supply yet is tried again, and replaced once a member has it', async () => {
    await good.delete(cids[2])
    await flipByte(mine.pathFor(cids[2]))
    await assert.rejects(mine.get(cids[2]), CorruptBlockError)
    await waitUntil('a first failed try', () => fetches >= 1)
    await good.put(cids[2], blocks[2])
    await waitUntil('the block to be replaced', () => healer?.stats().replaced === 1)
    assert.ok(fetches >= 2)
    assert.deepEqual(await mine.get(cids[2]), blocks[2])
  })

  it('after its last try a block nobody has is counted as failed, and nothing is stored for it', async () => {
    await good.delete(cids[3])
    await flipByte(mine.pathFor(cids[3]))
    await assert.rejects(mine.get(cids[3]), CorruptBlockError)
    await waitUntil('the healer to give up', () => healer?.stats().failed === 1)
    assert.equal(fetches, 3, 'the first try and the two retries')
    assert.deepEqual(healer?.stats(), { quarantined: 1, replaced: 0, failed: 1, pending: 0 })
    assert.equal(await mine.has(cids[3]), false)
  })

  it('stop cancels the retries still waiting', async () => {
    await good.delete(cids[0])
    await flipByte(mine.pathFor(cids[0]))
    await assert.rejects(mine.get(cids[0]), CorruptBlockError)
    await waitUntil('a first failed try', () => fetches >= 1)
    await healer?.stop()
    const before = fetches
    await new Promise(resolve => setTimeout(resolve, 200))
    assert.equal(fetches, before)
    assert.equal(healer?.stats().pending, 0)
  })
})
