import assert from 'node:assert/strict'
import crypto from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { CID } from 'multiformats/cid'
import { LocalCluster, waitFor } from '../../scripts/cluster.js'
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

describe('integration / a holder killed while replication is in flight', function () {
  this.timeout(240_000)
  let dir: string
  let cluster: LocalCluster
  const names = ['f1', 'f2', 'f3', 'f4']

  before(async () => {
    dir = await tempDir('replication-faults')
    // a low pull rate keeps replication of f1's 48 MB going for seconds
    cluster = new LocalCluster({ dir, agents: names.map(name => ({ name, extra: { replication: { copies: 2, graceSeconds: 2, checkSeconds: 1, bandwidthMBps: 4 } } })), logToFiles: process.env.SNAPMESH_AGENT_DEBUG != null })
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
    const victim = cluster.get('f3')
    const created = await cli(['--socket', owner.socket, 'snapshot', 'create', '--wait', '--json'], { timeoutMs: 120_000 })
    assert.equal(created.code, 0, created.stderr + created.stdout)
    const snap = JSON.parse(created.stdout) as SnapshotView
    // the victim is receiving f1's blocks: some have arrived, the owner has not counted copies yet
    await waitFor('f3 to hold some of f1\'s blocks', async () => (await checkStore(path.join(victim.dir, 'data'))).blocks > 30, 30_000, 100)
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
    const shown = await waitFor('f2 to show the snapshot protected', async () => {
      const v = await cluster.get('f2').client.getSnapshot(snap.id)
      const p = v.participants.find(x => x.peerId === owner.peerId)
      return v.protected && p?.copies === 2 && !(p.holders ?? []).includes(victim.peerId) ? v : undefined
    }, 60_000, 500)
    assert.equal(shown.status, 'complete')
    const verified = await cli(['--socket', cluster.get('f4').socket, 'verify', snap.id, '--node', 'f1', '--read-data', '--json'], { timeoutMs: 120_000 })
    assert.equal(verified.code, 0, verified.stdout + verified.stderr)
    for (const a of cluster.agents.filter(x => x !== victim)) {
      assert.deepEqual((await checkStore(path.join(a.dir, 'data'))).bad, [], `${a.name} stores a corrupt block`)
    }
  })
})
