import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { Bank, checkSnapshot, prng, restoreAll } from '../../scripts/bank.js'
import { AppHub } from '../../src/apps/index.js'
import type { SnapmeshNode } from '../../src/node/index.js'
import { marker } from '../snapshot/fixtures.js'
import type { Marker } from '../../src/snapshot/index.js'
import { loopbackNode } from '../node/fixtures.js'
import { rawAppConnection } from './fixtures.js'

const node = loopbackNode


describe('apps / hubs on real libp2p nodes', function () {
  this.timeout(60_000)
  let dir: string
  const nodes: SnapmeshNode[] = []
  const hubs: AppHub[] = []
  const banks: Bank[] = []
  const started: string[] = []

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'snapmesh-apps-'))
    for (let i = 0; i < 3; i++) nodes.push(await node())
    for (const a of nodes) for (const b of nodes) if (a !== b) await a.dial(b.getMultiaddrs()[0])
    for (const [i, n] of nodes.entries()) {
      const workDir = path.join(dir, `h${i}`)
      const hub: AppHub = new AppHub({
        libp2p: n,
        peerId: n.peerId.toString(),
        name: `h${i}`,
        // what the agent does: take its part of the snapshot, which cuts here (again: a no-op)
        onMarker: (m: Marker) => { started.push(`${i}:${m.id}`); setTimeout(() => { hub.cut(m) }, 0) },
        // the agent restores the "apps" source of its capture; here the files are still in place
        restore: async (req) => {
          await fs.cp(path.join(workDir, 'cuts', req.snapshot, req.app), path.join(req.target, 'apps', req.app), { recursive: true })
          return { snapshot: req.snapshot, peerId: n.peerId.toString() }
        }
      }, { socketPath: path.join(dir, `h${i}.sock`), workDir, maxMessageBytes: 64 * 1024, maxStateBytes: 1024 * 1024 })
      await hub.start()
      hubs.push(hub)
    }
  })

  after(async () => {
    for (const b of banks) await b.close().catch(() => {})
    for (const h of hubs) await h.stop()
    for (const n of nodes) await n.stop()
    await fs.rm(dir, { recursive: true, force: true })
  })

  it('banks stay consistent when markers reach some agents late or only through app messages', async () => {
    for (const [i, h] of hubs.entries()) banks.push(await new Bank({ socket: h.socketPath, label: `h${i}`, balance: 1000 }).start())
    const peers = nodes.map(n => n.peerId.toString())
    const rnd = prng(42)
    const until = Date.now() + 4000
    const loops = banks.map(async (bank, i) => {
      while (Date.now() < until) {
        const others = peers.filter((_, j) => j !== i)
        if (!await bank.transfer(others[Math.floor(rnd() * others.length)], 1 + Math.floor(rnd() * 20))) await new Promise(resolve => setTimeout(resolve, 2))
      }
    })
    const markers: Marker[] = []
    const gossip = Array.from({ length: 8 }, async (_, k) => {
      await new Promise(resolve => setTimeout(resolve, 300 + k * 400))
      const from = Math.floor(rnd() * 3)
      const now = Date.now()
      const m = marker(peers[from], peers, { startedAt: now, deadline: now + 30_000 })
      markers.push(m)
      hubs[from].cut(m)
      // the others hear of it late, or only from the apps' messages
      for (const [j, h] of hubs.entries()) {
        if (j !== from && rnd() < 0.5) setTimeout(() => { h.cut(m) }, 50 + Math.floor(rnd() * 400))
      }
    })
    await Promise.all([...loops, ...gossip])
    for (const m of markers) {
      for (const h of hubs) {
        const r = await h.wait(m.id)
        assert.deepEqual(r.apps, ['bank'])
      }
      assert.deepEqual(checkSnapshot(await restoreAll(banks, m.id), 3000), [], `snapshot ${m.id.slice(0, 8)}`)
    }
    assert.ok(started.length > 0, 'no cut was started by an app message')
  })

  it('bad lines on the app socket get an error naming the field, and the connection goes on', async () => {
    const c = await rawAppConnection(hubs[0].socketPath)
    try {
      c.send('not json')
      assert.match((await c.next()).error, /not JSON/)
      c.send(JSON.stringify({ type: 'send', id: 'x', to: 'someone', payload: '' }))
      assert.match((await c.next()).error, /say hello first/)
      c.send(JSON.stringify({ type: 'hello', v: 1, app: '../etc' }))
      const badName = await c.next()
      assert.equal(badName.field, 'app')
      c.send('x'.repeat(3 * 1024 * 1024))
      assert.match((await c.next()).error, /over the limit/)
      c.send(JSON.stringify({ type: 'hello', v: 1, app: 'raw' }))
      assert.equal((await c.next()).type, 'welcome')
      c.send(JSON.stringify({ type: 'send', id: 'p', to: nodes[1].peerId.toString(), payload: '***' }))
      const badPayload = await c.next()
      assert.equal(badPayload.id, 'p')
      assert.equal(badPayload.field, 'payload')
      c.send(JSON.stringify({ type: 'send', id: 't', to: 'not-a-peer', payload: '' }))
      assert.equal((await c.next()).field, 'to')
      c.send(JSON.stringify({ type: 'state', snapshot: 'ab'.repeat(32), state: '' }))
      assert.match((await c.next()).error, /no state of "raw" is awaited/)
      c.send(JSON.stringify({ type: 'hello', v: 1, app: 'bank' }))
      assert.match((await c.next()).error, /already/)
    } finally {
      c.close()
    }
  })
})
