// Faults of the environment, with real agent processes on 127.0.0.1: markers replayed long after
// their snapshot or days past their deadline, clocks an hour apart, a disk that fills up during a
// capture. (Crashes and joins during a snapshot are in faults.spec.ts.)
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import crypto from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { multiaddr } from '@multiformats/multiaddr'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { LocalCluster, waitFor } from '../../scripts/cluster.js'
import { selectors } from '../../src/metadata/index.js'
import { createNode, loadOrCreateIdentity, type SnapmeshNode } from '../../src/node/index.js'
import { SNAPSHOT_TOPIC, decodeMessage, encodeMarker, type Marker } from '../../src/snapshot/index.js'
import { AgentState, LAST_ROOT } from '../../src/state/index.js'
import { captures, checkStore, ended, loggedSource, meshed, preload, randomFile } from './fixtures/faults-helpers.js'
import { cli, describeTree, makeTree, tempDir } from './helpers.js'
import type { SnapshotView } from '../../src/admin/api.js'
import type { PrivateKey } from '@libp2p/interface'

const keep = process.env.SNAPMESH_KEEP != null
const logs = process.env.SNAPMESH_AGENT_DEBUG != null
const HOUR = 3600_000
const DAY = 24 * HOUR

/** a libp2p node that is not an agent (no block protocol, so never an expected participant) */
async function gossipNode (privateKey: PrivateKey, bootstrap: string[]): Promise<SnapmeshNode> {
  const node = await createNode({
    privateKey,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    bootstrap,
    validators: { 'snapmesh-snap': async () => {}, 'snapmesh-head': async () => {} },
    selectors,
    maxMessageBytes: 1024 * 1024,
    agentVersion: 'snapmesh-test/0 (gossip)'
  })
  node.services.pubsub.subscribe(SNAPSHOT_TOPIC)
  for (const addr of bootstrap) await node.dial(multiaddr(addr))
  return node
}

/** what must not change about a snapshot an agent knows: status, results (by record CID) */
function fingerprint (s: SnapshotView): string {
  return JSON.stringify({ id: s.id, status: s.status, recordCid: s.recordCid, participants: s.participants.map(p => [p.peerId, p.status, p.root]) })
}

