// Bounds on what a peer claims, with real agents and a real rogue libp2p node: messages dated far
// ahead of the receivers' clocks are rejected, a barrier marker asking for an hour-long freeze is
// held to each host's own cap, and a frozen host thaws on time while a long capture holds its queue.
import assert from 'node:assert/strict'
import crypto from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import { CID } from 'multiformats/cid'
import { LocalCluster, waitFor } from '../../scripts/cluster.js'
import { COPIES_TOPIC, FORGET_TOPIC, encodeCopyReport, encodeForgetNotice, selectors, signCopyReport, signForgetNotice } from '../../src/metadata/index.js'
import { createNode, type SnapmeshNode } from '../../src/node/index.js'
import { SNAPSHOT_TOPIC, encodeMarker, type Marker } from '../../src/snapshot/index.js'
import { ended, meshed } from './fixtures/faults-helpers.js'
import { makeTree, tempDir } from './helpers.js'
import type { PrivateKey } from '@libp2p/interface'

const keep = process.env.SNAPMESH_KEEP != null
const DAY = 24 * 3600_000

async function rogueNode (key: PrivateKey, cluster: LocalCluster): Promise<SnapmeshNode> {
  const node = await createNode({
    privateKey: key,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    bootstrap: [],
    validators: { 'snapmesh-snap': async () => {}, 'snapmesh-head': async () => {} },
    selectors,
    maxMessageBytes: 1024 * 1024,
    agentVersion: 'snapmesh-test/0 (rogue)'
  })
  for (const topic of [SNAPSHOT_TOPIC, COPIES_TOPIC, FORGET_TOPIC]) node.services.pubsub.subscribe(topic)
  for (const a of cluster.agents) await node.dial(multiaddr(a.dialAddress()))
  await waitFor('the agents to see the rogue node on every topic', async () => [SNAPSHOT_TOPIC, COPIES_TOPIC, FORGET_TOPIC].every(t => {
    const subs = node.services.pubsub.getSubscribers(t).map(String)
    return cluster.agents.every(a => subs.includes(a.peerId))
  }))
  return node
}

describe('integration / bounds: claims dated ahead of the receiver\'s clock', function () {
  this.timeout(120_000)
  let dir: string
  let cluster: LocalCluster
  let rogue: SnapmeshNode
  let rogueKey: PrivateKey

  before(async () => {
    dir = await tempDir('bounds-time')
    cluster = new LocalCluster({ dir, agents: ['t1', 't2'].map(name => ({ name, extra: { snapshot: { deadlineSeconds: 10 }, replication: { copies: 2 } } })) })
    for (const name of ['t1', 't2']) await makeTree(path.join(dir, name, 'files'), name)
    await cluster.start()
    await meshed(cluster)
    rogueKey = await generateKeyPair('Ed25519')
    rogue = await rogueNode(rogueKey, cluster)
  })

  after(async () => {
    await rogue?.stop()
    await cluster?.stop()
    if (!keep) await fs.rm(dir, { recursive: true, force: true })
  })

  it('a marker dated a day ahead is never captured; a marker of now, sent after it, is', async () => {
    const rogueId = rogue.peerId.toString()
    const expected = [rogueId, ...cluster.agents.map(a => a.peerId)].sort()
    const now = Date.now()
    const ahead: Marker = { v: 1, type: 'marker', id: crypto.randomBytes(32).toString('hex'), initiator: rogueId, lamport: 50, startedAt: now + DAY, deadline: now + DAY + 10_000, expected, consistency: 'marker', tag: 'ahead' }
    const control: Marker = { v: 1, type: 'marker', id: crypto.randomBytes(32).toString('hex'), initiator: rogueId, lamport: 51, startedAt: now, deadline: now + 4_000, expected, consistency: 'marker', tag: 'control' }
    await rogue.services.pubsub.publish(SNAPSHOT_TOPIC, encodeMarker(ahead))
    await rogue.services.pubsub.publish(SNAPSHOT_TOPIC, encodeMarker(control))
    for (const a of cluster.agents) {
      const s = await ended(a, control.id, 30_000)
      assert.equal(s.status, 'partial', `${a.name}: the control marker was captured, only the rogue never answered`)
      assert.deepEqual((await a.client.listSnapshots()).filter(x => x.id === ahead.id), [], `${a.name} took the marker dated a day ahead`)
    }
  })

  it('a copy report and a forget notice dated a day ahead are refused; the same sent with the time of now are taken', async () => {
    const t1 = cluster.get('t1')
    const first = await ended(t1, (await t1.client.createSnapshot({ tag: 'first' })).id)
    const second = await ended(t1, (await t1.client.createSnapshot({ tag: 'second' })).id)
    assert.equal(first.status, 'complete')
    const part = await waitFor('t1 to count the copies of its part', async () => {
      const p = (await t1.client.getSnapshot(first.id)).participants.find(x => x.peerId === t1.peerId)
      return p?.copiesCountedBy != null ? p : undefined
    }, 30_000, 250)
    const rogueId = rogue.peerId.toString()
    const report = async (time: number, copies: number): Promise<Uint8Array> => encodeCopyReport(await signCopyReport(rogueKey, {
      id: first.id, owner: t1.peerId, root: CID.parse(part.root ?? ''), reporter: rogueId, time, blocks: 1, copies, wanted: 2, holders: [t1.peerId, rogueId]
    }))
    // a report dated a day ahead would stand as the newest for good; then one of now, as control
    const futureTime = Date.now() + DAY
    await rogue.services.pubsub.publish(COPIES_TOPIC, await report(futureTime, 1))
    const controlTime = Date.now()
    await rogue.services.pubsub.publish(COPIES_TOPIC, await report(controlTime, 2))
    for (const a of cluster.agents) {
      const p = await waitFor(`${a.name} to take the control report`, async () => {
        const x = (await a.client.getSnapshot(first.id)).participants.find(y => y.peerId === t1.peerId)
        return x?.copiesCountedBy === rogueId ? x : undefined
      }, 30_000, 250)
      assert.equal(p.copiesCountedAt, new Date(controlTime).toISOString(), `${a.name} holds the report dated ahead`)
    }

    // forget: the notice dated ahead changes nothing; the control forgets the second snapshot
    await rogue.services.pubsub.publish(FORGET_TOPIC, encodeForgetNotice(await signForgetNotice(rogueKey, { id: first.id, by: rogueId, time: Date.now() + DAY, prune: false })))
    await rogue.services.pubsub.publish(FORGET_TOPIC, encodeForgetNotice(await signForgetNotice(rogueKey, { id: second.id, by: rogueId, time: Date.now(), prune: false })))
    for (const a of cluster.agents) {
      await waitFor(`${a.name} to forget the second snapshot`, async () => !(await a.client.listSnapshots()).some(s => s.id === second.id), 30_000, 250)
      assert.ok((await a.client.listSnapshots()).some(s => s.id === first.id), `${a.name} forgot a snapshot on a notice dated a day ahead`)
    }
  })
})

