import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import * as dagCbor from '@ipld/dag-cbor'
import { AdminService } from '../../src/admin/service.js'
import { MARKER_NAME } from '../../src/restore/index.js'
import { DAG_CBOR, FsBlockStore, RAW, cidForBytes } from '../../src/store/index.js'
import { ID_AA11, PEER_A, tempDir } from './fixtures.js'
import type { CID } from 'multiformats/cid'

describe('admin / service restore: the record bounds the manifest', () => {
  let dir: string
  let blocks: FsBlockStore
  let root: CID

  async function put (node: unknown, codec = DAG_CBOR): Promise<CID> {
    const bytes = codec === DAG_CBOR ? dagCbor.encode(node) : node as Uint8Array
    const cid = cidForBytes(bytes, codec)
    await blocks.put(cid, bytes)
    return cid
  }

  beforeEach(async () => {
    dir = await tempDir('service-restore')
    blocks = new FsBlockStore({ path: path.join(dir, 'store') })
    await blocks.start()
    const chunk = await put(new TextEncoder().encode('data'), RAW)
    // 2^8 copies of one folder of two files, from a few blocks
    let at = await put({ v: 1, type: 'snapmesh/dir', entries: [{ name: 'a', kind: 'file', mode: 0o4755, mtimeMs: 0, size: 4, chunks: [[chunk, 4]], uid: 0, gid: 0 }, { name: 'b', kind: 'file', mode: 0o644, mtimeMs: 0, size: 4, chunks: [[chunk, 4]] }] })
    for (let i = 0; i < 8; i++) at = await put({ v: 1, type: 'snapmesh/dir', entries: [{ name: 'l', kind: 'dir', mode: 0o755, mtimeMs: 0, dir: at }, { name: 'r', kind: 'dir', mode: 0o755, mtimeMs: 0, dir: at }] })
    root = await put({ v: 1, type: 'snapmesh/root', peerId: PEER_A, name: 'alpha', time: 0, sources: [{ name: 'files', path: '/x', dir: at, mode: 0o755, mtimeMs: 0 }] })
  })

  afterEach(async () => {
    await blocks.stop()
    await fs.rm(dir, { recursive: true, force: true })
  })

  function service (stats: Record<string, number> | undefined): AdminService {
    const record = { id: ID_AA11, results: [{ peerId: PEER_A, name: 'alpha', status: 'ok', root, ...(stats != null ? { stats } : {}) }] }
    const getter = { get: blocks.get.bind(blocks), blocksFetched: 0 }
    return new AdminService({
      mesh: { peerId: PEER_A, addresses: () => [] },
      catalog: { resolve: async () => record } as any,
      holders: { forOwner: async () => ({ getter }) } as any
    } as any, { name: 'alpha', version: 'test', dataDir: dir, copiesWanted: 1 })
  }

  const full = { files: 512, dirs: 1 + 510, symlinks: 0, bytes: 2048, filesRead: 0, filesReused: 0, bytesRead: 0, chunks: 0, newChunks: 0, newBytes: 0, durationMs: 0 }

  it('restores a part whose manifest matches its stats, and leaves no marker behind', async () => {
    const target = path.join(dir, 'ok')
    const result = await service(full).restore({ snapshot: 'aa11', target })
    assert.equal(result.files, 512)
    await assert.rejects(fs.access(path.join(target, MARKER_NAME)))
    // the default drops setuid
    assert.equal((await fs.stat(path.join(target, 'files/l/l/l/l/l/l/l/l/a'))).mode & 0o7777, 0o755)
  })

  it('passes keepSpecialBits and noOwner through', async () => {
    const target = path.join(dir, 'bits')
    await service(full).restore({ snapshot: 'aa11', target, keepSpecialBits: true, noOwner: true })
    // no owner applied: setuid is not kept even when asked for
    assert.equal((await fs.stat(path.join(target, 'files/l/l/l/l/l/l/l/l/a'))).mode & 0o7777, 0o755)
  })

  it('refuses a part whose manifest expands past its stats, naming the participant, and writes nothing', async () => {
    const target = path.join(dir, 'over')
    await assert.rejects(service({ ...full, files: 2 }).restore({ snapshot: 'aa11', target }), (err: any) => {
      assert.equal(err.code, 'ERR_MANIFEST_EXCEEDS_STATS')
      assert.match(err.message, /expands to 512 files, but the stats of alpha in snapshot aa110000 state 2 files; nothing was written/)
      return true
    })
    await assert.rejects(fs.access(target))
  })

  it('refuses a part whose result has no stats', async () => {
    const target = path.join(dir, 'none')
    await assert.rejects(service(undefined).restore({ snapshot: 'aa11', target }), (err: any) => {
      assert.equal(err.code, 'ERR_MANIFEST_EXCEEDS_STATS')
      assert.match(err.message, /the result of alpha in snapshot aa110000 states no stats, so the limit is 0 files, 0 dirs, 0 bytes/)
      return true
    })
    await assert.rejects(fs.access(target))
  })

  it('resume refuses a target that holds a restore of another participant\'s part', async () => {
    const target = path.join(dir, 'other')
    await fs.mkdir(target)
    await fs.writeFile(path.join(target, MARKER_NAME), JSON.stringify({ v: 1, root: root.toString(), snapshot: ID_AA11, peerId: 'someone-else' }))
    await assert.rejects(service(full).restore({ snapshot: 'aa11', target, resume: true }), (err: any) => {
      assert.equal(err.code, 'ERR_RESUME_MISMATCH')
      assert.ok(err.message.includes('participant someone-else'), err.message)
      return true
    })
  })
})
