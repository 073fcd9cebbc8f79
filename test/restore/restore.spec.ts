import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import * as dagCbor from '@ipld/dag-cbor'
import { capture, encodeChunkListPages, encodeDirPages, manifestBlocks, readDir } from '../../src/capture/index.js'
import { InvalidIncludeError, InvalidTargetError, TargetNotEmptyError, UnsafePathError, restore } from '../../src/restore/index.js'
import { CorruptBlockError, DAG_CBOR, FsBlockStore, RAW, cidForBytes } from '../../src/store/index.js'
import { describeTree, seededBytes, writeSeededFile } from '../capture/fixtures.js'
import type { BlockGetter } from '../../src/store/index.js'
import type { Entry } from '../../src/capture/index.js'
import type { CID } from 'multiformats/cid'

describe('restore / restore', () => {
  let dir: string
  let blocks: FsBlockStore

  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'snapmesh-restore-'))
    blocks = new FsBlockStore({ path: path.join(dir, 'store') })
    await blocks.start()
  })

  afterEach(async () => {
    await blocks.stop()
    await fs.rm(dir, { recursive: true, force: true })
  })

  async function put (node: unknown, codec = DAG_CBOR): Promise<CID> {
    const bytes = codec === DAG_CBOR ? dagCbor.encode(node) : node as Uint8Array
    const cid = cidForBytes(bytes, codec)
    await blocks.put(cid, bytes)
    return cid
  }

  /** a hand-made manifest: one source whose folder lists `entries` */
  async function manifest (entries: unknown[], sourceName = 'files'): Promise<CID> {
    const chunk = await put(new TextEncoder().encode('evil'), RAW)
    const withChunks = entries.map((e: any) => e.kind === 'file' ? { mode: 0o644, mtimeMs: 0, size: 4, chunks: [[chunk, 4]], ...e } : e)
    const dirCid = await put({ v: 1, type: 'snapmesh/dir', entries: withChunks })
    return put({ v: 1, type: 'snapmesh/root', peerId: 'rogue', name: 'rogue', time: 0, sources: [{ name: sourceName, path: '/x', dir: dirCid }] })
  }

  /** every path under `dir`, so a test can show nothing appeared anywhere */
  async function everything (): Promise<string[]> {
    return [...(await describeTree(dir)).keys()].filter(p => !p.startsWith('store/')).sort()
  }

  async function capturedTree (): Promise<{ src: string, root: CID }> {
    const src = path.join(dir, 'src')
    await fs.mkdir(path.join(src, 'etc/conf.d'), { recursive: true })
    await fs.mkdir(path.join(src, 'var/log'), { recursive: true })
    await fs.writeFile(path.join(src, 'etc/hosts'), '127.0.0.1 localhost\n')
    await fs.writeFile(path.join(src, 'etc/conf.d/app.conf'), 'x = 1\n')
    await fs.writeFile(path.join(src, 'var/log/app.log'), seededBytes(50_000, 3))
    const result = await capture({ blocks }, { peerId: 'p', name: 'h', sources: [{ name: 'root', path: src }, { name: 'other', path: path.join(src, 'etc') }], chunker: { minSize: 1024, avgSize: 4096, maxSize: 16384 } })
    return { src, root: result.root }
  }

  for (const [label, name] of [['a ../ entry name', '../escaped.txt'], ['an absolute entry name', '/tmp/escaped.txt'], ['a .. entry name', '..'], ['an empty entry name', ''], ['a name with NUL', 'a\0b']] as const) {
    it(`refuses ${label} with UnsafePathError naming it, and writes nothing at all`, async () => {
      const root = await manifest([{ name: 'aaa-fine.txt', kind: 'file' }, { name, kind: 'file' }].sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name))))
      const before = await everything()
      const target = path.join(dir, 'target', 'inner')
      await assert.rejects(restore({ blocks }, { root, target }), (err: any) => {
        assert.ok(err instanceof UnsafePathError, String(err))
        assert.equal(err.code, 'ERR_UNSAFE_PATH')
        assert.ok(err.message.includes(JSON.stringify(`files/${name}`)), err.message)
        return true
      })
      assert.deepEqual(await everything(), before)
    })
  }

  it('refuses an unsafe name deep in the tree before writing the safe files next to the root', async () => {
    const chunk = await put(new TextEncoder().encode('evil'), RAW)
    const deep = await put({ v: 1, type: 'snapmesh/dir', entries: [{ name: '..', kind: 'dir', mode: 0o755, mtimeMs: 0, dir: await put({ v: 1, type: 'snapmesh/dir', entries: [] }) }] })
    const top = await put({ v: 1, type: 'snapmesh/dir', entries: [{ name: 'a.txt', kind: 'file', mode: 0o644, mtimeMs: 0, size: 4, chunks: [[chunk, 4]] }, { name: 'sub', kind: 'dir', mode: 0o755, mtimeMs: 0, dir: deep }] })
    const root = await put({ v: 1, type: 'snapmesh/root', peerId: 'p', name: 'h', time: 0, sources: [{ name: 'files', path: '/x', dir: top }] })
    const target = path.join(dir, 'target')
    await assert.rejects(restore({ blocks }, { root, target }), (err: any) => err instanceof UnsafePathError && err.message.includes('"files/sub/.."'))
    await assert.rejects(fs.stat(target), { code: 'ENOENT' })
  })

  it('refuses an unsafe source name', async () => {
    const root = await manifest([{ name: 'x', kind: 'file' }], '..')
    const target = path.join(dir, 'target')
    await assert.rejects(restore({ blocks }, { root, target }), (err: any) => err instanceof UnsafePathError && err.message.includes('".."'))
    await assert.rejects(fs.stat(target), { code: 'ENOENT' })
  })

  it('refuses to write through a folder that is a symlink in the target, and nothing lands outside', async () => {
    const outside = path.join(dir, 'outside')
    await fs.mkdir(outside)
    const target = path.join(dir, 'target')
    await fs.mkdir(path.join(target, 'files'), { recursive: true })
    await fs.symlink(outside, path.join(target, 'files', 'sub'))
    const subDir = await put({ v: 1, type: 'snapmesh/dir', entries: [{ name: 'planted', kind: 'file', mode: 0o644, mtimeMs: 0, size: 0, chunks: [] }] })
    const top = await put({ v: 1, type: 'snapmesh/dir', entries: [{ name: 'sub', kind: 'dir', mode: 0o755, mtimeMs: 0, dir: subDir }] })
    const root = await put({ v: 1, type: 'snapmesh/root', peerId: 'p', name: 'h', time: 0, sources: [{ name: 'files', path: '/x', dir: top }] })
    await assert.rejects(restore({ blocks }, { root, target, overwrite: true }), (err: any) => {
      assert.ok(err instanceof UnsafePathError, String(err))
      assert.ok(err.message.includes('"files/sub"'), err.message)
      assert.match(err.message, /symlink/)
      return true
    })
    assert.deepEqual(await fs.readdir(outside), [])
  })

  it('refuses a source folder that is a symlink in the target', async () => {
    const outside = path.join(dir, 'outside')
    await fs.mkdir(outside)
    const target = path.join(dir, 'target')
    await fs.mkdir(target)
    await fs.symlink(outside, path.join(target, 'files'))
    const root = await manifest([{ name: 'x', kind: 'file' }])
    await assert.rejects(restore({ blocks }, { root, target, overwrite: true }), UnsafePathError)
    assert.deepEqual(await fs.readdir(outside), [])
  })

  it('refuses a non-empty target unless overwrite is given; overwrite replaces files and keeps the rest', async () => {
    const { src, root } = await capturedTree()
    const target = path.join(dir, 'target')
    await fs.mkdir(path.join(target, 'root/etc'), { recursive: true })
    await fs.writeFile(path.join(target, 'root/etc/hosts'), 'stale')
    await fs.writeFile(path.join(target, 'unrelated'), 'mine')
    await assert.rejects(restore({ blocks }, { root, target }), (err: any) => err instanceof TargetNotEmptyError && err.message.includes(target))
    assert.equal(await fs.readFile(path.join(target, 'root/etc/hosts'), 'utf8'), 'stale')
    await restore({ blocks }, { root, target, overwrite: true })
    assert.deepEqual(await describeTree(path.join(target, 'root')), await describeTree(src))
    assert.equal(await fs.readFile(path.join(target, 'unrelated'), 'utf8'), 'mine')
  })

  it('refuses a relative target and a target that is a file', async () => {
    const { root } = await capturedTree()
    await assert.rejects(restore({ blocks }, { root, target: 'relative/dir' }), InvalidTargetError)
    await fs.writeFile(path.join(dir, 'file'), '')
    await assert.rejects(restore({ blocks }, { root, target: path.join(dir, 'file') }), InvalidTargetError)
  })

  it('restores only the included subtrees, with the folders leading to them', async () => {
    const { src, root } = await capturedTree()
    const target = path.join(dir, 'target')
    const stats = await restore({ blocks }, { root, target, include: ['root/etc/conf.d', 'root/var/log/app.log'] })
    assert.deepEqual([...(await describeTree(target)).keys()].sort(), ['root', 'root/etc', 'root/etc/conf.d', 'root/etc/conf.d/app.conf', 'root/var', 'root/var/log', 'root/var/log/app.log'])
    assert.equal(stats.files, 2)
    assert.deepEqual(await fs.readFile(path.join(target, 'root/var/log/app.log')), await fs.readFile(path.join(src, 'var/log/app.log')))
  })

  it('an include that matches nothing, or goes through a file, is refused before writing', async () => {
    const { root } = await capturedTree()
    const target = path.join(dir, 'target')
    await assert.rejects(restore({ blocks }, { root, target, include: ['root/etc/nope'] }), (err: any) => err instanceof InvalidIncludeError && err.message.includes('root/etc/nope'))
    await assert.rejects(restore({ blocks }, { root, target, include: ['nosource/x'] }), (err: any) => err instanceof InvalidIncludeError && err.message.includes('nosource'))
    await assert.rejects(restore({ blocks }, { root, target, include: ['root/etc/hosts/x'] }), (err: any) => err instanceof InvalidIncludeError && /not a folder/.test(err.message))
    await assert.rejects(restore({ blocks }, { root, target, include: ['root/../etc'] }), InvalidIncludeError)
    await assert.rejects(fs.stat(target), { code: 'ENOENT' })
  })

  it('verifies every block itself, even when the getter hands back wrong bytes', async () => {
    const { root } = await capturedTree()
    const lying: BlockGetter = {
      get: async (cid, options) => {
        const bytes = await blocks.get(cid, options)
        return cid.code === RAW ? new Uint8Array(bytes.length) : bytes
      }
    }
    await assert.rejects(restore({ blocks: lying }, { root, target: path.join(dir, 'target') }), (err: any) => err instanceof CorruptBlockError && /bafk/.test(err.message))
  })

  it('reports progress: the totals first, then each file', async () => {
    const { root } = await capturedTree()
    const events: any[] = []
    await restore({ blocks }, { root, target: path.join(dir, 'target'), include: ['root/etc'] }, { onProgress: (ev: any) => events.push({ type: ev.type, ...ev.detail }) })
    assert.deepEqual(events[0], { type: 'restore:start', files: 2, dirs: 3, symlinks: 0, bytes: 26 })
    assert.deepEqual(events.slice(1).sort((a, b) => a.path.localeCompare(b.path)), [
      { type: 'restore:file', path: 'root/etc/conf.d/app.conf', bytes: 6 },
      { type: 'restore:file', path: 'root/etc/hosts', bytes: 20 }
    ])
  })

  /** a getter that counts how often each block is asked for */
  function counting (): { getter: BlockGetter, counts: Map<string, number> } {
    const counts = new Map<string, number>()
    return {
      counts,
      getter: {
        get: async (cid, options) => {
          counts.set(cid.toString(), (counts.get(cid.toString()) ?? 0) + 1)
          return blocks.get(cid, options)
        }
      }
    }
  }

  /**
   * A manifest whose folder `files` spans two pages (2,001 symlinks, a file whose chunks are in
   * two chunk-list pages, a folder `sub`), and a second source `copy` that is the same folder as
   * `files/sub` (one CID at two places).
   */
  async function pagedManifest (): Promise<{ root: CID, sub: CID, files: CID[], chunkLists: CID[] }> {
    const putAll = async (list: Array<{ cid: CID, bytes: Uint8Array }>): Promise<void> => { for (const b of list) await blocks.put(b.cid, b.bytes) }
    const chunks: Array<[CID, number]> = []
    for (let i = 0; i < 1500; i++) chunks.push([await put(new TextEncoder().encode(String(i).padStart(4, '0')), RAW), 4])
    const lists = encodeChunkListPages(chunks)
    await putAll(lists)
    const inner = await put(new TextEncoder().encode('inner'), RAW)
    const subPages = encodeDirPages([{ name: 'inner.txt', kind: 'file', mode: 0o644, mtimeMs: 1_000, size: 5, chunks: [[inner, 5]] }])
    await putAll(subPages)
    const sub = subPages[subPages.length - 1].cid
    const entries: Entry[] = [{ name: 'big.bin', kind: 'file', mode: 0o600, mtimeMs: 2_000, size: 6000, chunkList: lists[lists.length - 1].cid }]
    for (let i = 0; i < 2001; i++) entries.push({ name: `link-${String(i).padStart(4, '0')}`, kind: 'symlink', mode: 0o777, mtimeMs: 3_000, target: `target-${i}` })
    entries.push({ name: 'sub', kind: 'dir', mode: 0o755, mtimeMs: 4_000, dir: sub })
    const filesPages = encodeDirPages(entries)
    await putAll(filesPages)
    const root = await put({ v: 1, type: 'snapmesh/root', peerId: 'p', name: 'h', time: 0, sources: [{ name: 'copy', path: '/y', dir: sub, mode: 0o755, mtimeMs: 0 }, { name: 'files', path: '/x', dir: filesPages[filesPages.length - 1].cid, mode: 0o755, mtimeMs: 0 }] })
    return { root, sub, files: filesPages.map(p => p.cid), chunkLists: lists.map(l => l.cid) }
  }

  it('fetches each manifest node once, a folder that appears twice included', async function () {
    this.timeout(60_000)
    const { root, sub, files, chunkLists } = await pagedManifest()
    assert.equal(files.length, 2, 'the folder spans two pages')
    assert.equal(chunkLists.length, 2, 'the file has two chunk-list pages')
    const manifestNodes: string[] = []
    for await (const { cid, kind } of manifestBlocks(blocks, root)) if (kind !== 'chunk') manifestNodes.push(cid.toString())
    assert.equal(manifestNodes.length, 1 + 2 + 2 + 1)

    // the counter sees fetches: reading a folder twice through it counts its page twice
    const control = counting()
    for (let i = 0; i < 2; i++) for await (const entry of readDir(control.getter, sub)) assert.equal(entry.name, 'inner.txt')
    assert.equal(control.counts.get(sub.toString()), 2)

    const { getter, counts } = counting()
    const target = path.join(dir, 'target')
    const stats = await restore({ blocks: getter }, { root, target })
    assert.equal(stats.symlinks, 2001)
    assert.equal(stats.files, 3)
    assert.equal(stats.dirs, 3)
    assert.equal(await fs.readFile(path.join(target, 'copy/inner.txt'), 'utf8'), 'inner')
    assert.equal(await fs.readFile(path.join(target, 'files/sub/inner.txt'), 'utf8'), 'inner')
    assert.equal((await fs.stat(path.join(target, 'files/big.bin'))).size, 6000)
    assert.deepEqual(manifestNodes.map(c => [c, counts.get(c)]), manifestNodes.map(c => [c, 1]))
  })

  it('fetches each selected manifest node once with includes, and no node outside them', async () => {
    const { root, sub, files, chunkLists } = await pagedManifest()
    const { getter, counts } = counting()
    const target = path.join(dir, 'target')
    const stats = await restore({ blocks: getter }, { root, target, include: ['files/sub/inner.txt', 'copy'] })
    assert.equal(stats.files, 2)
    assert.deepEqual([root, ...files, sub].map(c => counts.get(c.toString())), [1, 1, 1, 1])
    assert.deepEqual(chunkLists.map(c => counts.get(c.toString())), [undefined, undefined])
  })

  it('captures and restores a 64 MiB file byte for byte with memory far below its size', async function () {
    const src = path.join(dir, 'big-src')
    await fs.mkdir(src)
    const size = 64 * 1024 * 1024
    await writeSeededFile(path.join(src, 'big.bin'), size, 11)
    global.gc?.()
    const base = process.memoryUsage().rss
    let peak = base
    const timer = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss) }, 5)
    try {
      const result = await capture({ blocks }, { peerId: 'p', name: 'h', sources: [{ name: 'big', path: src }] })
      assert.equal(result.stats.bytes, size)
      const target = path.join(dir, 'target')
      await restore({ blocks }, { root: result.root, target })
      peak = Math.max(peak, process.memoryUsage().rss)
      assert.deepEqual(await describeTree(path.join(target, 'big')), await describeTree(src))
    } finally {
      clearInterval(timer)
    }
    const growth = peak - base
    assert.ok(growth < 40 * 1024 * 1024, `RSS grew by ${(growth / 1048576).toFixed(1)} MiB`)
  })
})
