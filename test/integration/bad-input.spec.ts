import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import * as dagCbor from '@ipld/dag-cbor'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import { LocalCluster, waitFor } from '../../scripts/cluster.js'
import { BlockExchange } from '../../src/exchange/index.js'
import { COPIES_TOPIC, copyReportPayload, encodeCopyReport, recordKey, selectors, type CopyReportBody } from '../../src/metadata/index.js'
import { createNode, type SnapmeshNode } from '../../src/node/index.js'
import { SNAPSHOT_TOPIC, encodeMarker, signResult, encodeResult, type Marker } from '../../src/snapshot/index.js'
import { FsBlockStore, cidForBytes } from '../../src/store/index.js'
import { cli, tempDir } from './helpers.js'
import type { PrivateKey } from '@libp2p/interface'

const DAG_CBOR = 0x71

/**
 * A real libp2p node that joins the cluster and misbehaves: it publishes malformed and forged
 * gossip, puts a forged DHT record and serves a manifest that tries to escape the restore target.
 */
describe('integration / bad input', function () {
  this.timeout(180_000)
  let dir: string
  let cluster: LocalCluster
  let rogue: SnapmeshNode
  let rogueKey: PrivateKey
  let rogueBlocks: FsBlockStore
  let rogueExchange: BlockExchange
  let probe: SnapmeshNode | undefined
  let marker: Marker | undefined
  let snapshotId: string | undefined

  before(async () => {
    dir = await tempDir('bad-input')
    cluster = new LocalCluster({ dir, agents: ['good1', 'good2'], deadlineSeconds: 120 })
    await cluster.start()
    rogueKey = await generateKeyPair('Ed25519')
    rogueBlocks = new FsBlockStore({ path: path.join(dir, 'rogue-store') })
    await rogueBlocks.start()
    rogue = await createNode({
      privateKey: rogueKey,
      listen: ['/ip4/127.0.0.1/tcp/0'],
      bootstrap: [cluster.agents[0].dialAddress()],
      // a forger accepts anything locally, so that it can try to spread bad records
      validators: { 'snapmesh-snap': async () => {}, 'snapmesh-head': async () => {} },
      selectors,
      maxMessageBytes: 1024 * 1024,
      agentVersion: 'snapmesh/0.1.0 (rogue)'
    })
    rogueExchange = new BlockExchange({ libp2p: rogue, blocks: rogueBlocks })
    await rogueExchange.start()
    rogue.services.pubsub.subscribe(SNAPSHOT_TOPIC)
    rogue.services.pubsub.addEventListener('message', (evt) => {
      if (evt.detail.topic !== SNAPSHOT_TOPIC) return
      const m = dagCbor.decode(evt.detail.data) as any
      if (m.type === 'marker') marker = m
    })
    for (const a of cluster.agents) await rogue.dial(multiaddr(a.dialAddress()))
    await waitFor('the agents to see the rogue node subscribed', async () => {
      const subs = rogue.services.pubsub.getSubscribers(SNAPSHOT_TOPIC).map(String)
      return cluster.agents.every(a => subs.includes(a.peerId))
    })
    for (const a of cluster.agents) {
      await waitFor(`${a.name} to count the rogue node as a member`, async () => (await a.client.peers()).some(p => p.peerId === rogue.peerId.toString() && p.connected))
    }
  })

  after(async () => {
    await probe?.stop()
    await rogueExchange?.stop()
    await rogue?.stop()
    await rogueBlocks?.stop()
    await cluster?.stop()
    await fs.rm(dir, { recursive: true, force: true })
  })

  it('a malformed marker and a marker forged in another peer\'s name are dropped', async () => {
    await rogue.services.pubsub.publish(SNAPSHOT_TOPIC, new TextEncoder().encode('{"type":"marker"}'))
    await rogue.services.pubsub.publish(SNAPSHOT_TOPIC, dagCbor.encode({ v: 1, type: 'marker', id: 'x' }))
    const now = Date.now()
    const forged = encodeMarker({
      v: 1,
      type: 'marker',
      id: 'a'.repeat(64),
      initiator: cluster.agents[0].peerId,
      lamport: 1,
      startedAt: now,
      deadline: now + 60_000,
      expected: [cluster.agents[0].peerId],
      consistency: 'marker'
    })
    await rogue.services.pubsub.publish(SNAPSHOT_TOPIC, forged)
    await new Promise(resolve => setTimeout(resolve, 2000))
    for (const a of cluster.agents) {
      assert.deepEqual(await a.client.listSnapshots(), [], `${a.name} must not have taken a snapshot`)
      assert.ok((await a.client.status()).peerId === a.peerId, `${a.name} still answers`)
    }
  })

  it('a result signed by another key is rejected; a manifest with ../ is refused at restore and nothing lands outside the target', async () => {
    const good = cluster.agents[0]
    const { stdout } = await cli(['--socket', good.socket, 'snapshot', 'create', '--json'])
    const created = JSON.parse(stdout)
    assert.ok(created.participants.some((p: any) => p.peerId === rogue.peerId.toString()), 'the rogue node is expected')
    await waitFor('the rogue node to receive the marker', async () => marker?.id === created.id)

    // a result claiming to be the rogue's own, but signed by an unrelated key
    const other = await generateKeyPair('Ed25519')
    const body = { id: created.id, peerId: rogue.peerId.toString(), name: 'rogue', lamport: marker!.lamport + 1, time: Date.now(), status: 'ok' as const, root: cidForBytes(new Uint8Array([1]), 0x55) }
    const badSig = await signResult(other, body)
    await rogue.services.pubsub.publish(SNAPSHOT_TOPIC, encodeResult(badSig))
    await new Promise(resolve => setTimeout(resolve, 1500))
    const afterForgery = await good.client.getSnapshot(created.id)
    assert.equal(afterForgery.participants.find(p => p.peerId === rogue.peerId.toString())?.status, 'pending')

    // now a validly signed result whose manifest tries to escape the restore target
    const evilDir = dagCbor.encode({ v: 1, type: 'snapmesh/dir', entries: [{ name: '../escaped.txt', kind: 'file', mode: 0o644, mtimeMs: 0, size: 0, chunks: [] }] })
    const dirCid = cidForBytes(evilDir, DAG_CBOR)
    await rogueBlocks.put(dirCid, evilDir)
    const rootBytes = dagCbor.encode({ v: 1, type: 'snapmesh/root', peerId: rogue.peerId.toString(), name: 'rogue', time: Date.now(), sources: [{ name: 'files', path: '/x', dir: dirCid }] })
    const rootCid = cidForBytes(rootBytes, DAG_CBOR)
    await rogueBlocks.put(rootCid, rootBytes)
    const signed = await signResult(rogueKey, { ...body, root: rootCid, time: Date.now() })
    await rogue.services.pubsub.publish(SNAPSHOT_TOPIC, encodeResult(signed))
    const done = await waitFor('the snapshot to complete', async () => {
      const s = await good.client.getSnapshot(created.id)
      return s.status === 'complete' ? s : undefined
    })
    assert.equal(done.participants.length, 3)
    snapshotId = created.id

    const restorer = cluster.agents[1]
    const target = path.join(dir, 'restore-target', 'inner')
    const res = await cli(['--socket', restorer.socket, 'restore', created.id, '--node', rogue.peerId.toString(), '--target', target])
    assert.notEqual(res.code, 0)
    assert.match(res.stderr, /escaped\.txt/)
    await assert.rejects(fs.stat(path.join(dir, 'restore-target', 'escaped.txt')), { code: 'ENOENT' })
    await assert.rejects(fs.stat(path.join(target, 'escaped.txt')), { code: 'ENOENT' })
  })

  it('copy reports forged in another agent\'s name, for a root that is not the owner\'s, or by a non-holder are dropped', async () => {
    assert.ok(snapshotId != null, 'needs the snapshot of the test before')
    const good = cluster.agents[0]
    const owner = (await good.client.getSnapshot(snapshotId)).participants.find(p => p.peerId === good.peerId)
    assert.ok(owner?.root != null)
    const rootCid = (await import('multiformats/cid')).CID.parse(owner.root)
    const rogueId = rogue.peerId.toString()
    // signs whatever it is given with the rogue's key, bypassing the checks signCopyReport makes
    const send = async (b: CopyReportBody): Promise<void> => {
      const sig = await rogueKey.sign(copyReportPayload(b))
      await rogue.services.pubsub.publish(COPIES_TOPIC, encodeCopyReport({ ...b, v: 1, type: 'copies', signer: rogueId, sig }))
    }
    const base: CopyReportBody = { id: snapshotId, owner: good.peerId, root: rootCid, reporter: rogueId, time: Date.now() + 3_600_000, blocks: 1, copies: 9, wanted: 2, holders: Array.from(new Set([good.peerId, rogueId, cluster.agents[1].peerId])).sort() }
    await send({ ...base, copies: 3, reporter: good.peerId })
    await send({ ...base, copies: 3, root: cidForBytes(new Uint8Array([7]), DAG_CBOR) })
    await send({ ...base, copies: 2, holders: [good.peerId, cluster.agents[1].peerId].sort() })
    await send({ ...base, copies: 9 })
    await new Promise(resolve => setTimeout(resolve, 2000))
    for (const a of cluster.agents) {
      const p = (await a.client.getSnapshot(snapshotId)).participants.find(x => x.peerId === good.peerId)
      assert.notEqual(p?.copiesCountedBy, rogueId, `${a.name} took a forged copy report: ${JSON.stringify(p)}`)
      assert.ok((p?.copies ?? 1) <= 3, JSON.stringify(p))
      assert.ok((await a.client.status()).peerId === a.peerId, `${a.name} still answers`)
    }
  })

  it('a DHT record whose bytes do not match its CID is dropped by the agents', async () => {
    const honest = dagCbor.encode({ v: 1, note: 'honest' })
    const forged = dagCbor.encode({ v: 1, note: 'forged' })
    const key = recordKey(cidForBytes(honest, DAG_CBOR))
    for await (const _ of rogue.services.dht.put(key, forged)) {} // eslint-disable-line no-empty
    // the forger leaves; a fresh node that accepts anything asks the agents for the key: had any
    // agent stored the forged bytes, it would hand them out here
    await rogueExchange.stop()
    await rogue.stop()
    probe = await createNode({
      privateKey: await generateKeyPair('Ed25519'),
      listen: ['/ip4/127.0.0.1/tcp/0'],
      bootstrap: cluster.agents.map(a => a.dialAddress()),
      validators: { 'snapmesh-snap': async () => {}, 'snapmesh-head': async () => {} },
      selectors,
      maxMessageBytes: 1024 * 1024,
      agentVersion: 'snapmesh/0.1.0 (probe)'
    })
    await waitFor('the probe to connect', async () => probe!.getConnections().length >= 2)
    const values: Uint8Array[] = []
    try {
      for await (const ev of probe.services.dht.get(key, { signal: AbortSignal.timeout(5000) })) {
        if (ev.name === 'VALUE') values.push(ev.value)
      }
    } catch {}
    assert.deepEqual(values, [], 'no agent kept the forged record')
  })
})
