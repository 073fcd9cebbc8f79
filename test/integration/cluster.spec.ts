import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { LocalCluster, waitFor } from '../../scripts/cluster.js'
import { cli, describeTree, makeTree, tempDir } from './helpers.js'
import type { SnapshotView } from '../../src/admin/api.js'

describe('integration / discovery', function () {
  this.timeout(120_000)
  let dir: string
  let cluster: LocalCluster

  before(async () => {
    dir = await tempDir('discovery')
    cluster = new LocalCluster({ dir, agents: ['a1', 'a2', 'a3', 'a4', 'a5', 'a6'], topology: 'chain' })
    await cluster.start()
  })

  after(async () => {
    await cluster?.stop()
    await fs.rm(dir, { recursive: true, force: true })
  })

  it('six agents, each bootstrapped only from the previous one, all find each other through the DHT', async () => {
    for (const agent of cluster.agents) {
      const others = cluster.agents.filter(a => a !== agent).map(a => a.peerId).sort()
      await waitFor(`${agent.name} to know every other agent`, async () => {
        const peers = await agent.client.peers()
        const known = new Set(peers.map(p => p.peerId))
        return others.every(id => known.has(id))
      }, 60_000, 500)
    }
    const { code, stdout } = await cli(['--socket', cluster.agents[5].socket, 'peers', '--json'])
    assert.equal(code, 0)
    const peers = JSON.parse(stdout) as Array<{ peerId: string }>
    assert.ok(cluster.agents.slice(0, 5).every(a => peers.some(p => p.peerId === a.peerId)))
  })
})