describe('integration / faults: markers replayed late or past their deadline', function () {
  this.timeout(120_000)
  let dir: string
  let cluster: LocalCluster
  let observer: SnapmeshNode | undefined
  let impostor: SnapmeshNode | undefined
  const names = ['r1', 'r2', 'r3']
  const markers = new Map<string, Uint8Array>()

  before(async () => {
    dir = await tempDir('faults-replay')
    cluster = new LocalCluster({
      dir,
      agents: names.map(name => ({ name, sources: [loggedSource(path.join(dir, name))], extra: { snapshot: { deadlineSeconds: 10 }, replication: { copies: 1 } } })),
      logToFiles: logs
    })
    for (const name of names) await makeTree(path.join(dir, name, 'files'), name)
    await cluster.start()
    await meshed(cluster)
    // keeps the bytes of every marker, to replay them exactly
    observer = await gossipNode(await generateKeyPair('Ed25519'), cluster.agents.map(a => a.dialAddress()))
    observer.services.pubsub.addEventListener('message', (evt) => {
      if (evt.detail.topic !== SNAPSHOT_TOPIC) return
      const m = decodeMessage(evt.detail.data)
      if (m.type === 'marker') markers.set(m.id, evt.detail.data)
    })
    await waitFor('the observer to see every agent subscribed', async () => {
      const subs = observer!.services.pubsub.getSubscribers(SNAPSHOT_TOPIC).map(String)
      return cluster.agents.every(a => subs.includes(a.peerId))
    })
  })

  after(async () => {
    await impostor?.stop()
    await observer?.stop()
    await cluster?.stop()
    if (!keep) await fs.rm(dir, { recursive: true, force: true })
  })

  it('the original marker sent again (twice) after the snapshot ended, and a marker days past its deadline, change nothing', async () => {
    const [r1, r2, r3] = names.map(n => cluster.get(n))
    const created = await r1.client.createSnapshot({ tag: 'original' })
    const done = await ended(r2, created.id)
    assert.equal(done.status, 'complete')
    const original = await waitFor('the observer to hold the marker', async () => markers.get(created.id))
    for (const a of [r2, r3]) await ended(a, created.id)

    // the initiator goes away; its identity now speaks through a bare libp2p node. r2 restarts, so
    // only its catalog (not its memory) knows the snapshot; r3 still holds it in memory
    await r1.stop()
    await r2.stop()
    await r2.start()
    const { privateKey } = await loadOrCreateIdentity(path.join(r1.dir, 'data'))
    impostor = await gossipNode(privateKey, [r2.dialAddress(), r3.dialAddress()])
    await waitFor('r2 and r3 to see the impostor subscribed', async () => {
      const subs = impostor!.services.pubsub.getSubscribers(SNAPSHOT_TOPIC).map(String)
      return subs.includes(r2.peerId) && subs.includes(r3.peerId)
    })
    await waitFor('r2 to be connected to r3', async () => (await r2.client.peers()).some(p => p.peerId === r3.peerId && p.connected))
    const count = { r2: await captures(r2), r3: await captures(r3) }
    const before = { r2: fingerprint(await r2.client.getSnapshot(created.id)), r3: fingerprint(await r3.client.getSnapshot(created.id)) }

    // (a) the same bytes, twice: each publish is a new gossip message (new sequence number), as a
    // copy delivered after gossipsub's seen-cache expired would be
    await impostor.services.pubsub.publish(SNAPSHOT_TOPIC, original)
    await impostor.services.pubsub.publish(SNAPSHOT_TOPIC, original)
    // (b) a well-formed marker of a snapshot whose deadline was three days ago
    const now = Date.now()
    const stale: Marker = { v: 1, type: 'marker', id: crypto.randomBytes(32).toString('hex'), initiator: r1.peerId, lamport: 1000, startedAt: now - 3 * DAY - 10_000, deadline: now - 3 * DAY, expected: [r1.peerId, r2.peerId, r3.peerId].sort(), consistency: 'marker', tag: 'stale' }
    await impostor.services.pubsub.publish(SNAPSHOT_TOPIC, encodeMarker(stale))
    // (c) a fresh marker sent last, on the same streams: once it is captured, (a) and (b) were
    // received and handled before it
    const fresh: Marker = { v: 1, type: 'marker', id: crypto.randomBytes(32).toString('hex'), initiator: r1.peerId, lamport: 1001, startedAt: now, deadline: now + 5_000, expected: [r1.peerId, r2.peerId, r3.peerId].sort(), consistency: 'marker', tag: 'control' }
    await impostor.services.pubsub.publish(SNAPSHOT_TOPIC, encodeMarker(fresh))
    for (const a of [r2, r3]) {
      const s = await ended(a, fresh.id, 30_000)
      assert.equal(s.status, 'partial', `${a.name}: the control snapshot: ${JSON.stringify(s)}`)
    }

    assert.deepEqual({ r2: await captures(r2), r3: await captures(r3) }, { r2: count.r2 + 1, r3: count.r3 + 1 }, 'an agent captured something other than the control snapshot')
    assert.deepEqual({ r2: fingerprint(await r2.client.getSnapshot(created.id)), r3: fingerprint(await r3.client.getSnapshot(created.id)) }, before)
    for (const a of [r2, r3]) {
      const ids = (await a.client.listSnapshots()).map(s => s.id).sort()
      assert.deepEqual(ids, [created.id, fresh.id].sort(), `${a.name} lists a snapshot it should have ignored`)
    }
  })
})

