// Faults during a snapshot, with real agent processes on 127.0.0.1: an initiator killed right after
// its marker, a participant killed in the middle of its capture, an agent that joins while a
// snapshot runs. Each must end in a definite status by the deadline, show nothing partial as
// complete and leave what was committed before intact. (Replays, clock skew and a full disk are
// in faults-env.spec.ts.)
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { LocalCluster, waitFor } from '../../scripts/cluster.js'
import { captures, checkStore, ended, loggedSource, meshed, randomFile } from './fixtures/faults-helpers.js'
import { cli, describeTree, makeTree, tempDir } from './helpers.js'
import type { SnapshotView } from '../../src/admin/api.js'

const keep = process.env.SNAPMESH_KEEP != null
const logs = process.env.SNAPMESH_AGENT_DEBUG != null

describe('integration / faults: the initiator killed right after its marker', function () {
  this.timeout(120_000)
  let dir: string
  let cluster: LocalCluster
  const names = ['k1', 'k2', 'k3']

  before(async () => {
    dir = await tempDir('faults-initiator')
    cluster = new LocalCluster({
      dir,
      agents: names.map(name => ({ name, sources: [loggedSource(path.join(dir, name))], extra: { snapshot: { deadlineSeconds: 12 }, replication: { copies: 1 } } })),
      logToFiles: logs
    })
    for (const name of names) await makeTree(path.join(dir, name, 'files'), name)
    await cluster.start()
    await meshed(cluster)
  })

  after(async () => {
    await cluster?.stop()
    if (!keep) await fs.rm(dir, { recursive: true, force: true })
  })

  it('the others capture and the snapshot ends partial, naming the initiator; restarted, the initiator lists it from the DHT and does not capture it', async () => {
    const [k1, k2, k3] = names.map(n => cluster.get(n))
    // k1's capture is held open by its pre hook, so it cannot have reported when it is killed
    await fs.writeFile(path.join(k1.dir, 'slow'), '')
    const created = await k1.client.createSnapshot({ tag: 'orphan' })
    await k1.kill()
    const k1Captures = await captures(k1)
    assert.ok(k1Captures <= 1)

    for (const agent of [k2, k3]) {
      const snap = await ended(agent, created.id, 40_000)
      assert.equal(snap.status, 'partial', JSON.stringify(snap))
      assert.equal(snap.initiator, k1.peerId)
      assert.deepEqual(snap.participants.map(p => [p.peerId, p.status]).sort(), [[k1.peerId, 'missing'], [k2.peerId, 'ok'], [k3.peerId, 'ok']].sort())
      assert.ok((snap.reasons ?? []).some(r => r.includes(k1.peerId) && /did not report/.test(r)), `no reason names the initiator: ${JSON.stringify(snap.reasons)}`)
      assert.equal(await captures(agent), 1, `${agent.name} captured the snapshot once`)
    }

    await fs.rm(path.join(k1.dir, 'slow'))
    await k1.start()
    // its catalog only held the snapshot as it started it: the others' results come from the DHT
    const there = await waitFor('the restarted initiator to list the snapshot with the others\' results', async () => {
      const s = (await k1.client.listSnapshots()).find(x => x.id === created.id)
      return s?.status === 'partial' && s.participants.filter(p => p.status === 'ok').length === 2 ? s : undefined
    }, 40_000, 500)
    assert.equal(there.participants.find(p => p.peerId === k1.peerId)?.status, 'missing')
    // a few sync rounds later it still has not captured it, and nobody shows a part of k1's
    await new Promise(resolve => setTimeout(resolve, 5000))
    assert.equal(await captures(k1), k1Captures, 'the restarted initiator captured the snapshot')
    for (const agent of [k1, k2, k3]) {
      const s = await agent.client.getSnapshot(created.id)
      assert.equal(s.status, 'partial')
      assert.equal(s.participants.find(p => p.peerId === k1.peerId)?.status, 'missing', `${agent.name}: ${JSON.stringify(s.participants)}`)
    }
  })
})