describe('integration / bounds: how long a barrier marker can freeze a host', function () {
  this.timeout(150_000)
  let dir: string
  let cluster: LocalCluster
  let rogue: SnapmeshNode
  const names = ['b1', 'b2']

  before(async () => {
    dir = await tempDir('bounds-freeze')
    cluster = new LocalCluster({
      dir,
      agents: names.map(name => ({
        name,
        sources: [
          { name: 'files', path: './files', pre: { command: 'echo freeze >> hooks.log' }, post: { command: 'echo thaw >> hooks.log' } },
          // holds its capture open while the file `slow` exists in the agent's folder (25 s at most)
          { name: 'dump', command: 'i=0; while [ -e slow ] && [ $i -lt 250 ]; do sleep 0.1; i=$((i+1)); done; echo data' }
        ],
        extra: { snapshot: { deadlineSeconds: 30, prepareTimeoutSeconds: 1, maxPrepareTimeoutSeconds: 2, maxFreezeSeconds: 4 }, replication: { copies: 1 } }
      }))
    })
    for (const name of names) await makeTree(path.join(dir, name, 'files'), name)
    await cluster.start()
    await meshed(cluster)
    rogue = await rogueNode(await generateKeyPair('Ed25519'), cluster)
  })

  after(async () => {
    for (const name of names) await fs.rm(path.join(dir, name, 'slow'), { force: true })
    await rogue?.stop()
    await cluster?.stop()
    if (!keep) await fs.rm(dir, { recursive: true, force: true })
  })

  const hooks = async (name: string): Promise<string[]> => (await fs.readFile(path.join(dir, name, 'hooks.log'), 'utf8').catch(() => '')).split('\n').filter(Boolean)

  it('a marker asking for an hour of prepare freezes each host for its own cap of 2 s, then every host thaws', async () => {
    const rogueId = rogue.peerId.toString()
    const now = Date.now()
    const m: Marker = { v: 1, type: 'marker', id: crypto.randomBytes(32).toString('hex'), initiator: rogueId, lamport: 70, startedAt: now, deadline: now + 12_000, expected: [rogueId, ...cluster.agents.map(a => a.peerId)].sort(), consistency: 'barrier', prepareTimeoutMs: 3600_000, tag: 'hour' }
    const before = await Promise.all(names.map(hooks))
    await rogue.services.pubsub.publish(SNAPSHOT_TOPIC, encodeMarker(m))
    for (const a of cluster.agents) {
      // frozen: the control that the marker arrived and was acted on
      await waitFor(`${a.name} to freeze`, async () => (await a.client.status()).frozenFor?.includes(m.id) === true, 10_000, 50)
    }
    const frozenAt = Date.now()
    for (const [i, a] of cluster.agents.entries()) {
      await waitFor(`${a.name} to thaw`, async () => (await a.client.status()).frozenFor?.length === 0, 15_000, 100)
      await waitFor(`${a.name} to run its post hook`, async () => (await hooks(a.name)).length >= before[i].length + 2, 10_000, 100)
      assert.ok(Date.now() - frozenAt < 10_000, `${a.name} stayed frozen ${Date.now() - frozenAt} ms`)
      assert.deepEqual((await hooks(a.name)).slice(before[i].length), ['freeze', 'thaw'])
    }
    const s = await ended(cluster.get('b1'), m.id, 20_000)
    assert.equal(s.status, 'failed')
    assert.ok((s.reasons ?? []).some(r => /gave up after 2000 ms/.test(r)), JSON.stringify(s.reasons))
  })

  it('a frozen host thaws at its freeze bound while a long capture holds its queue, and that capture completes afterwards', async () => {
    const [b1, b2] = names.map(n => cluster.get(n))
    await fs.writeFile(path.join(b1.dir, 'slow'), '')
    const long = await b1.client.createSnapshot({ tag: 'long', consistency: 'marker' })
    // b1's capture of the long snapshot is holding its queue (the command source waits on `slow`)
    await new Promise(resolve => setTimeout(resolve, 1000))
    assert.equal((await b1.client.getSnapshot(long.id)).status, 'running')
    const barrier = await b2.client.createSnapshot({ tag: 'barrier', consistency: 'barrier', prepareTimeoutSeconds: 1 })
    await waitFor('b1 to freeze for the barrier snapshot', async () => (await b1.client.status()).frozenFor?.includes(barrier.id) === true, 10_000, 50)
    const frozenAt = Date.now()
    await waitFor('b1 to thaw', async () => (await b1.client.status()).frozenFor?.length === 0, 15_000, 100)
    assert.ok(Date.now() - frozenAt < 8_000, `b1 stayed frozen ${Date.now() - frozenAt} ms with a freeze bound of 4 s`)
    assert.equal((await b1.client.getSnapshot(long.id)).status, 'running', 'the long capture is still going: the thaw did not wait for it')
    const done = await ended(b2, barrier.id, 40_000)
    const mine = done.participants.find(p => p.peerId === b1.peerId)
    assert.equal(mine?.status, 'error')
    assert.match(mine?.error ?? '', /behind another capture or prune until the freeze bound ended/)
    assert.equal(done.participants.find(p => p.peerId === b2.peerId)?.status, 'ok')
    await fs.rm(path.join(b1.dir, 'slow'))
    assert.equal((await ended(b1, long.id, 40_000)).status, 'complete')
  })
})