describe('integration / faults: clocks an hour apart', function () {
  this.timeout(120_000)
  let dir: string
  let cluster: LocalCluster
  const offsets: Record<string, number> = { c1: 0, c2: HOUR, c3: -HOUR }

  before(async () => {
    dir = await tempDir('faults-clock')
    cluster = new LocalCluster({
      dir,
      agents: Object.entries(offsets).map(([name, offset]) => ({
        name,
        execArgv: offset !== 0 ? preload('clock-offset') : [],
        env: { SNAPMESH_TEST_CLOCK_OFFSET_MS: String(offset) },
        // an hour apart is beyond the default skew bound (5 minutes), under which the agent an hour
        // ahead would have its markers and results rejected: this cluster allows two hours
        extra: { snapshot: { deadlineSeconds: 15 }, replication: { copies: 1 }, network: { reconnectSeconds: 1, syncSeconds: 2, maxClockSkewSeconds: 7200 } }
      })),
      logToFiles: logs
    })
    for (const name of Object.keys(offsets)) await makeTree(path.join(dir, name, 'files'), name)
    await cluster.start()
    await meshed(cluster)
  })

  after(async () => {
    await cluster?.stop()
    if (!keep) await fs.rm(dir, { recursive: true, force: true })
  })

  it('snapshots started by the agent an hour ahead and by the one an hour behind both complete on every agent', async () => {
    for (const [initiator, offset] of [['c2', HOUR], ['c3', -HOUR]] as const) {
      const started = Date.now()
      const created = await cluster.get(initiator).client.createSnapshot({ tag: `from-${initiator}` })
      // the initiator's clock really is off: its marker's start time says so
      assert.ok(Math.abs(Date.parse(created.startedAt) - (started + offset)) < 60_000, `${initiator} started at ${created.startedAt}, expected about ${new Date(started + offset).toISOString()}`)
      for (const agent of cluster.agents) {
        // an agent whose clock is already past the marker's deadline shows the snapshot failed
        // until the results arrive, which then make it complete (see README, "Faults")
        const s = await waitFor(`${agent.name} to see the snapshot of ${initiator} complete`, async () => {
          const v = await agent.client.getSnapshot(created.id)
          return v.status === 'complete' ? v : undefined
        }, 40_000, 250)
        assert.deepEqual(s.participants.map(p => [p.peerId, p.status]).sort(), cluster.agents.map(a => [a.peerId, 'ok']).sort(), `${agent.name}: ${JSON.stringify(s.participants)}`)
      }
    }
  })
})

