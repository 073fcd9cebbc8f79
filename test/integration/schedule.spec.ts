import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { LocalCluster, waitFor } from '../../scripts/cluster.js'
import { makeTree, tempDir } from './helpers.js'
import type { SnapshotView } from '../../src/admin/api.js'

describe('integration / scheduled and concurrent snapshots', function () {
  this.timeout(240_000)
  let dir: string
  let cluster: LocalCluster
  const names = ['s1', 's2', 's3']

  before(async () => {
    dir = await tempDir('schedule')
    cluster = new LocalCluster({
      dir,
      agents: names.map(name => ({ name, extra: { schedules: [{ name: 'every-5s', cron: '*/5 * * * * *' }], replication: { copies: 1 }, snapshot: { deadlineSeconds: 15 } } })),
      logToFiles: process.env.SNAPMESH_AGENT_DEBUG != null
    })
    for (const name of names) await makeTree(path.join(dir, name, 'files'), name)
    await cluster.start()
    for (const agent of cluster.agents) {
      await waitFor(`${agent.name} to see the others`, async () => (await agent.client.peers()).filter(p => p.connected).length >= 2, 30_000)
    }
  })

  after(async () => {
    await cluster?.stop()
    if (process.env.SNAPMESH_KEEP == null) await fs.rm(dir, { recursive: true, force: true })
  })

  it('every agent fires each slot and the firings make exactly one snapshot per slot, with every agent in it', async () => {
    const scheduled = async (name: string): Promise<SnapshotView[]> => (await cluster.get(name).client.listSnapshots()).filter(s => s.schedule === 'every-5s')
    // two slots after every agent saw the others: each has all three as participants
    const start = Date.now()
    const full = await waitFor('two complete slots with all three agents', async () => {
      const list = (await scheduled('s1')).filter(s => Date.parse(s.slot as string) > start && s.status === 'complete' && s.participants.length === 3)
      return list.length >= 2 ? list : undefined
    }, 60_000, 500)
    for (const snap of full.slice(0, 2)) {
      for (const name of names) {
        const there = await waitFor(`${name} to hold the slot ${snap.slot as string}`, async () => {
          const list = (await scheduled(name)).filter(s => s.slot === snap.slot)
          return list.length > 0 && list.every(s => s.status === 'complete' && s.participants.length === 3) ? list : undefined
        }, 30_000, 500)
        assert.equal(there.length, 1, `${name} holds ${there.length} snapshots for slot ${snap.slot as string}`)
        assert.equal(there[0].id, snap.id)
        assert.equal(there[0].tag, 'every-5s')
      }
    }
    // no slot ever has two snapshots, on any agent
    for (const name of names) {
      const slots = (await scheduled(name)).map(s => s.slot)
      assert.equal(new Set(slots).size, slots.length, `${name}: ${JSON.stringify(slots)}`)
    }
  })

  it('two snapshots started at the same moment by different agents both complete', async () => {
    const [x, y] = await Promise.all([cluster.get('s1').client.createSnapshot({ tag: 'by-s1' }), cluster.get('s3').client.createSnapshot({ tag: 'by-s3' })])
    assert.notEqual(x.id, y.id)
    for (const snap of [x, y]) {
      for (const name of names) {
        const done = await waitFor(`${name} to see ${snap.tag as string} complete`, async () => {
          const s = await cluster.get(name).client.getSnapshot(snap.id)
          return s.status !== 'running' ? s : undefined
        }, 60_000, 250)
        assert.equal(done.status, 'complete', JSON.stringify(done.reasons))
        assert.equal(done.participants.filter(p => p.status === 'ok').length, 3)
      }
    }
  })
})