describe('integration / bounds: a peer that floods messages failing validation', function () {
  this.timeout(120_000)
  let dir: string
  let cluster: LocalCluster
  let rogue: SnapmeshNode
  let bystander: SnapmeshNode | undefined

  before(async () => {
    dir = await tempDir('bounds-flood')
    cluster = new LocalCluster({ dir, agents: [{ name: 'p1', extra: { replication: { copies: 1 } } }] })
    await makeTree(path.join(dir, 'p1', 'files'), 'p1')
    await cluster.start()
    rogue = await rogueNode(await generateKeyPair('Ed25519'), cluster)
  })

  after(async () => {
    await bystander?.stop()
    await rogue?.stop()
    await cluster?.stop()
    if (!keep) await fs.rm(dir, { recursive: true, force: true })
  })

  it('is disconnected and refused for a while; another peer still connects', async () => {
    const p1 = cluster.get('p1')
    assert.ok(rogue.getConnections().some(c => c.remotePeer.toString() === p1.peerId), 'the rogue node is connected before the flood')
    const junk = new TextEncoder().encode('not dag-cbor at all')
    let sent = 0
    for (let i = 0; i < 3000 && rogue.getConnections().length > 0; i++) {
      await rogue.services.pubsub.publish(SNAPSHOT_TOPIC, junk).catch(() => {})
      sent++
    }
    await waitFor('p1 to disconnect the rogue node', async () => !rogue.getConnections().some(c => c.remotePeer.toString() === p1.peerId), 30_000, 100)
    // refused when it dials again (the gater denies it once the connection is encrypted)
    let refused = false
    try {
      await rogue.dial(multiaddr(p1.dialAddress()), { signal: AbortSignal.timeout(10_000) })
      await new Promise(resolve => setTimeout(resolve, 500))
      refused = !rogue.getConnections().some(c => c.remotePeer.toString() === p1.peerId)
    } catch {
      refused = true
    }
    assert.ok(refused, 'the banned peer connected again')
    assert.ok(sent >= 45, `the flood was ${sent} messages`)
    // the ban is for that peer alone
    bystander = await rogueNode(await generateKeyPair('Ed25519'), cluster)
    assert.ok(bystander.getConnections().some(c => c.remotePeer.toString() === p1.peerId), 'another peer could not connect')
    assert.equal((await p1.client.status()).peerId, p1.peerId)
  })
})
