import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import * as dagCbor from '@ipld/dag-cbor'
import {
  DEFAULT_COMMAND_OUTPUT, InvalidManifestError, InvalidSourceError, MAX_INLINE_CHUNKS,
  capture, decodeRoot, encodeNode, readDir, readRoot
} from '../../src/capture/index.js'
import { CommandFailedError, CommandTimeoutError } from '../../src/hooks/index.js'
import { restore } from '../../src/restore/index.js'
import { DAG_CBOR, FsBlockStore, cidForBytes } from '../../src/store/index.js'
import { alive, killAll, readPid } from '../hooks/fixtures.js'
import { writeSeededFile } from './fixtures.js'
import type { CaptureInit, FileEntry, SourceSpec } from '../../src/capture/index.js'

const CHUNKER = { minSize: 1024, avgSize: 4096, maxSize: 16 * 1024 }

async function sha256 (file: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const piece of (await fs.open(file)).createReadStream()) hash.update(piece)
  return hash.digest('hex')
}

describe('capture / command sources', function () {
  this.timeout(60_000)
  let dir: string
  let blocks: FsBlockStore
  let leftovers: number[]

  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'snapmesh-capture-command-'))
    blocks = new FsBlockStore({ path: path.join(dir, 'store') })
    await blocks.start()
    leftovers = []
  })

  afterEach(async () => {
    killAll(leftovers)
    await blocks.stop()
    await fs.rm(dir, { recursive: true, force: true })
  })

  const run = async (sources: SourceSpec[], init: Partial<CaptureInit> = {}, options = {}): ReturnType<typeof capture> =>
    capture({ blocks }, { peerId: 'peer-1', name: 'host-1', sources, chunker: CHUNKER, ...init }, options)

  it('stores standard output as one file and restores it byte-identical, through a chunk list of many chunks', async () => {
    const dump = path.join(dir, 'dump.bin')
    await writeSeededFile(dump, 6 * 1024 * 1024 + 123, 42)
    const result = await run([{ name: 'db', command: ['cat', dump], output: 'db.sql' }], { clock: () => 1_700_000_000_000 })
    assert.deepEqual(result.problems, [])
    assert.equal(result.stats.files, 1)
    assert.equal(result.stats.bytes, 6 * 1024 * 1024 + 123)
    assert.equal(result.stats.bytesRead, result.stats.bytes)
    assert.ok(result.stats.chunks > MAX_INLINE_CHUNKS, `${result.stats.chunks} chunks: more than fit inline`)

    const root = await readRoot(blocks, result.root)
    assert.deepEqual(root.sources.map(s => [s.name, s.kind, s.path, s.mode]), [['db', 'command', '', 0o700]])
    const entries: FileEntry[] = []
    for await (const e of readDir(blocks, root.sources[0].dir ?? assert.fail('no dir'))) entries.push(e as FileEntry)
    assert.deepEqual(entries.map(e => [e.name, e.kind, e.size, e.mode, e.chunkList != null]), [['db.sql', 'file', 6 * 1024 * 1024 + 123, 0o600, true]])

    const target = path.join(dir, 'restored')
    await restore({ blocks }, { root: result.root, target })
    assert.deepEqual(await fs.readdir(path.join(target, 'db')), ['db.sql'])
    assert.equal(await sha256(path.join(target, 'db', 'db.sql')), await sha256(dump))
    assert.equal((await fs.stat(path.join(target, 'db', 'db.sql'))).mode & 0o777, 0o600)
  })

  it('runs a string through /bin/sh -c, in the source cwd, and names the file "stdout" by default', async () => {
    const cwd = path.join(dir, 'work')
    await fs.mkdir(cwd)
    await fs.writeFile(path.join(cwd, 'table.csv'), 'a,b\n1,2\n')
    const result = await run([{ name: 'db', command: 'cat table.csv | tr , ";"; echo "$SNAPMESH_SOURCE"', cwd }])
    const target = path.join(dir, 'restored')
    await restore({ blocks }, { root: result.root, target })
    assert.equal(DEFAULT_COMMAND_OUTPUT, 'stdout')
    assert.equal(await fs.readFile(path.join(target, 'db', 'stdout'), 'utf8'), 'a;b\n1;2\ndb\n')
  })

  it('captures empty output as an empty file', async () => {
    const result = await run([{ name: 'db', command: ['true'] }])
    const target = path.join(dir, 'restored')
    await restore({ blocks }, { root: result.root, target })
    assert.equal((await fs.stat(path.join(target, 'db', 'stdout'))).size, 0)
  })

  it('reads the output again every time, and the chunk store keeps one copy', async () => {
    const dump = path.join(dir, 'dump.bin')
    await writeSeededFile(dump, 300_000, 7)
    const first = await run([{ name: 'db', command: ['cat', dump] }])
    const second = await run([{ name: 'db', command: ['cat', dump] }], { previous: first.root })
    assert.equal(second.stats.filesRead, 1)
    assert.equal(second.stats.filesReused, 0)
    assert.equal(second.stats.bytesRead, 300_000)
    assert.equal(second.stats.newChunks, 0, 'every chunk was already stored')
    assert.ok(first.stats.newChunks > 10)
  })

  it('sits beside folder sources in one capture', async () => {
    const src = path.join(dir, 'src')
    await fs.mkdir(src)
    await fs.writeFile(path.join(src, 'a.txt'), 'a')
    const result = await run([{ name: 'files', path: src }, { name: 'db', command: ['echo', 'dumped'], output: 'db.txt' }])
    const target = path.join(dir, 'restored')
    await restore({ blocks }, { root: result.root, target })
    assert.equal(await fs.readFile(path.join(target, 'files', 'a.txt'), 'utf8'), 'a')
    assert.equal(await fs.readFile(path.join(target, 'db', 'db.txt'), 'utf8'), 'dumped\n')
    assert.equal(result.stats.files, 2)
  })

  it('a command that exits non-zero fails the capture with its stderr, even after writing output', async () => {
    await assert.rejects(run([{ name: 'db', command: ['sh', '-c', 'echo "-- partial dump"; echo "pg_dump: error: connection to server failed" >&2; exit 1'] }]), (err: any) => {
      assert.ok(err instanceof CommandFailedError)
      assert.equal(err.code, 'ERR_COMMAND_FAILED')
      assert.equal(err.exitCode, 1)
      assert.equal(err.message, 'source "db": command exited with code 1: pg_dump: error: connection to server failed')
      return true
    })
  })

  it('a command that cannot be started fails the capture', async () => {
    await assert.rejects(run([{ name: 'db', command: [path.join(dir, 'no-such-dump')] }]), (err: any) => err instanceof CommandFailedError && /could not be started: .*ENOENT/.test(err.message))
  })

  it('a command that runs past its timeout is killed with its process group and fails the capture', async () => {
    const pidFile = path.join(dir, 'pid')
    const p = run([{ name: 'db', command: ['sh', '-c', `echo "-- started"; sleep 60 & echo $! > "${pidFile}"; echo "waiting for lock" >&2; wait`], timeoutSeconds: 0.5 }])
    const grandchild = await readPid(pidFile)
    leftovers.push(grandchild)
    await assert.rejects(p, (err: any) => {
      assert.ok(err instanceof CommandTimeoutError)
      assert.equal(err.message, 'source "db": command ran longer than its timeout of 0.5 s and was killed: waiting for lock')
      return true
    })
    assert.equal(alive(grandchild), false)
  })

  it('an abort kills the command and throws the abort', async () => {
    const controller = new AbortController()
    const pidFile = path.join(dir, 'pid')
    const p = run([{ name: 'db', command: ['sh', '-c', `yes dump & echo $! > "${pidFile}"; wait`] }], {}, { signal: controller.signal })
    const grandchild = await readPid(pidFile)
    leftovers.push(grandchild)
    controller.abort()
    await assert.rejects(p, { name: 'AbortError' })
    assert.equal(alive(grandchild), false)
  })

  it('a store failure while output streams kills the command and fails the capture', async () => {
    const pidFile = path.join(dir, 'pid')
    const failing = { put: async () => { throw new Error('disk full') }, has: async () => false, get: async () => { throw new Error('not here') } }
    const p = capture({ blocks: failing as any }, {
      peerId: 'p', name: 'h', chunker: CHUNKER,
      sources: [{ name: 'db', command: ['sh', '-c', `yes dump & echo $! > "${pidFile}"; wait`] }]
    })
    const grandchild = await readPid(pidFile)
    leftovers.push(grandchild)
    await assert.rejects(p, /disk full/)
    assert.equal(alive(grandchild), false)
  })

  it('refuses a source with both or neither of path and command, and an output that is not a file name', async () => {
    await assert.rejects(run([{ name: 'db', path: dir, command: ['true'] } as any]), (err: any) => err instanceof InvalidSourceError && /exactly one of path and command/.test(err.message))
    await assert.rejects(run([{ name: 'db' } as any]), /exactly one of path and command/)
    await assert.rejects(run([{ name: 'db', command: ['true'], output: '../escape' }]), /output "..\/escape" must be a single path component/)
    await assert.rejects(run([{ name: 'db', command: [] }]), /source "db": command: /)
  })

  it('the root keeps reading without `kind` (older manifests) and refuses a kind it does not know', () => {
    const dirCid = encodeNode({ v: 1, type: 'snapmesh/dir', entries: [] }).cid
    const old = encodeNode({ v: 1, type: 'snapmesh/root', peerId: 'p', name: 'h', time: 1, sources: [{ name: 'files', path: '/srv', dir: dirCid }] })
    assert.equal(decodeRoot(old.cid, old.bytes).sources[0].kind, undefined)
    const bytes = dagCbor.encode({ v: 1, type: 'snapmesh/root', peerId: 'p', name: 'h', time: 1, sources: [{ name: 'db', path: '', kind: 'pipe', dir: dirCid }] })
    assert.throws(() => decodeRoot(cidForBytes(bytes, DAG_CBOR), bytes), (err: any) => err instanceof InvalidManifestError && /unknown kind "pipe"/.test(err.message))
  })
})