/** mounts a tmpfs of `bytes` (rounded up to pages) at `dir`, keeping what `dir` held; false when this host cannot mount */
async function mountSmallDisk (dir: string, bytes: number): Promise<boolean> {
  if (process.env.SNAPMESH_TEST_ENOSPC === 'preload' || process.getuid?.() !== 0) return false
  const saved = `${dir}.saved`
  await fs.rename(dir, saved)
  await fs.mkdir(dir)
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${Math.ceil(bytes / 4096) * 4096},mode=0700`, 'tmpfs', dir], { stdio: 'pipe' })
  } catch {
    await fs.rmdir(dir)
    await fs.rename(saved, dir)
    return false
  }
  await fs.cp(saved, dir, { recursive: true, preserveTimestamps: true })
  await fs.rm(saved, { recursive: true, force: true })
  return true
}

/** bytes a folder's files take on a tmpfs (whole pages) */
async function pagesUsed (dir: string): Promise<number> {
  let total = 0
  for (const e of await fs.readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) total += Math.ceil((await fs.stat(path.join(e.parentPath ?? (e as any).path, e.name))).size / 4096) * 4096
  }
  return total
}

describe('integration / faults: the disk fills up during a capture', function () {
  this.timeout(150_000)
  let dir: string
  let cluster: LocalCluster
  let first: SnapshotView
  let mounted: string | undefined

  before(async () => {
    dir = await tempDir('faults-disk')
    cluster = new LocalCluster({
      dir,
      agents: ['e1', 'e2'].map(name => ({ name, extra: { snapshot: { deadlineSeconds: 15 }, replication: { copies: 1 } } })),
      logToFiles: logs
    })
    for (const name of ['e1', 'e2']) await makeTree(path.join(dir, name, 'files'), name)
    await cluster.start()
    await meshed(cluster)
    first = await ended(cluster.get('e1'), (await cluster.get('e1').client.createSnapshot({ tag: 'before' })).id)
    assert.equal(first.status, 'complete')
  })

  after(async () => {
    await cluster?.stop()
    if (mounted != null) {
      try {
        execFileSync('umount', [mounted], { stdio: 'pipe' })
      } catch (err: any) {
        console.error(`could not unmount the test file system at ${mounted}: ${String(err.message)}`)
      }
    }
    if (!keep) await fs.rm(dir, { recursive: true, force: true })
  })

  it('the participant\'s part fails naming ENOSPC, nothing half-written is referenced, and with space back the next snapshot completes and restores', async () => {
    const [e1, e2] = [cluster.get('e1'), cluster.get('e2')]
    const storeDir = path.join(e2.dir, 'data', 'store')
    const room = 3 * 1024 * 1024
    await e2.stop()
    if (await mountSmallDisk(storeDir, await pagesUsed(storeDir) + room)) {
      mounted = storeDir
    } else {
      e2.execArgv = preload('enospc')
      e2.env = { SNAPMESH_TEST_ENOSPC_DIR: storeDir, SNAPMESH_TEST_ENOSPC_AFTER_BYTES: String(room) }
    }
    console.log(`      (the full disk is ${mounted != null ? 'a real tmpfs' : 'simulated by the enospc preload module'})`)
    // 12 MB of new data into a store with room for 3 MB
    await randomFile(path.join(e2.sourcesDir, 'big.bin'), 12 * 1024 * 1024)
    await e2.start()
    await meshed(cluster)

    const failed = await ended(e1, (await e1.client.createSnapshot({ tag: 'disk-full' })).id, 40_000)
    assert.equal(failed.status, 'partial', JSON.stringify(failed))
    const part = failed.participants.find(p => p.peerId === e2.peerId)
    assert.equal(part?.status, 'error')
    assert.match(part?.error ?? '', /ENOSPC|no space left/, JSON.stringify(part))
    assert.ok((failed.reasons ?? []).some(r => r.includes(e2.peerId) && /ENOSPC|no space left/.test(r)), JSON.stringify(failed.reasons))

    // nothing half-written: no temporary file, no block that does not match its CID, and the
    // previous root (what the next capture builds on) is still the last good snapshot's
    const full = await checkStore(e2)
    assert.deepEqual(full.other, [], 'temporary files left in the store')
    assert.deepEqual(full.bad, [])
    await e2.stop()
    const state = new AgentState({ path: path.join(e2.dir, 'data', 'state') })
    await state.start()
    try {
      assert.equal(await state.get(LAST_ROOT), first.participants.find(p => p.peerId === e2.peerId)?.root)
    } finally {
      await state.stop()
    }

    // space comes back
    if (mounted != null) execFileSync('mount', ['-o', 'remount,size=268435456', mounted], { stdio: 'pipe' })
    e2.execArgv = []
    e2.env = {}
    await e2.start()
    const restarted = await checkStore(e2)
    assert.deepEqual(restarted.other, [])
    assert.deepEqual(restarted.bad, [])
    const verified = await cli(['--socket', e2.socket, 'verify', first.id, '--read-data', '--json'], { timeoutMs: 60_000 })
    assert.equal(verified.code, 0, verified.stdout + verified.stderr)
    await meshed(cluster)
    const next = await cli(['--socket', e2.socket, 'snapshot', 'create', '--wait', '--json'], { timeoutMs: 60_000 })
    assert.equal(next.code, 0, next.stdout + next.stderr)
    const snap = JSON.parse(next.stdout) as SnapshotView
    assert.equal(snap.status, 'complete')
    const target = path.join(dir, 'restore-e2')
    const restored = await cli(['--socket', e1.socket, 'restore', snap.id, '--node', 'e2', '--target', target, '--json'], { timeoutMs: 60_000 })
    assert.equal(restored.code, 0, restored.stderr)
    assert.deepEqual(await describeTree(path.join(target, 'files')), await describeTree(e2.sourcesDir))
  })
})
