import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { PeerKeeper, createNode, generatePsk, loadOrCreateIdentity, readPsk, type SnapmeshNode } from '../../src/node/index.js'

const enc = new TextEncoder()

const keepers: PeerKeeper[] = []

async function node (init: { bootstrap?: string[], psk?: Uint8Array } = {}): Promise<SnapmeshNode> {
  const n = await createNode({
    privateKey: await generateKeyPair('Ed25519'),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    bootstrap: init.bootstrap ?? [],
    psk: init.psk,
    validators: { test: async (_key, value) => { if (value[0] !== 0x7b) throw new Error('not JSON') } },
    selectors: { test: () => 0 },
    maxMessageBytes: 64 * 1024,
    agentVersion: 'snapmesh/test'
  })
  const keeper = new PeerKeeper({ libp2p: n }, { bootstrap: init.bootstrap ?? [], intervalMs: 1000, memberProtocol: '/ipfs/kad/none' })
  await keeper.start()
  keepers.push(keeper)
  return n
}

async function drain<T> (it: AsyncIterable<T>, fn?: (v: T) => void): Promise<void> {
  for await (const v of it) fn?.(v)
}

function addr (n: SnapmeshNode): string {
  return n.getMultiaddrs().find(a => a.toString().startsWith('/ip4/127.0.0.1'))!.toString()
}

describe('node / identity and pre-shared key', () => {
  let dir: string
  beforeEach(async () => { dir = await fs.mkdtemp(path.join(os.tmpdir(), 'snapmesh-node-')) })
  afterEach(async () => { await fs.rm(dir, { recursive: true, force: true }) })

  it('creates an Ed25519 identity once, with mode 0600, and loads the same one again', async () => {
    const a = await loadOrCreateIdentity(dir)
    const b = await loadOrCreateIdentity(dir)
    assert.equal(a.peerId.toString(), b.peerId.toString())
    assert.equal(a.privateKey.type, 'Ed25519')
    assert.equal((await fs.stat(path.join(dir, 'identity.key'))).mode & 0o777, 0o600)
  })

  it('rejects a damaged identity file with its path', async () => {
    await fs.writeFile(path.join(dir, 'identity.key'), 'garbage')
    await assert.rejects(loadOrCreateIdentity(dir), /identity\.key is not a libp2p private key/)
  })

  it('writes and reads a swarm key, and rejects a malformed one', async () => {
    const file = path.join(dir, 'swarm.key')
    await fs.writeFile(file, generatePsk())
    assert.equal((await readPsk(file)).length, 95)
    await fs.writeFile(file, '/key/swarm/psk/1.0.0/\n/base16/\nxyz\n')
    await assert.rejects(readPsk(file), /is not a swarm\.key file/)
  })
})

describe('node / network on loopback', function () {
  this.timeout(60_000)
  const nodes: SnapmeshNode[] = []
  after(async () => {
    await Promise.all(keepers.map(async k => { await k.stop() }))
    await Promise.all(nodes.map(async n => { await n.stop() }))
  })

  it('stores a record in the private DHT that another node reads back, and drops one that fails validation', async () => {
    const a = await node()
    nodes.push(a)
    const b = await node({ bootstrap: [addr(a)] })
    nodes.push(b)
    const c = await node({ bootstrap: [addr(a)] })
    nodes.push(c)
    // b and c find each other through a's DHT in time on a quiet machine; dial them directly so a
    // busy one does not turn a test of storage into a test of discovery speed
    await b.dial(c.getMultiaddrs()[0])
    const deadline = Date.now() + 30_000
    const size = (n: SnapmeshNode): number => (n.services.dht as any).routingTable.size
    while ([a, b, c].some(n => size(n) < 2) && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 100))
    assert.ok([a, b, c].every(n => size(n) >= 2), `routing tables filled on loopback: ${[a, b, c].map(size).join(',')} conns ${[a, b, c].map(n => n.getConnections().length).join(',')}`)
    for await (const _ of b.services.dht.put(enc.encode('/test/good'), enc.encode('{"v":1}'))) {} // eslint-disable-line no-empty
    let got: Uint8Array | undefined
    for await (const ev of c.services.dht.get(enc.encode('/test/good'))) if (ev.name === 'VALUE') got = ev.value
    assert.equal(new TextDecoder().decode(got), '{"v":1}')
    // a value that fails validation is dropped by the peers that receive it
    await drain(b.services.dht.put(enc.encode('/test/bad'), enc.encode('nope'))).catch(() => {})
    const bad: Uint8Array[] = []
    await drain(c.services.dht.get(enc.encode('/test/bad'), { signal: AbortSignal.timeout(5000) }), ev => { if (ev.name === 'VALUE') bad.push(ev.value) }).catch(() => {})
    assert.deepEqual(bad, [])
  })

  it('a node with a different pre-shared key cannot connect', async () => {
    const psk = generatePsk()
    const a = await node({ psk })
    nodes.push(a)
    const b = await node({ psk })
    nodes.push(b)
    const stranger = await node({ psk: generatePsk() })
    nodes.push(stranger)
    await b.dial(a.getMultiaddrs()[0], { signal: AbortSignal.timeout(10_000) })
    await assert.rejects(stranger.dial(a.getMultiaddrs()[0], { signal: AbortSignal.timeout(3000) }))
    assert.equal(a.getConnections(stranger.peerId).length, 0)
  })
})
