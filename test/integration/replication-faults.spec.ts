import assert from 'node:assert/strict'
import crypto from 'node:crypto'
import { createReadStream } from 'node:fs'
import fs from 'node:fs/promises'
import path from 'node:path'
import { CID } from 'multiformats/cid'
import { LocalCluster, waitFor } from '../../scripts/cluster.js'
import { chunkStream } from '../../src/capture/index.js'
import { holders } from '../../src/replication/placement.js'
import { RAW, cidForBytes } from '../../src/store/index.js'
import { cli, makeTree, tempDir } from './helpers.js'
import type { SnapshotView } from '../../src/admin/api.js'

/** every block file in an agent's store: how many, and which do not hash to their name */
async function checkStore (dataDir: string): Promise<{ blocks: number, bad: string[] }> {
  const root = path.join(dataDir, 'store', 'blocks')
  let blocks = 0
  const bad: string[] = []
  for (const shard of await fs.readdir(root).catch(() => [])) {
    for (const name of await fs.readdir(path.join(root, shard))) {
      let cid: CID
      try {
        cid = CID.parse(name)
      } catch {
        continue // a temporary file of an unfinished write: not a stored block
      }
      blocks++
      const digest = crypto.createHash('sha256').update(await fs.readFile(path.join(root, shard, name))).digest()
      if (!Buffer.from(cid.multihash.digest).equals(digest)) bad.push(name)
    }
  }
  return { blocks, bad }
}

/** the CIDs of the chunks a file is cut into, as capture cuts it */
async function chunkCids (file: string): Promise<string[]> {
  const out: string[] = []
  for await (const chunk of chunkStream(createReadStream(file))) out.push(cidForBytes(chunk, RAW).toString())
  return out
}

async function holdsCount (dataDir: string, cids: string[]): Promise<number> {
  let n = 0
  for (const cid of cids) {
    if (await fs.access(path.join(dataDir, 'store', 'blocks', cid.slice(-3, -1), cid)).then(() => true, () => false)) n++
  }
  return n
}

describe('integration / a holder killed while replication is in flight', function () {
  this.timeout(240_000)
  let dir: string
  let cluster: LocalCluster
  const names = ['f1', 'f2', 'f3', 'f4']

  before(async () => {
    dir = await tempDir('replication-faults')
    // a low pull rate keeps replication of f1's 48 MB going for seconds
    cluster = new LocalCluster({ dir, agents: names.map(name => ({ name, extra: { replication: { copies: 2, graceSeconds: 2, checkSeconds: 1, bandwidthMBps: 2 } } })), logToFiles: process.env.SNAPMESH_AGENT_DEBUG != null })
    for (const name of names) await makeTree(path.join(dir, name, 'files'), name)
    for (let i = 0; i < 3; i++) await fs.writeFile(path.join(dir, 'f1', 'files', `big-${i}.bin`), crypto.randomBytes(16 * 1024 * 1024))
    await cluster.start()
    for (const agent of cluster.agents) {
      await waitFor(`${agent.name} to see the others`, async () => (await agent.client.peers()).filter(p => p.connected).length >= 3, 30_000)
    }
  })

  after(async () => {
    await cluster?.stop()
    if (process.env.SNAPMESH_KEEP == null) await fs.rm(dir, { recursive: true, force: true })
  })

  it('no holder keeps a corrupt block and the owner\'s data gets back to two copies without it', async () => {
    const owner = cluster.get('f1')
    // the victim is the holder placement gives the most of f1's big chunks, so that it is still
    // receiving them when it is killed, whatever peer IDs this run drew
    const bigChunks: string[] = []
    for (let i = 0; i < 3; i++) bigChunks.push(...await chunkCids(path.join(dir, 'f1', 'files', `big-${i}.bin`)))
    const members = cluster.agents.map(a => a.peerId)
    const placed = new Map<string, string[]>()
    for (const cid of bigChunks) {
      const second = holders(CID.parse(cid), owner.peerId, members, 2)[1]
      placed.set(second, [...(placed.get(second) ?? []), cid])
    }
    const [victimId, victimChunks] = [...placed.entries()].sort((a, b) => b[1].length - a[1].length)[0]
    const victim = cluster.agents.find(a => a.peerId === victimId) as typeof owner
    assert.ok(victimChunks.length >= 8, `placement gives the busiest holder only ${victimChunks.length} chunks`)
    const created = await cli(['--socket', owner.socket, 'snapshot', 'create', '--wait', '--json'], { timeoutMs: 120_000 })
    assert.equal(created.code, 0, created.stderr + created.stdout)
    const snap = JSON.parse(created.stdout) as SnapshotView
    // the victim is receiving f1's blocks: some have arrived, the owner has not counted copies yet
    await waitFor(`${victim.name} to hold some of f1's chunks`, async () => await holdsCount(path.join(victim.dir, 'data'), victimChunks) >= 3, 60_000, 100)
    // the victim's own small part has its second copy (a part still only on a host that dies is
    // lost, and the snapshot could never be shown protected): what is in flight is f1's part
    await waitFor(`${victim.name} to count two copies of its own part`, async () => {
      const p = (await victim.client.getSnapshot(snap.id)).participants.find(x => x.peerId === victim.peerId)
      return p?.copies === 2
    }, 60_000, 100)
    assert.ok(await holdsCount(path.join(victim.dir, 'data'), victimChunks) < victimChunks.length, 'replication ended before the holder could be killed')
    const before = (await owner.client.getSnapshot(snap.id)).participants.find(p => p.peerId === owner.peerId)
    assert.equal(before?.copiesCountedAt, undefined, 'replication ended before the holder could be killed')
    await victim.kill()

    const left = await checkStore(path.join(victim.dir, 'data'))
    assert.ok(left.blocks > 0)
    assert.deepEqual(left.bad, [], 'a block file whose bytes do not match its CID')

    // after the grace period the owner places its part over the members that are left
    const mine = await waitFor('f1 to report two copies again', async () => {
      const p = (await owner.client.getSnapshot(snap.id)).participants.find(x => x.peerId === owner.peerId)
      return p?.copies === 2 && !(p.holders ?? []).includes(victim.peerId) ? p : undefined
    }, 120_000, 500)
    assert.ok(mine.holders?.includes(owner.peerId))
    const [watcher, checker] = cluster.agents.filter(a => a !== owner && a !== victim)
    const shown = await waitFor(`${watcher.name} to show the snapshot protected`, async () => {
      const v = await watcher.client.getSnapshot(snap.id)
      const p = v.participants.find(x => x.peerId === owner.peerId)
      return v.protected && p?.copies === 2 && !(p.holders ?? []).includes(victim.peerId) ? v : undefined
    }, 60_000, 500)
    assert.equal(shown.status, 'complete')
    const verified = await cli(['--socket', checker.socket, 'verify', snap.id, '--node', 'f1', '--read-data', '--json'], { timeoutMs: 120_000 })
    assert.equal(verified.code, 0, verified.stdout + verified.stderr)
    for (const a of cluster.agents.filter(x => x !== victim)) {
      assert.deepEqual((await checkStore(path.join(a.dir, 'data'))).bad, [], `${a.name} stores a corrupt block`)
    }
  })
})
