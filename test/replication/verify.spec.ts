import assert from 'node:assert/strict'
import crypto from 'node:crypto'
import { encodeDirPages, encodeNode } from '../../src/capture/index.js'
import { BlockExchange } from '../../src/exchange/index.js'
import type { SnapmeshNode } from '../../src/node/index.js'
import { Replicator, verifyCopies } from '../../src/replication/index.js'
import { placementFor } from '../../src/replication/takeover.js'
import { BlockNotFoundError, RAW, cidForBytes, verifyBlock } from '../../src/store/index.js'
import type { Entry } from '../../src/capture/index.js'
import type { BlockBytes, Blocks } from '../../src/store/index.js'
import type { CID } from 'multiformats/cid'
import { loopbackNode } from '../node/fixtures.js'

/**
 * Blocks in memory, with the store's contract: a put keeps the bytes, a get re-hashes them and
 * throws CorruptBlockError when they no longer match. Stands in for the store on disk, whose
 * fsyncs would make a part of hundreds of thousands of blocks too slow for a unit test.
 */
class MemoryBlocks implements Blocks {
  readonly map = new Map<string, Uint8Array>()
  async has (cid: CID): Promise<boolean> { return this.map.has(cid.toString()) }
  async get (cid: CID): Promise<Uint8Array> {
    const bytes = this.map.get(cid.toString())
    if (bytes == null) throw new BlockNotFoundError(`block ${cid.toString()} is not in the store`)
    verifyBlock(cid, bytes)
    return bytes
  }

  async put (cid: CID, bytes: BlockBytes): Promise<boolean> {
    const key = cid.toString()
    if (this.map.has(key)) return false
    this.map.set(key, bytes instanceof Uint8Array ? bytes : bytes.subarray())
    return true
  }

  async delete (cid: CID): Promise<void> { this.map.delete(cid.toString()) }
}

/** one part: a root over one folder of `files` one-chunk files, the chunks `extra` first, the others `<label> <i>` */
function part (store: MemoryBlocks, label: string, files: number, extra: Uint8Array[] = []): { root: CID, chunks: CID[] } {
  const chunks: CID[] = []
  const entries: Entry[] = []
  for (let i = 0; i < files; i++) {
    const bytes = extra[i] ?? Buffer.from(`${label} ${i}`)
    const cid = cidForBytes(bytes, RAW)
    store.map.set(cid.toString(), bytes)
    chunks.push(cid)
    entries.push({ name: `f${String(i).padStart(7, '0')}`, kind: 'file', mode: 0o644, mtimeMs: 0, size: bytes.byteLength, chunks: [[cid, bytes.byteLength]] })
  }
  const pages = encodeDirPages(entries)
  for (const p of pages) store.map.set(p.cid.toString(), p.bytes)
  const root = encodeNode({ v: 1, type: 'snapmesh/root', peerId: 'owner', name: 'owner', time: 0, sources: [{ name: 'files', path: '/files', dir: pages[pages.length - 1].cid }] })
  store.map.set(root.cid.toString(), root.bytes)
  return { root: root.cid, chunks }
}

