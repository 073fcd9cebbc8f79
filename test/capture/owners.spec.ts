import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import * as dagCbor from '@ipld/dag-cbor'
import { InvalidManifestError, MAX_OWNER_FILE_BYTES, capture, decodeDir, encodeNode, parseOwnerTable, readDir, readOwnerNames, readRoot } from '../../src/capture/index.js'
import { restore } from '../../src/restore/index.js'
import { DAG_CBOR, FsBlockStore, cidForBytes } from '../../src/store/index.js'
import type { Entry } from '../../src/capture/index.js'

const isRoot = process.getuid?.() === 0

describe('capture / owners in the manifest', () => {
  let dir: string
  let src: string
  let blocks: FsBlockStore

  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'snapmesh-owners-'))
    src = path.join(dir, 'src')
    await fs.mkdir(src)
    blocks = new FsBlockStore({ path: path.join(dir, 'store') })
    await blocks.start()
  })

  afterEach(async () => {
    await blocks.stop()
    await fs.rm(dir, { recursive: true, force: true })
  })

  async function entries (root: Awaited<ReturnType<typeof capture>>['root']): Promise<Map<string, Entry>> {
    const r = await readRoot(blocks, root)
    const out = new Map<string, Entry>()
    for await (const e of readDir(blocks, r.sources[0].dir!)) out.set(e.name, e) // eslint-disable-line @typescript-eslint/no-non-null-assertion
    return out
  }

  it('records uid, gid and the names this host has for them, for files, folders, symlinks and the source folder', async () => {
    await fs.writeFile(path.join(src, 'mine'), 'x')
    await fs.mkdir(path.join(src, 'sub'))
    await fs.symlink('mine', path.join(src, 'link'))
    const result = await capture({ blocks }, { peerId: 'p', name: 'h', sources: [{ name: 'data', path: src }] })
    const names = await readOwnerNames()
    const uid = process.getuid?.() ?? 0
    const gid = process.getgid?.() ?? 0
    const expected: { uid: number, gid: number, user?: string, group?: string } = { uid, gid, user: undefined, group: undefined }
    if (names.userName(uid) != null) expected.user = names.userName(uid)
    if (names.groupName(gid) != null) expected.group = names.groupName(gid)
    if (isRoot) assert.deepEqual({ ...expected }, { uid: 0, gid: 0, user: 'root', group: 'root' })
    else if (names.userName(uid) != null) assert.equal(expected.user, os.userInfo().username)
    const got = await entries(result.root)
    for (const name of ['mine', 'sub', 'link']) {
      const e = got.get(name) as any
      assert.deepEqual({ uid: e.uid, gid: e.gid, user: e.user, group: e.group }, expected, name)
    }
    const source = (await readRoot(blocks, result.root)).sources[0]
    assert.deepEqual({ uid: source.uid, gid: source.gid, user: source.user, group: source.group }, expected)
  })

  it('as root records other owners, by number alone where the number has no name, and restores them', async function () {
    if (!isRoot) {
      console.log(`      skipped: "${this.test?.title ?? ''}" needs root to chown (running as uid ${String(process.getuid?.())})`)
      this.skip()
    }
    const names = await readOwnerNames()
    const daemon = names.userId('daemon')
    const daemonGroup = names.groupId('daemon')
    assert.ok(daemon != null && daemonGroup != null, 'this host has a daemon user and group')
    await fs.writeFile(path.join(src, 'daemons'), 'x')
    await fs.chown(path.join(src, 'daemons'), daemon, daemonGroup)
    await fs.writeFile(path.join(src, 'nameless'), 'y')
    await fs.chown(path.join(src, 'nameless'), 54321, 54322)
    await fs.symlink('nameless', path.join(src, 'link'))
    await fs.lchown(path.join(src, 'link'), 54323, 54324)
    const result = await capture({ blocks }, { peerId: 'p', name: 'h', sources: [{ name: 'data', path: src }] })
    const got = await entries(result.root)
    const pick = (e: any): unknown => ({ uid: e.uid, gid: e.gid, user: e.user, group: e.group })
    assert.deepEqual(pick(got.get('daemons')), { uid: daemon, gid: daemonGroup, user: 'daemon', group: 'daemon' })
    assert.deepEqual(pick(got.get('nameless')), { uid: 54321, gid: 54322, user: undefined, group: undefined })
    assert.deepEqual(pick(got.get('link')), { uid: 54323, gid: 54324, user: undefined, group: undefined })
    const target = path.join(dir, 't')
    await restore({ blocks }, { root: result.root, target })
    for (const [name, ids] of [['daemons', [daemon, daemonGroup]], ['nameless', [54321, 54322]], ['link', [54323, 54324]]] as const) {
      const st = await fs.lstat(path.join(target, 'data', name))
      assert.deepEqual([st.uid, st.gid], ids, name)
    }
  })

  it('decodes entries without owners (manifests from before owners) and refuses malformed owner fields', () => {
    const base = { name: 'f', kind: 'file', mode: 0o644, mtimeMs: 0, size: 0, chunks: [] }
    const page = (entry: unknown): { cid: any, bytes: Uint8Array } => {
      const bytes = dagCbor.encode({ v: 1, type: 'snapmesh/dir', entries: [entry] })
      return { cid: cidForBytes(bytes, DAG_CBOR), bytes }
    }
    const old = page(base)
    const e = decodeDir(old.cid, old.bytes).entries[0]
    assert.equal(e.uid, undefined)
    assert.equal(e.user, undefined)
    const good = page({ ...base, uid: 7, gid: 8, user: 'lp', group: 'lp' })
    assert.deepEqual(decodeDir(good.cid, good.bytes).entries[0], { ...base, uid: 7, gid: 8, user: 'lp', group: 'lp' })
    for (const bad of [{ uid: -1 }, { uid: 2 ** 32 }, { gid: 'x' }, { user: '' }, { user: 'a:b' }, { group: 'x'.repeat(300) }, { user: 5 }]) {
      const p = page({ ...base, ...bad })
      assert.throws(() => decodeDir(p.cid, p.bytes), (err: any) => err instanceof InvalidManifestError && err.message.includes(p.cid.toString()), JSON.stringify(bad))
    }
    // writers encode them as given
    assert.ok(encodeNode({ v: 1, type: 'snapmesh/dir', entries: [{ ...base, uid: 1, gid: 2 } as Entry] }).bytes.byteLength > 0)
  })

  it('reads passwd and group files with a bounded reader: first line wins, malformed lines are skipped', async () => {
    const table = parseOwnerTable([
      '# a comment', 'root:x:0:0:root:/root:/bin/sh', 'alice:x:1000:1000::/home/alice:/bin/sh', 'alias:x:1000:1000::/:/bin/sh',
      'alice:x:2000:2000::/:/bin/sh', 'broken line', 'bad:x:notanumber:1', ':x:5:5', '+nis', 'huge:x:99999999999:1'
    ].join('\n'))
    assert.deepEqual([...table.byId], [[0, 'root'], [1000, 'alice'], [2000, 'alice']])
    assert.deepEqual([...table.byName], [['root', 0], ['alice', 1000], ['alias', 1000]])
    const passwd = path.join(dir, 'passwd')
    const group = path.join(dir, 'group')
    await fs.writeFile(passwd, 'svc:x:321:321::/:/bin/false\n')
    await fs.writeFile(group, 'svcgroup:x:654:\n')
    const names = await readOwnerNames({ passwd, group })
    assert.equal(names.userName(321), 'svc')
    assert.equal(names.userId('svc'), 321)
    assert.equal(names.groupName(654), 'svcgroup')
    assert.equal(names.groupId('nobody-here'), undefined)
    // past the limit nothing is read, and a line cut by it is dropped
    const first = 'early:x:111:111::/:/bin/sh\n'
    const filler = '#'.repeat(MAX_OWNER_FILE_BYTES - first.length - 10) + '\n'
    await fs.writeFile(passwd, first + filler + 'cut:x:222:222::/:/bin/sh\nlate:x:333:333::/:/bin/sh\n')
    const bounded = await readOwnerNames({ passwd, group })
    assert.equal(bounded.userName(111), 'early')
    assert.equal(bounded.userName(222), undefined)
    assert.equal(bounded.userName(333), undefined)
    // missing files give no names, not an error
    const none = await readOwnerNames({ passwd: path.join(dir, 'missing'), group: dir })
    assert.equal(none.userName(0), undefined)
    assert.equal(none.groupName(0), undefined)
  })
})
