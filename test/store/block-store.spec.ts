import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { Uint8ArrayList } from 'uint8arraylist'
import { BlockNotFoundError, CorruptBlockError, DAG_CBOR, FsBlockStore, RAW, UnsupportedHashError, cidForBytes, verifyBlock } from '../../src/store/index.js'

describe('store / fs block store', () => {
  let dir: string
  let store: FsBlockStore

  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'snapmesh-store-'))
    store = new FsBlockStore({ path: dir })
    await store.start()
  })

  afterEach(async () => {
    await store.stop()
    await fs.rm(dir, { recursive: true, force: true })
  })

  it('names blocks by a CIDv1 over sha2-256 of their bytes', () => {
    const bytes = new TextEncoder().encode('hello')
    const cid = cidForBytes(bytes, RAW)
    assert.equal(cid.version, 1)
    assert.equal(cid.code, RAW)
    assert.equal(cid.multihash.code, 0x12)
    assert.deepEqual(Buffer.from(cid.multihash.digest), createHash('sha256').update('hello').digest())
    assert.equal(cidForBytes(bytes, DAG_CBOR).code, DAG_CBOR)
    assert.notEqual(cidForBytes(bytes, DAG_CBOR).toString(), cid.toString())
  })

  it('round-trips a block, reports presence and stores it under blocks/<shard>/<cid>', async () => {
    const bytes = new Uint8Array([1, 2, 3, 4, 5])
    const cid = cidForBytes(bytes, RAW)
    assert.equal(await store.has(cid), false)
    assert.equal(await store.put(cid, bytes), true)
    assert.equal(await store.has(cid), true)
    assert.deepEqual(new Uint8Array(await store.get(cid)), bytes)
    const name = cid.toString()
    const file = path.join(dir, 'blocks', name.slice(-3, -1), name)
    assert.equal(store.pathFor(cid), file)
    assert.deepEqual(new Uint8Array(await fs.readFile(file)), bytes)
    // nothing but the block itself is left in the shard folder
    assert.deepEqual(await fs.readdir(path.dirname(file)), [name])
  })

  it('put of a block already present returns false and leaves the file alone', async () => {
    const bytes = new Uint8Array([9, 9, 9])
    const cid = cidForBytes(bytes, RAW)
    assert.equal(await store.put(cid, bytes), true)
    const before = await fs.stat(store.pathFor(cid))
    assert.equal(await store.put(cid, bytes), false)
    const after = await fs.stat(store.pathFor(cid))
    assert.equal(after.ino, before.ino)
    assert.equal(after.mtimeMs, before.mtimeMs)
  })

  it('concurrent puts of the same block store it once: exactly one reports it new', async () => {
    const bytes = new Uint8Array(1000).fill(3)
    const cid = cidForBytes(bytes, RAW)
    const results = await Promise.all([store.put(cid, bytes), store.put(cid, bytes), store.put(cid, bytes)])
    assert.deepEqual(results.filter(r => r).length, 1)
  })

  it('a flipped byte in a block file gives CorruptBlockError naming the CID and the file', async () => {
    const bytes = new Uint8Array(64).fill(7)
    const cid = cidForBytes(bytes, RAW)
    await store.put(cid, bytes)
    const file = store.pathFor(cid)
    const damaged = new Uint8Array(await fs.readFile(file))
    damaged[10] ^= 0xff
    await fs.chmod(file, 0o644)
    await fs.writeFile(file, damaged)
    await assert.rejects(store.get(cid), (err: any) => {
      assert.ok(err instanceof CorruptBlockError)
      assert.equal(err.code, 'ERR_CORRUPT_BLOCK')
      assert.ok(err.message.includes(cid.toString()), err.message)
      assert.ok(err.message.includes(file), err.message)
      return true
    })
    // the bad copy is quarantined: the block counts as absent and a good copy can be stored again
    assert.equal(await store.has(cid), false)
    assert.equal((await fs.readdir(path.join(dir, 'quarantine'))).length, 1)
    assert.equal(await store.put(cid, bytes), true)
    assert.ok(Buffer.from(await store.get(cid)).equals(Buffer.from(bytes)))
  })

  it('get of an absent block gives BlockNotFoundError naming the CID', async () => {
    const cid = cidForBytes(new Uint8Array([42]), RAW)
    await assert.rejects(store.get(cid), (err: any) => {
      assert.ok(err instanceof BlockNotFoundError)
      assert.equal(err.code, 'ERR_BLOCK_NOT_FOUND')
      assert.ok(err.message.includes(cid.toString()))
      return true
    })
  })

  it('delete removes a block and ignores an absent one', async () => {
    const bytes = new Uint8Array([5, 6])
    const cid = cidForBytes(bytes, RAW)
    await store.put(cid, bytes)
    await store.delete(cid)
    assert.equal(await store.has(cid), false)
    await store.delete(cid)
    assert.equal(await store.put(cid, bytes), true)
  })

  it('refuses hashes other than sha2-256 with a clear error', async () => {
    const other = CID.createV1(RAW, Digest.create(0x13, new Uint8Array(64)))
    await assert.rejects(store.put(other, new Uint8Array([1])), (err: any) => err instanceof UnsupportedHashError && /0x13/.test(err.message) && err.message.includes(other.toString()))
    await assert.rejects(store.get(other), UnsupportedHashError)
    assert.throws(() => verifyBlock(other, new Uint8Array([1])), UnsupportedHashError)
  })

  it('verifyBlock accepts matching bytes and names the CID on a mismatch', () => {
    const bytes = new Uint8Array([1, 2, 3])
    const cid = cidForBytes(bytes, RAW)
    verifyBlock(cid, bytes)
    assert.throws(() => verifyBlock(cid, new Uint8Array([1, 2, 4])), (err: any) => err instanceof CorruptBlockError && err.message.includes(cid.toString()))
  })

  it('start removes temporary files left by an interrupted put and cids lists the blocks', async () => {
    const a = new Uint8Array([1])
    const b = new Uint8Array([2])
    await store.put(cidForBytes(a, RAW), a)
    await store.put(cidForBytes(b, DAG_CBOR), b)
    const shard = path.dirname(store.pathFor(cidForBytes(a, RAW)))
    const leftover = path.join(shard, '.half-written.tmp')
    await fs.writeFile(leftover, 'partial')
    const again = new FsBlockStore({ path: dir })
    await again.start()
    await assert.rejects(fs.stat(leftover), { code: 'ENOENT' })
    const listed: string[] = []
    for await (const cid of again.cids()) listed.push(cid.toString())
    assert.deepEqual(listed.sort(), [cidForBytes(a, RAW).toString(), cidForBytes(b, DAG_CBOR).toString()].sort())
  })

  it('a block handed over in pieces is stored whole, however many pieces it came in', async () => {
    // more pieces than one writev takes (1024), of uneven sizes
    const pieces = Array.from({ length: 1500 }, (_, i) => new Uint8Array(1 + (i % 7)).fill(i & 0xff))
    const list = new Uint8ArrayList(...pieces)
    const whole = list.subarray()
    const cid = cidForBytes(whole, RAW)
    verifyBlock(cid, list)
    assert.equal(await store.put(cid, list), true)
    assert.ok(Buffer.from(await fs.readFile(store.pathFor(cid))).equals(Buffer.from(whole)))
    assert.ok(Buffer.from(await store.get(cid)).equals(Buffer.from(whole)))
  })

  it('putMany stores every block, says which were new, and leaves no temporary file', async () => {
    const blocks = Array.from({ length: 40 }, (_, i) => new Uint8Array(100 + i).fill(i))
    const entries = blocks.map(bytes => ({ cid: cidForBytes(bytes, RAW), bytes }))
    assert.equal(await store.put(entries[3].cid, entries[3].bytes), true)
    const results = await store.putMany(entries)
    assert.deepEqual(results, entries.map((_, i) => i !== 3))
    for (const { cid, bytes } of entries) assert.ok(Buffer.from(await store.get(cid)).equals(Buffer.from(bytes)))
    for (const shard of await fs.readdir(path.join(dir, 'blocks'))) {
      for (const name of await fs.readdir(path.join(dir, 'blocks', shard))) assert.ok(!name.endsWith('.tmp'), name)
    }
  })

  it('putMany rejects a block it cannot store and still stores the others', async () => {
    const good = new Uint8Array([1, 1, 1])
    const other = CID.createV1(RAW, Digest.create(0x13, new Uint8Array(64)))
    await assert.rejects(store.putMany([{ cid: cidForBytes(good, RAW), bytes: good }, { cid: other, bytes: good }]), UnsupportedHashError)
    assert.equal(await store.has(cidForBytes(good, RAW)), true)
  })

  it('many puts at once into one shard folder all land whole', async () => {
    // blocks whose CIDs share a shard, so that their folder fsyncs overlap
    const byShard = new Map<string, Uint8Array[]>()
    let same: Uint8Array[] = []
    for (let i = 0; same.length < 24; i++) {
      const bytes = new TextEncoder().encode(`block ${i}`)
      const shard = path.dirname(store.pathFor(cidForBytes(bytes, RAW)))
      const list = byShard.get(shard) ?? []
      list.push(bytes)
      byShard.set(shard, list)
      if (list.length > same.length) same = list
    }
    const results = await Promise.all(same.map(async bytes => store.put(cidForBytes(bytes, RAW), bytes)))
    assert.deepEqual(results, same.map(() => true))
    const shard = path.dirname(store.pathFor(cidForBytes(same[0], RAW)))
    assert.equal((await fs.readdir(shard)).length, same.length)
    for (const bytes of same) assert.ok(Buffer.from(await store.get(cidForBytes(bytes, RAW))).equals(Buffer.from(bytes)))
  })

  it('a large block read back is checked too: a flipped last byte is reported and the copy quarantined', async () => {
    const bytes = new Uint8Array(3 * 1024 * 1024).map((_, i) => (i * 7) & 0xff)
    const cid = cidForBytes(bytes, RAW)
    await store.put(cid, bytes)
    verifyBlock(cid, bytes)
    const file = store.pathFor(cid)
    const damaged = new Uint8Array(await fs.readFile(file))
    damaged[damaged.length - 1] ^= 1
    assert.throws(() => verifyBlock(cid, damaged), (err: any) => err instanceof CorruptBlockError && err.message.includes(cid.toString()))
    await fs.chmod(file, 0o644)
    await fs.writeFile(file, damaged)
    await assert.rejects(store.get(cid), (err: any) => err instanceof CorruptBlockError && err.message.includes(file))
    assert.equal(await store.has(cid), false)
  })
})