describe('replication / replicating and verifying a part between two nodes', function () {
  this.timeout(60_000)
  const nodes: SnapmeshNode[] = []
  const services: Array<{ start: () => Promise<void>, stop: () => Promise<void> }> = []
  let owner: { id: string, blocks: MemoryBlocks, exchange: BlockExchange, replicator: Replicator }
  let holder: { id: string, blocks: MemoryBlocks }
  /** blocks the holder's exchange serves wrong bytes for, without noticing */
  const lies = new Set<string>()

  before(async () => {
    const ownerNode = await loopbackNode()
    const holderNode = await loopbackNode()
    nodes.push(ownerNode, holderNode)
    const ownerBlocks = new MemoryBlocks()
    const ownerExchange = new BlockExchange({ libp2p: ownerNode, blocks: ownerBlocks })
    owner = { id: ownerNode.peerId.toString(), blocks: ownerBlocks, exchange: ownerExchange, replicator: new Replicator({ libp2p: ownerNode, blocks: ownerBlocks, exchange: ownerExchange }, { copies: 2 }) }
    const holderBlocks = new MemoryBlocks()
    const served: Pick<Blocks, 'get' | 'has'> = {
      has: async (cid) => holderBlocks.has(cid),
      get: async (cid) => lies.has(cid.toString()) ? crypto.randomBytes((await holderBlocks.get(cid)).byteLength) : holderBlocks.get(cid)
    }
    const holderExchange = new BlockExchange({ libp2p: holderNode, blocks: served })
    holder = { id: holderNode.peerId.toString(), blocks: holderBlocks }
    services.push(ownerExchange, owner.replicator, holderExchange, new Replicator({ libp2p: holderNode, blocks: holderBlocks, exchange: holderExchange }, { copies: 2 }))
    for (const s of services) await s.start()
    await ownerNode.dial(holderNode.getMultiaddrs()[0])
  })

  after(async () => {
    for (const s of services.reverse()) await s.stop()
    await Promise.all(nodes.map(async n => { await n.stop() }))
  })

  const verify = async (root: CID, readData: boolean): ReturnType<typeof verifyCopies> => {
    const members = [owner.id, holder.id]
    return verifyCopies({ blocks: owner.blocks, exchange: owner.exchange, getter: owner.blocks }, { root, self: owner.id, holdersFor: placementFor(owner.id, members, 2), readData })
  }

  it('reports each bad copy at the holder once, and no good one, by proof of holding and by reading the data', async () => {
    // a block too large to be proven whole, then small ones; more than one request's worth
    const { root, chunks } = part(owner.blocks, 'small', 300, [crypto.randomBytes(200_000)])
    const report = await owner.replicator.replicate(owner.id, root, [owner.id, holder.id])
    assert.deepEqual(report.failures, [])
    assert.equal(report.copies, 2)
    const clean = await verify(root, false)
    assert.deepEqual(clean.problems, [])
    assert.equal(clean.blocks, 302)
    assert.equal(clean.copies, 604)

    const [large, , corrupt, gone, lied] = chunks
    const flip = (cid: CID): void => {
      const bytes = Uint8Array.from(holder.blocks.map.get(cid.toString()) as Uint8Array)
      bytes[0] ^= 1
      holder.blocks.map.set(cid.toString(), bytes)
    }
    flip(large)
    flip(corrupt)
    await holder.blocks.delete(gone)
    lies.add(lied.toString())
    const states = (r: Awaited<ReturnType<typeof verifyCopies>>): string[][] => r.problems.map(p => [p.holder, p.cid, p.path, p.state]).sort()
    const expected = (liedState: string): string[][] => [
      [holder.id, large.toString(), 'files/f0000000', 'corrupt'],
      [holder.id, corrupt.toString(), 'files/f0000002', 'corrupt'],
      [holder.id, gone.toString(), 'files/f0000003', 'missing'],
      [holder.id, lied.toString(), 'files/f0000004', liedState]
    ].sort()
    assert.deepEqual(states(await verify(root, false)), expected('unproven'))
    assert.deepEqual(states(await verify(root, true)), expected('corrupt'))
    lies.clear()
  })

  it('replicates and verifies a part of 200,000 blocks', async function () {
    this.timeout(300_000)
    const files = 200_000
    const { root } = part(owner.blocks, 'large', files)
    // the chunks, the folder's pages (2,000 entries each) and the root
    const blocks = files + files / 2000 + 1
    const before = holder.blocks.map.size
    const report = await owner.replicator.replicate(owner.id, root, [owner.id, holder.id])
    assert.deepEqual(report.failures, [])
    assert.equal(report.blocks, blocks)
    assert.equal(holder.blocks.map.size - before, blocks)
    assert.equal(report.copies, 2)
    assert.deepEqual(report.holders, [owner.id, holder.id].sort())
    const verified = await verify(root, false)
    assert.deepEqual(verified.problems, [])
    assert.equal(verified.blocks, blocks)
    assert.equal(verified.copies, 2 * blocks)
  })
})
