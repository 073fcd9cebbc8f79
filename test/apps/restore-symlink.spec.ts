import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import * as dagCbor from '@ipld/dag-cbor'
import { connectApp } from '../../src/apps/client.js'
import { AppHub } from '../../src/apps/index.js'
import { restore } from '../../src/restore/index.js'
import { DAG_CBOR, FsBlockStore, RAW, cidForBytes } from '../../src/store/index.js'
import type { CID } from 'multiformats/cid'

const SNAPSHOT = 'ab'.repeat(32)

describe('apps / restore never follows a symlink the manifest planted', function () {
  this.timeout(30_000)
  let dir: string
  let blocks: FsBlockStore
  let hub: AppHub
  let root: CID

  async function put (node: unknown, codec = DAG_CBOR): Promise<CID> {
    const bytes = codec === DAG_CBOR ? dagCbor.encode(node) : node as Uint8Array
    const cid = cidForBytes(bytes, codec)
    await blocks.put(cid, bytes)
    return cid
  }

  /** `apps/<app>/` holding `entries` (a valid in-flight.json is added unless given) */
  async function appsManifest (app: string, entries: unknown[]): Promise<CID> {
    const inFlight = new TextEncoder().encode('[]')
    const chunk = await put(inFlight, RAW)
    const all = [{ name: 'in-flight.json', kind: 'file', mode: 0o600, mtimeMs: 0, size: inFlight.byteLength, chunks: [[chunk, inFlight.byteLength]] }, ...entries]
      .sort((a: any, b: any) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)))
    const appDir = await put({ v: 1, type: 'snapmesh/dir', entries: all })
    const appsDir = await put({ v: 1, type: 'snapmesh/dir', entries: [{ name: app, kind: 'dir', mode: 0o700, mtimeMs: 0, dir: appDir }] })
    return put({ v: 1, type: 'snapmesh/root', peerId: 'rogue', name: 'rogue', time: 0, sources: [{ name: 'apps', path: '/x', dir: appsDir, mode: 0o700, mtimeMs: 0 }] })
  }

  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'snapmesh-apps-restore-'))
    blocks = new FsBlockStore({ path: path.join(dir, 'store') })
    await blocks.start()
    await fs.writeFile(path.join(dir, 'secret'), 'outside the restore target')
    const fakeLibp2p = { handle: async () => {}, unhandle: async () => {}, dialProtocol: async () => { throw new Error('no peers here') } }
    hub = new AppHub({
      libp2p: fakeLibp2p as any,
      peerId: 'self',
      name: 'h',
      onMarker: () => {},
      // the agent's path: a real restore of the part's manifest into the hub's temporary folder
      restore: async (req) => {
        await restore({ blocks }, { root, target: req.target, include: [`apps/${req.app}`] })
        return { snapshot: SNAPSHOT, peerId: 'rogue' }
      }
    }, { socketPath: path.join(dir, 'apps.sock'), workDir: path.join(dir, 'work'), maxMessageBytes: 1024, maxStateBytes: 1024 })
    await fs.mkdir(path.join(dir, 'work'))
    await hub.start()
  })

  afterEach(async () => {
    await hub.stop()
    await blocks.stop()
    await fs.rm(dir, { recursive: true, force: true })
  })

  it('refuses apps/<app>/state planted as a symlink to a file outside, and hands nothing of it back', async () => {
    root = await appsManifest('bank', [{ name: 'state', kind: 'symlink', mode: 0o777, mtimeMs: 0, target: path.join(dir, 'secret') }])
    const app = await connectApp({ socket: path.join(dir, 'apps.sock'), name: 'bank' })
    try {
      await assert.rejects(app.restore(SNAPSHOT), (err: any) => {
        assert.equal(err.code, 'ERR_UNSAFE_APP_STATE', String(err))
        assert.match(err.message, /apps\/bank\/state: it is a symlink/)
        assert.ok(!err.message.includes('outside the restore target'))
        return true
      })
    } finally {
      await app.close()
    }
  })

  it('refuses apps/<app> planted as a symlink to a folder outside', async () => {
    await fs.mkdir(path.join(dir, 'elsewhere', 'bank'), { recursive: true })
    await fs.writeFile(path.join(dir, 'elsewhere', 'bank', 'state'), 'not from the snapshot')
    await fs.writeFile(path.join(dir, 'elsewhere', 'bank', 'in-flight.json'), '[]')
    const appsDir = await put({ v: 1, type: 'snapmesh/dir', entries: [{ name: 'bank', kind: 'symlink', mode: 0o777, mtimeMs: 0, target: path.join(dir, 'elsewhere', 'bank') }] })
    root = await put({ v: 1, type: 'snapmesh/root', peerId: 'rogue', name: 'rogue', time: 0, sources: [{ name: 'apps', path: '/x', dir: appsDir }] })
    const app = await connectApp({ socket: path.join(dir, 'apps.sock'), name: 'bank' })
    try {
      await assert.rejects(app.restore(SNAPSHOT), (err: any) => {
        assert.equal(err.code, 'ERR_UNSAFE_APP_STATE', String(err))
        assert.match(err.message, /apps\/bank is a symlink/)
        return true
      })
    } finally {
      await app.close()
    }
  })

  it('hands back state that is a real file', async () => {
    const state = new TextEncoder().encode('balance 10')
    const chunk = await put(state, RAW)
    root = await appsManifest('bank', [{ name: 'state', kind: 'file', mode: 0o600, mtimeMs: 0, size: state.byteLength, chunks: [[chunk, state.byteLength]] }])
    const app = await connectApp({ socket: path.join(dir, 'apps.sock'), name: 'bank' })
    try {
      const got = await app.restore(SNAPSHOT)
      assert.equal(new TextDecoder().decode(got.state), 'balance 10')
      assert.deepEqual(got.messages, [])
    } finally {
      await app.close()
    }
  })
})
