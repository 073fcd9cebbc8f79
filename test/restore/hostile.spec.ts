import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import * as dagCbor from '@ipld/dag-cbor'
import { readOwnerNames } from '../../src/capture/index.js'
import { applyOwner } from '../../src/restore/owners.js'
import { MARKER_NAME, ManifestExceedsStatsError, ResumeMismatchError, UnsafePathError, restore } from '../../src/restore/index.js'
import { DAG_CBOR, FsBlockStore, RAW, cidForBytes } from '../../src/store/index.js'
import { describeTree } from '../capture/fixtures.js'
import type { BlockGetter } from '../../src/store/index.js'
import type { CID } from 'multiformats/cid'

const isRoot = process.getuid?.() === 0

/** skips a test that needs root (chown), saying why */
function needsRoot (ctx: Mocha.Context): void {
  if (!isRoot) {
    console.log(`      skipped: "${ctx.test?.title ?? ''}" needs root to chown (running as uid ${String(process.getuid?.())})`)
    ctx.skip()
  }
}

describe('restore / hostile manifests', () => {
  let dir: string
  let blocks: FsBlockStore
  let chunk: CID

  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'snapmesh-hostile-'))
    blocks = new FsBlockStore({ path: path.join(dir, 'store') })
    await blocks.start()
    chunk = await put(new TextEncoder().encode('data'), RAW)
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

  const file = (name: string, more: Record<string, unknown> = {}): Record<string, unknown> => ({ name, kind: 'file', mode: 0o644, mtimeMs: 1_000, size: 4, chunks: [[chunk, 4]], ...more })
  const sorted = (entries: any[]): any[] => [...entries].sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)))

  async function folder (entries: unknown[]): Promise<CID> {
    return put({ v: 1, type: 'snapmesh/dir', entries: sorted(entries) })
  }

  async function rootOf (dirCid: CID, source: Record<string, unknown> = {}): Promise<CID> {
    return put({ v: 1, type: 'snapmesh/root', peerId: 'rogue', name: 'rogue', time: 0, sources: [{ name: 'files', path: '/x', dir: dirCid, mode: 0o755, mtimeMs: 0, ...source }] })
  }

  async function everything (): Promise<string[]> {
    return [...(await describeTree(dir)).keys()].filter(p => !p.startsWith('store/')).sort()
  }

  const modeOf = async (p: string): Promise<number> => (await fs.lstat(p)).mode & 0o7777

  describe('special bits', () => {
    let root: CID
    beforeEach(async () => {
      const sticky = await folder([])
      root = await rootOf(await folder([
        file('setuid', { mode: 0o4755, uid: 0, gid: 0 }),
        file('setgid', { mode: 0o2755, uid: 0, gid: 0 }),
        file('unowned-setuid', { mode: 0o6755 }),
        { name: 'tmp', kind: 'dir', mode: 0o1777, mtimeMs: 0, uid: 0, gid: 0, dir: sticky }
      ]))
    })

    it('drops setuid, setgid and sticky bits by default', async () => {
      const target = path.join(dir, 't')
      await restore({ blocks }, { root, target })
      assert.equal(await modeOf(path.join(target, 'files/setuid')), 0o755)
      assert.equal(await modeOf(path.join(target, 'files/setgid')), 0o755)
      assert.equal(await modeOf(path.join(target, 'files/unowned-setuid')), 0o755)
      assert.equal(await modeOf(path.join(target, 'files/tmp')), 0o777)
    })

    it('keeps them with keepSpecialBits where the owner is restored, never setuid or setgid on a file without one', async function () {
      needsRoot(this)
      const target = path.join(dir, 't')
      await restore({ blocks }, { root, target, keepSpecialBits: true })
      assert.equal(await modeOf(path.join(target, 'files/setuid')), 0o4755)
      assert.equal(await modeOf(path.join(target, 'files/setgid')), 0o2755)
      // recorded with no owner (a manifest from before owners): its owner is not restored
      assert.equal(await modeOf(path.join(target, 'files/unowned-setuid')), 0o755)
      assert.equal(await modeOf(path.join(target, 'files/tmp')), 0o1777)
    })

    it('with keepSpecialBits but no owner applied (noOwner, or not root) keeps only the sticky bit', async () => {
      for (const [label, components, init] of [['noOwner', {}, { noOwner: true }], ['not root', { getuid: () => 1000 }, {}]] as const) {
        const target = path.join(dir, label)
        await restore({ blocks, ...components }, { root, target, keepSpecialBits: true, ...init })
        assert.equal(await modeOf(path.join(target, 'files/setuid')), 0o755, label)
        assert.equal(await modeOf(path.join(target, 'files/setgid')), 0o755, label)
        assert.equal(await modeOf(path.join(target, 'files/tmp')), 0o1777, label)
      }
    })
  })

  describe('owners', () => {
    it('as root restores owners by name where the name exists here, else by number; symlinks with lchown', async function () {
      needsRoot(this)
      const names = await readOwnerNames()
      const daemonUid = names.userId('daemon')
      const daemonGid = names.groupId('daemon')
      assert.ok(daemonUid != null && daemonGid != null, 'this host has a daemon user and group')
      const sub = await folder([file('inner', { uid: 4001, gid: 4002 })])
      const root = await rootOf(await folder([
        // the name wins over the number when this host knows it
        file('by-name', { uid: 4242, gid: 4343, user: 'daemon', group: 'daemon' }),
        file('by-number', { uid: 4242, gid: 4343, user: 'no-such-user-snapmesh', group: 'no-such-group-snapmesh' }),
        file('no-owner'),
        { name: 'link', kind: 'symlink', mode: 0o777, mtimeMs: 0, target: 'by-name', uid: 4444, gid: 4545 },
        { name: 'sub', kind: 'dir', mode: 0o750, mtimeMs: 0, uid: 4001, gid: 4002, dir: sub }
      ]), { uid: 4100, gid: 4200 })
      const target = path.join(dir, 't')
      await restore({ blocks }, { root, target })
      const owner = async (p: string): Promise<[number, number]> => { const st = await fs.lstat(path.join(target, 'files', p)); return [st.uid, st.gid] }
      assert.deepEqual(await owner('by-name'), [daemonUid, daemonGid])
      assert.deepEqual(await owner('by-number'), [4242, 4343])
      assert.deepEqual(await owner('no-owner'), [0, 0])
      assert.deepEqual(await owner('link'), [4444, 4545])
      assert.deepEqual(await owner('sub'), [4001, 4002])
      assert.deepEqual(await owner('sub/inner'), [4001, 4002])
      assert.deepEqual(await owner(''), [4100, 4200])
      // the link's target is not what was chowned
      assert.deepEqual((await fs.stat(path.join(target, 'files', 'link'))).uid, daemonUid)
    })

    it('applies no owner with noOwner, nor when not root (and that is no error)', async () => {
      const root = await rootOf(await folder([file('f', { uid: 4242, gid: 4343 })]), { uid: 4100, gid: 4200 })
      const me = [process.getuid?.(), process.getgid?.()]
      for (const [label, components, init] of [['noOwner', {}, { noOwner: true }], ['not root', { getuid: () => 1000 }, {}]] as const) {
        const target = path.join(dir, label)
        await restore({ blocks, ...components }, { root, target, ...init })
        for (const p of ['files/f', 'files']) {
          const st = await fs.lstat(path.join(target, p))
          assert.deepEqual([st.uid, st.gid], me, `${label}: ${p}`)
        }
      }
    })
  })

  it('an owner the file system refuses (EPERM) leaves the entry as created, without setuid or setgid', async () => {
    const refused: string[] = []
    const eperm = async (): Promise<void> => { throw Object.assign(new Error('EPERM: operation not permitted'), { code: 'EPERM' }) }
    assert.equal(await applyOwner({ uid: 5, gid: 6, mode: 0o7755 }, eperm, err => refused.push(err.message)), 0o1755)
    assert.deepEqual(refused, ['EPERM: operation not permitted'])
    assert.equal(await applyOwner({ uid: 5, gid: 6, mode: 0o7755 }, async () => {}, () => {}), 0o7755)
    await assert.rejects(applyOwner({ uid: 5, mode: 0o755 }, async () => { throw Object.assign(new Error('EIO'), { code: 'EIO' }) }, () => {}), /EIO/)
  })

  describe('expansion bound', () => {
    /** a folder that holds `levels` levels of two links to the same folder below: 2^levels copies of two files */
    async function doubling (levels: number): Promise<CID> {
      let at = await folder([file('a'), file('b')])
      for (let i = 0; i < levels; i++) at = await folder([{ name: 'l', kind: 'dir', mode: 0o755, mtimeMs: 0, dir: at }, { name: 'r', kind: 'dir', mode: 0o755, mtimeMs: 0, dir: at }])
      return at
    }

    it('refuses a small DAG that expands past its stats, naming the limit and what it holds, writing nothing', async () => {
      const root = await rootOf(await doubling(30))
      const before = await everything()
      const target = path.join(dir, 't')
      await assert.rejects(restore({ blocks }, { root, target, bound: { files: 10, dirs: 10, symlinks: 0, bytes: 40 } }), (err: any) => {
        assert.ok(err instanceof ManifestExceedsStatsError, String(err))
        assert.equal(err.code, 'ERR_MANIFEST_EXCEEDS_STATS')
        assert.ok(err.message.includes(`${2 ** 31} files`), err.message)
        assert.ok(err.message.includes('10 files'), err.message)
        assert.ok(err.message.includes(`${2 ** 33} bytes`), err.message)
        assert.ok(err.message.includes(root.toString()), err.message)
        return true
      })
      assert.deepEqual(await everything(), before)
    })

    it('allows a plan exactly equal to the stats, and refuses one more of anything', async () => {
      const root = await rootOf(await doubling(2)) // 8 files, 1 + 2 + 4 folders below the source folder, 32 bytes
      const exact = { files: 8, dirs: 7, symlinks: 0, bytes: 32 }
      const stats = await restore({ blocks }, { root, target: path.join(dir, 'ok'), bound: exact })
      assert.deepEqual({ files: stats.files, dirs: stats.dirs, symlinks: stats.symlinks, bytes: stats.bytes }, exact)
      for (const k of ['files', 'dirs', 'bytes'] as const) {
        const target = path.join(dir, `less-${k}`)
        await assert.rejects(restore({ blocks }, { root, target, bound: { ...exact, [k]: exact[k] - 1 } }), ManifestExceedsStatsError)
        await assert.rejects(fs.access(target))
      }
    })

    it('bounds an include restore by the same totals', async () => {
      const root = await rootOf(await doubling(20))
      await restore({ blocks }, { root, target: path.join(dir, 'part'), include: ['files/l/l/l/l/l/l/l/l/l/l/l/l/l/l/l/l/l/l/l/l'], bound: { files: 10, dirs: 30, symlinks: 0, bytes: 40 } })
      assert.deepEqual(await fs.readdir(path.join(dir, 'part/files/l/l/l/l/l/l/l/l/l/l/l/l/l/l/l/l/l/l/l/l')), ['a', 'b'])
      await assert.rejects(restore({ blocks }, { root, target: path.join(dir, 'more'), include: ['files/l/l/l/l/l/l/l/l/l/l'], bound: { files: 10, dirs: 30, symlinks: 0, bytes: 40 } }), ManifestExceedsStatsError)
      await assert.rejects(fs.access(path.join(dir, 'more')))
    })
  })

  describe('resume marker', () => {
    let root: CID
    beforeEach(async () => {
      const names = Array.from({ length: 20 }, (_, i) => `f${String(i).padStart(2, '0')}`)
      const chunks = await Promise.all(names.map(async n => put(new TextEncoder().encode(`content ${n}`), RAW)))
      root = await rootOf(await folder(names.map((n, i) => file(n, { size: 10 + n.length - 2, chunks: [[chunks[i], 10 + n.length - 2]] }))))
    })

    /** a getter that fails after `n` chunks, as an interruption would */
    function failingAfter (n: number): BlockGetter {
      let served = 0
      return {
        get: async (cid, options) => {
          if (cid.code === RAW && served++ >= n) throw new Error('interrupted')
          return blocks.get(cid, options)
        }
      }
    }

    it('writes the marker before the first entry and removes it once the restore completes', async () => {
      const target = path.join(dir, 't')
      await assert.rejects(restore({ blocks: failingAfter(0) }, { root, target, snapshot: 'snap-1', peerId: 'peer-1' }), /interrupted/)
      const marker = JSON.parse(await fs.readFile(path.join(target, MARKER_NAME), 'utf8'))
      assert.deepEqual(marker, { v: 1, root: root.toString(), snapshot: 'snap-1', peerId: 'peer-1' })
      await restore({ blocks }, { root, target: path.join(dir, 'done'), snapshot: 'snap-1', peerId: 'peer-1' })
      assert.deepEqual(await fs.readdir(path.join(dir, 'done')), ['files'])
    })

    it('resumes the same restore, keeping what it wrote, and removes the marker at the end', async () => {
      const target = path.join(dir, 't')
      await assert.rejects(restore({ blocks: failingAfter(5) }, { root, target, snapshot: 'snap-1', peerId: 'peer-1' }), /interrupted/)
      const stats = await restore({ blocks }, { root, target, resume: true, snapshot: 'snap-1', peerId: 'peer-1' })
      assert.ok((stats.filesKept ?? 0) > 0)
      assert.equal(stats.files, 20)
      assert.deepEqual(await fs.readdir(target), ['files'])
    })

    it('refuses to resume a restore of another snapshot, participant or root, naming it, and writes nothing', async () => {
      const target = path.join(dir, 't')
      await assert.rejects(restore({ blocks: failingAfter(5) }, { root, target, snapshot: 'snap-1', peerId: 'peer-1' }), /interrupted/)
      const otherRoot = await rootOf(await folder([file('x')]))
      const before = await describeTree(target)
      for (const init of [{ snapshot: 'snap-2', peerId: 'peer-1', root }, { snapshot: 'snap-1', peerId: 'peer-2', root }, { snapshot: 'snap-1', peerId: 'peer-1', root: otherRoot }]) {
        await assert.rejects(restore({ blocks }, { ...init, target, resume: true }), (err: any) => {
          assert.ok(err instanceof ResumeMismatchError, String(err))
          assert.equal(err.code, 'ERR_RESUME_MISMATCH')
          assert.ok(err.message.includes(`snapshot snap-1 of participant peer-1 (root ${root.toString()})`), err.message)
          return true
        })
        assert.deepEqual(await describeTree(target), before)
      }
    })

    it('refuses to resume into a folder with content and no marker, naming what is there', async () => {
      const target = path.join(dir, 't')
      await fs.mkdir(path.join(target, 'files'), { recursive: true })
      await fs.writeFile(path.join(target, 'files', 'f00'), 'mine')
      await fs.writeFile(path.join(target, 'notes.txt'), 'mine too')
      const before = await describeTree(target)
      await assert.rejects(restore({ blocks }, { root, target, resume: true, snapshot: 'snap-1', peerId: 'peer-1' }), (err: any) => {
        assert.ok(err instanceof ResumeMismatchError, String(err))
        assert.match(err.message, /holds "files", "notes.txt" but no \.snapmesh-restore marker/)
        return true
      })
      assert.deepEqual(await describeTree(target), before)
      // a marker that is a symlink is not one
      await fs.symlink('/etc/hostname', path.join(target, MARKER_NAME))
      await assert.rejects(restore({ blocks }, { root, target, resume: true, snapshot: 'snap-1', peerId: 'peer-1' }), /not a restore marker \(not a regular file\)/)
    })

    it('resume into a missing or empty target is a fresh restore', async () => {
      await fs.mkdir(path.join(dir, 'empty'))
      for (const t of ['empty', 'missing']) {
        const stats = await restore({ blocks }, { root, target: path.join(dir, t), resume: true, snapshot: 'snap-1', peerId: 'peer-1' })
        assert.equal(stats.files, 20)
      }
    })

    it('refuses a source named like the marker', async () => {
      const r = await rootOf(await folder([file('x')]), { name: MARKER_NAME })
      await assert.rejects(restore({ blocks }, { root: r, target: path.join(dir, 't') }), UnsafePathError)
      await assert.rejects(fs.access(path.join(dir, 't')))
    })
  })
})