describe('integration / faults: a participant killed in the middle of its capture', function () {
  this.timeout(180_000)
  let dir: string
  let cluster: LocalCluster
  const names = ['p1', 'p2', 'p3']
  let first: SnapshotView

  before(async () => {
    dir = await tempDir('faults-participant')
    cluster = new LocalCluster({
      dir,
      agents: names.map(name => ({ name, extra: { snapshot: { deadlineSeconds: 15 }, replication: { copies: 1 } } })),
      logToFiles: logs
    })
    for (const name of names) await makeTree(path.join(dir, name, 'files'), name)
    await cluster.start()
    await meshed(cluster)
    first = await cluster.get('p1').client.createSnapshot({ tag: 'before' })
    first = await ended(cluster.get('p1'), first.id)
    assert.equal(first.status, 'complete', JSON.stringify(first))
  })

  after(async () => {
    await cluster?.stop()
    if (!keep) await fs.rm(dir, { recursive: true, force: true })
  })

  it('the snapshot ends partial naming it; restarted, its store is consistent, the earlier snapshot verifies and the next one completes', async () => {
    const [p1, p2, p3] = names.map(n => cluster.get(n))
    // a large new file keeps p3's capture busy for seconds
    await randomFile(path.join(p3.sourcesDir, 'big.bin'), 160 * 1024 * 1024)
    const before = (await checkStore(p3, { hash: false })).blocks
    const created = await p1.client.createSnapshot({ tag: 'victim' })
    await waitFor('p3 to be storing the large file', async () => (await checkStore(p3, { hash: false })).blocks >= before + 8, 30_000, 50)
    await p3.kill()
    const mid = await p1.client.getSnapshot(created.id)
    assert.equal(mid.participants.find(p => p.peerId === p3.peerId)?.status, 'pending', 'p3 had finished its capture before it was killed')

    for (const agent of [p1, p2]) {
      const snap = await ended(agent, created.id, 40_000)
      assert.equal(snap.status, 'partial', JSON.stringify(snap))
      assert.deepEqual(snap.participants.map(p => [p.name, p.status]).sort(), [['p1', 'ok'], ['p2', 'ok'], [p3.peerId.slice(-8), 'missing']].sort())
      assert.ok((snap.reasons ?? []).some(r => r.includes(p3.peerId)), `no reason names p3: ${JSON.stringify(snap.reasons)}`)
    }

    await p3.start()
    const store = await checkStore(p3)
    assert.deepEqual(store.other, [], 'files other than whole blocks are left in the store after the restart')
    assert.deepEqual(store.bad, [], 'blocks whose bytes do not hash to their CID')
    assert.ok(store.blocks > before, 'the blocks stored before the kill are kept')
    const verified = await cli(['--socket', p3.socket, 'verify', first.id, '--read-data', '--json'], { timeoutMs: 60_000 })
    assert.equal(verified.code, 0, verified.stdout + verified.stderr)
    assert.equal(JSON.parse(verified.stdout).ok, true)
    const known = await waitFor('p3 to list the interrupted snapshot', async () => {
      const s = (await p3.client.listSnapshots()).find(x => x.id === created.id)
      return s?.status === 'partial' ? s : undefined
    }, 30_000, 500)
    assert.equal(known.participants.find(p => p.peerId === p3.peerId)?.status, 'missing')

    await meshed(cluster)
    const next = await cli(['--socket', p2.socket, 'snapshot', 'create', '--wait', '--json'], { timeoutMs: 90_000 })
    assert.equal(next.code, 0, next.stdout + next.stderr)
    const snap = JSON.parse(next.stdout) as SnapshotView
    assert.equal(snap.status, 'complete')
    assert.equal(snap.participants.find(p => p.peerId === p3.peerId)?.status, 'ok')
    const target = path.join(dir, 'restore-p3')
    const restored = await cli(['--socket', p1.socket, 'restore', snap.id, '--node', 'p3', '--target', target, '--json'], { timeoutMs: 90_000 })
    assert.equal(restored.code, 0, restored.stderr)
    assert.deepEqual(await describeTree(path.join(target, 'files')), await describeTree(p3.sourcesDir))
  })
})

describe('integration / faults: an agent that joins while a snapshot runs', function () {
  this.timeout(120_000)
  let dir: string
  let cluster: LocalCluster
  const spec = (name: string): any => ({ name, sources: [loggedSource(path.join(dir, name))], extra: { snapshot: { deadlineSeconds: 20 }, replication: { copies: 1 } } })

  before(async () => {
    dir = await tempDir('faults-join')
    cluster = new LocalCluster({ dir, agents: [spec('j1'), spec('j2')], logToFiles: logs })
    for (const name of ['j1', 'j2', 'j3']) await makeTree(path.join(dir, name, 'files'), name)
    await cluster.start()
    await meshed(cluster)
  })

  after(async () => {
    await cluster?.stop()
    if (!keep) await fs.rm(dir, { recursive: true, force: true })
  })

  it('the running snapshot ends with its original participants, the joiner lists it, and the next snapshot includes the joiner', async () => {
    const [j1, j2] = [cluster.get('j1'), cluster.get('j2')]
    await fs.writeFile(path.join(j1.dir, 'slow'), '')
    const created = await j2.client.createSnapshot({ tag: 'during-join' })
    const j3 = await cluster.add(spec('j3'))
    assert.equal((await j2.client.getSnapshot(created.id)).status, 'running', 'the snapshot ended before the joiner was up')
    await fs.rm(path.join(j1.dir, 'slow'))

    for (const agent of [j1, j2]) {
      const snap = await ended(agent, created.id, 40_000)
      assert.equal(snap.status, 'complete', JSON.stringify(snap))
      const byPeer = new Map(snap.participants.map(p => [p.peerId, p.status]))
      assert.equal(byPeer.get(j1.peerId), 'ok')
      assert.equal(byPeer.get(j2.peerId), 'ok')
      // the joiner was not expected: at most an extra participant that reported on its own
      assert.ok([undefined, 'ok', 'error'].includes(byPeer.get(j3.peerId)), JSON.stringify(snap.participants))
      assert.ok(snap.participants.every(p => p.status === 'ok' || p.status === 'error'), JSON.stringify(snap.participants))
    }
    const seen = await waitFor('the joiner to list the snapshot', async () => {
      const s = (await j3.client.listSnapshots()).find(x => x.id === created.id)
      return s?.status === 'complete' ? s : undefined
    }, 40_000, 500)
    assert.equal(seen.participants.filter(p => p.status === 'ok' && (p.peerId === j1.peerId || p.peerId === j2.peerId)).length, 2)
    assert.ok((await captures(j3)) <= 1)

    await meshed(cluster)
    const next = await cli(['--socket', j1.socket, 'snapshot', 'create', '--wait', '--json'], { timeoutMs: 60_000 })
    assert.equal(next.code, 0, next.stdout + next.stderr)
    const snap = JSON.parse(next.stdout) as SnapshotView
    assert.equal(snap.status, 'complete')
    assert.deepEqual(snap.participants.map(p => [p.peerId, p.status]).sort(), [j1, j2, j3].map(a => [a.peerId, 'ok']).sort())
  })
})
