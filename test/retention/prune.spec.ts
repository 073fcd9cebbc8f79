import assert from 'node:assert/strict'
import crypto from 'node:crypto'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { capture, manifestBlocks } from '../../src/capture/index.js'
import { prune, PruneAbortedError } from '../../src/retention/index.js'
import { restore } from '../../src/restore/index.js'
import { FsBlockStore, RAW, cidForBytes } from '../../src/store/index.js'
import type { CID } from 'multiformats/cid'

const OWNER = '12D3KooWQbKkGa7xjDTtyVmjVuHKDNJ9qGpsanqNfwbyBu3g5aph'

async function cids (store: FsBlockStore): Promise<Set<string>> {
  const out = new Set<string>()
  for await (const c of store.cids()) out.add(c.toString())
  return out
}

async function reach (store: FsBlockStore, root: CID): Promise<Set<string>> {
  const out = new Set<string>()
  for await (const { cid } of manifestBlocks(store, root)) out.add(cid.toString())
  return out
}

describe('retention / prune', function () {
  this.timeout(60_000)
  let dir: string
  let store: FsBlockStore
  let first: CID
  let second: CID

  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'snapmesh-prune-'))
    const src = path.join(dir, 'src')
    await fs.mkdir(src)
    await fs.writeFile(path.join(src, 'kept.bin'), crypto.randomBytes(3 << 20))
    await fs.writeFile(path.join(src, 'gone.bin'), crypto.randomBytes(3 << 20))
    store = new FsBlockStore({ path: path.join(dir, 'store') })
    await store.start()
    const sources = [{ name: 'files', path: src }]
    first = (await capture({ blocks: store }, { peerId: OWNER, name: 'a', sources })).root
    await fs.rm(path.join(src, 'gone.bin'))
    await fs.writeFile(path.join(src, 'new.bin'), crypto.randomBytes(1 << 20))
    second = (await capture({ blocks: store }, { peerId: OWNER, name: 'a', sources, previous: first })).root
  })

  afterEach(async () => {
    await fs.rm(dir, { recursive: true, force: true })
  })

  const components = (): Parameters<typeof prune>[0] => ({ blocks: store, getterFor: async () => store })

  it('deletes exactly the blocks only a forgotten root reached; the kept root still restores whole', async () => {
    const before = await cids(store)
    const keep = await reach(store, second)
    const onlyFirst = [...await reach(store, first)].filter(c => !keep.has(c))
    assert.ok(onlyFirst.length >= 3, 'gone.bin and the first root are reached only by the first snapshot')
    const stats = await prune(components(), { roots: [{ snapshot: 'b'.repeat(64), owner: OWNER, root: second }], graceMs: 0, now: Date.now() + 1000 })
    const after = await cids(store)
    assert.deepEqual([...before].filter(c => !after.has(c)).sort(), onlyFirst.sort())
    assert.deepEqual([...after].sort(), [...keep].sort())
    assert.equal(stats.deleted, onlyFirst.length)
    assert.equal(stats.referenced, keep.size)
    assert.equal(stats.stored, before.size)
    assert.ok(stats.bytesFreed >= 3 << 20)
    const target = path.join(dir, 'restored')
    await restore({ blocks: store }, { root: second, target })
    assert.deepEqual((await fs.readdir(path.join(target, 'files'))).sort(), ['kept.bin', 'new.bin'])
  })

  it('a dry run counts the same and deletes nothing', async () => {
    const before = await cids(store)
    const dry = await prune(components(), { roots: [{ owner: OWNER, root: second }], graceMs: 0, now: Date.now() + 1000, dryRun: true })
    assert.deepEqual(await cids(store), before)
    const real = await prune(components(), { roots: [{ owner: OWNER, root: second }], graceMs: 0, now: Date.now() + 1000 })
    assert.equal(dry.dryRun, true)
    assert.equal(dry.deleted, real.deleted)
    assert.equal(dry.bytesFreed, real.bytesFreed)
  })

  it('keeps unreferenced blocks younger than the grace period', async () => {
    const stray = crypto.randomBytes(1000)
    await store.put(cidForBytes(stray, RAW), stray)
    const stats = await prune(components(), { roots: [{ owner: OWNER, root: first }, { owner: OWNER, root: second }], graceMs: 3600_000, now: Date.now() })
    assert.equal(stats.deleted, 0)
    assert.equal(stats.young, 1)
    assert.equal(await store.has(cidForBytes(stray, RAW)), true)
  })

  it('a kept root whose manifest cannot be read stops the prune before anything is deleted', async () => {
    const before = await cids(store)
    // the second root's own block is gone: its part cannot be walked
    await store.delete(second)
    const err = await prune(components(), {
      roots: [{ snapshot: 'c'.repeat(64), owner: OWNER, root: first }, { snapshot: 'd'.repeat(64), owner: OWNER, root: second }],
      graceMs: 0,
      now: Date.now() + 1000
    }).then(() => undefined, (e: unknown) => e)
    assert.ok(err instanceof PruneAbortedError, String(err))
    assert.match(err.message, /snapshot dddddddd/)
    assert.match(err.message, new RegExp(second.toString()))
    before.delete(second.toString())
    assert.deepEqual(await cids(store), before)
  })
})