describe('integration / snapshot and restore', function () {
  this.timeout(240_000)
  let dir: string
  let cluster: LocalCluster
  let first: SnapshotView

  before(async () => {
    dir = await tempDir('snapshot')
    cluster = new LocalCluster({ dir, agents: ['boot', 'n2', 'n3'], deadlineSeconds: 40 })
    for (const name of ['boot', 'n2', 'n3']) await makeTree(path.join(dir, name, 'files'), name)
    await cluster.start()
    for (const agent of cluster.agents) {
      await waitFor(`${agent.name} to see the others`, async () => (await agent.client.peers()).filter(p => p.connected).length >= 2, 30_000)
    }
  })

  after(async () => {
    await cluster?.stop()
    await fs.rm(dir, { recursive: true, force: true })
  })

  it('a snapshot started by a peer that is not the bootstrap node completes with every participant', async () => {
    const n3 = cluster.get('n3')
    const { code, stdout, stderr } = await cli(['--socket', n3.socket, 'snapshot', 'create', '--tag', 'first', '--wait', '--json'], { timeoutMs: 90_000 })
    assert.equal(code, 0, stderr)
    first = JSON.parse(stdout)
    assert.match(first.id, /^[0-9a-f]{64}$/)
    assert.equal(first.status, 'complete')
    assert.equal(first.tag, 'first')
    assert.equal(first.initiator, n3.peerId)
    assert.deepEqual(first.participants.map(p => p.peerId).sort(), cluster.agents.map(a => a.peerId).sort())
    for (const p of first.participants) {
      assert.equal(p.status, 'ok')
      assert.equal(p.name, cluster.agents.find(a => a.peerId === p.peerId)?.name)
      assert.ok(p.root != null && p.stats != null)
      assert.equal(p.stats.files, 6)
      assert.equal(p.stats.symlinks, 1)
    }
  })

  it('every agent lists the snapshot with the same status, and accepts an abbreviated ID', async () => {
    for (const agent of cluster.agents) {
      const snap = await waitFor(`${agent.name} to list it complete`, async () => {
        const list = await agent.client.listSnapshots()
        return list.find(s => s.id === first.id && s.status === 'complete')
      }, 30_000)
      assert.deepEqual(snap.participants.map(p => [p.peerId, p.root]).sort(), first.participants.map(p => [p.peerId, p.root]).sort())
      const { code, stdout } = await cli(['--socket', agent.socket, 'snapshot', 'show', first.id.slice(0, 8), '--json'])
      assert.equal(code, 0)
      assert.equal(JSON.parse(stdout).id, first.id)
    }
  })

  it('each participant\'s data restored on a different agent is byte-identical', async () => {
    const names = ['boot', 'n2', 'n3']
    for (let i = 0; i < names.length; i++) {
      const owner = cluster.get(names[i])
      const restorer = cluster.get(names[(i + 1) % names.length])
      const target = path.join(dir, `restore-${owner.name}-on-${restorer.name}`)
      const { code, stdout, stderr } = await cli(['--socket', restorer.socket, 'restore', first.id.slice(0, 10), '--node', owner.name, '--target', target, '--json'])
      assert.equal(code, 0, stderr)
      const result = JSON.parse(stdout)
      assert.equal(result.peerId, owner.peerId)
      assert.ok(result.blocksFetched > 0, 'blocks came over the network')
      assert.deepEqual(await describeTree(path.join(target, 'files')), await describeTree(owner.sourcesDir))
    }
  })

  it('a restore interrupted part way resumes without fetching again what it already wrote', async () => {
    const owner = cluster.get('n2')
    const restorer = cluster.get('n3')
    const target = path.join(dir, 'resume-n2')
    const full = await cli(['--socket', restorer.socket, 'restore', first.id, '--node', 'n2', '--target', target, '--json'])
    assert.equal(full.code, 0, full.stderr)
    const fullResult = JSON.parse(full.stdout)
    // what an interruption leaves: some files in place, one missing, a folder not yet made, and the
    // marker naming the restore under way (removed only once a restore completes)
    await fs.rm(path.join(target, 'files', 'docs', 'deep'), { recursive: true })
    const part = first.participants.find(p => p.peerId === owner.peerId)
    await fs.writeFile(path.join(target, '.snapmesh-restore'), JSON.stringify({ v: 1, root: part?.root, snapshot: first.id, peerId: owner.peerId }))
    const elsewhere = await cli(['--socket', restorer.socket, 'restore', first.id, '--node', 'n3', '--target', target, '--resume', '--json'])
    assert.notEqual(elsewhere.code, 0, 'resume continues only the restore of the same participant')
    assert.match(elsewhere.stderr, /cannot resume into .*: it holds an interrupted restore of snapshot [0-9a-f]{64} of participant/)
    const keptBefore = await fs.stat(path.join(target, 'files', 'docs', 'a.bin'))
    const again = await cli(['--socket', restorer.socket, 'restore', first.id, '--node', 'n2', '--target', target, '--json'])
    assert.notEqual(again.code, 0, 'a target with content is refused without --resume')
    const resumed = await cli(['--socket', restorer.socket, 'restore', first.id, '--node', 'n2', '--target', target, '--resume', '--json'])
    assert.equal(resumed.code, 0, resumed.stderr)
    const result = JSON.parse(resumed.stdout)
    assert.equal(result.filesKept, 4)
    // a kept file is not written again (same inode, unchanged ctime), and nothing is fetched that
    // the first restore did not (this agent may hold some of the blocks itself as a replica, so the
    // counts can be equal)
    const keptAfter = await fs.stat(path.join(target, 'files', 'docs', 'a.bin'))
    assert.equal(keptAfter.ino, keptBefore.ino)
    assert.equal(keptAfter.ctimeMs, keptBefore.ctimeMs)
    assert.ok(result.blocksFetched <= fullResult.blocksFetched, `${String(result.blocksFetched)} blocks fetched again, ${String(fullResult.blocksFetched)} the first time`)
    assert.deepEqual(await describeTree(path.join(target, 'files')), await describeTree(owner.sourcesDir))
    await assert.rejects(fs.access(path.join(target, '.snapmesh-restore')), 'the marker goes once the restore completes')
  })

  it('a node that joins after the snapshot lists and reads it', async () => {
    const late = await cluster.add({ name: 'late' })
    const snap = await waitFor('the late agent to learn the snapshot', async () => {
      return (await late.client.listSnapshots()).find(s => s.id === first.id)
    }, 60_000, 500)
    assert.equal(snap.status, 'complete')
    assert.equal(snap.participants.length, 3)
    const target = path.join(dir, 'restore-on-late')
    const { code, stderr } = await cli(['--socket', late.socket, 'restore', first.id, '--node', cluster.get('n2').peerId, '--target', target])
    assert.equal(code, 0, stderr)
    assert.deepEqual(await describeTree(path.join(target, 'files')), await describeTree(cluster.get('n2').sourcesDir))
  })

  it('a second snapshot after changing one file reads only that file', async () => {
    await fs.appendFile(path.join(cluster.get('n2').sourcesDir, 'docs', 'deep', 'er', 'c.txt'), 'changed')
    const { code, stdout, stderr } = await cli(['--socket', cluster.get('boot').socket, 'snapshot', 'create', '--wait', '--json'], { timeoutMs: 90_000 })
    assert.equal(code, 0, stderr)
    const second = JSON.parse(stdout) as SnapshotView
    assert.equal(second.status, 'complete')
    const byName = new Map(second.participants.map(p => [p.name, p]))
    assert.equal(byName.get('n2')?.stats?.filesRead, 1)
    assert.equal(byName.get('boot')?.stats?.filesRead, 0)
    assert.equal(byName.get('n3')?.stats?.filesRead, 0)
    assert.equal(byName.get('n2')?.stats?.filesReused, 5)
  })
})
