import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { capture, readDir, readRoot } from '../../src/capture/index.js'
import { HookFailedError } from '../../src/hooks/index.js'
import { FsBlockStore } from '../../src/store/index.js'
import { lines } from '../hooks/fixtures.js'
import type { CaptureInit, SourceSpec } from '../../src/capture/index.js'

const CHUNKER = { minSize: 1024, avgSize: 4096, maxSize: 16 * 1024 }

describe('capture / hooks', function () {
  this.timeout(30_000)
  let dir: string
  let src: string
  let log: string
  let blocks: FsBlockStore

  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'snapmesh-capture-hooks-'))
    src = path.join(dir, 'src')
    log = path.join(dir, 'log')
    await fs.mkdir(src)
    await fs.writeFile(path.join(src, 'data.txt'), 'data\n')
    blocks = new FsBlockStore({ path: path.join(dir, 'store') })
    await blocks.start()
  })

  afterEach(async () => {
    await blocks.stop()
    await fs.rm(dir, { recursive: true, force: true })
  })

  const run = async (sources: SourceSpec[], init: Partial<CaptureInit> = {}, options = {}): ReturnType<typeof capture> =>
    capture({ blocks }, { peerId: 'peer-1', name: 'host-1', sources, chunker: CHUNKER, ...init }, options)

  /** a shell hook that appends `word` to the log, then runs `more` */
  const sh = (word: string, more = ''): { command: string } => ({ command: `echo ${word} >> "${log}"; ${more}` })

  async function names (root: Awaited<ReturnType<typeof capture>>['root'], source: string): Promise<string[]> {
    const r = await readRoot(blocks, root)
    const dirCid = r.sources.find(s => s.name === source)?.dir
    assert.ok(dirCid != null, `source ${source} has a folder`)
    const out: string[] = []
    for await (const e of readDir(blocks, dirCid)) out.push(e.name)
    return out
  }

  it('runs every pre hook before reading anything and every post hook after, in reverse', async () => {
    const result = await run([
      // the pre hook writes a file the capture must see; the post hook one it must not
      { name: 'files', path: src, pre: sh('pre-files', `echo flushed > "${src}/flushed.txt"`), post: sh('post-files', `echo late > "${src}/late.txt"`) },
      { name: 'other', path: src, pre: sh('pre-other'), post: sh('post-other') }
    ])
    assert.deepEqual(await lines(log), ['pre-files', 'pre-other', 'post-other', 'post-files'])
    assert.deepEqual(await names(result.root, 'files'), ['data.txt', 'flushed.txt'])
    assert.deepEqual(result.problems, [])
  })

  it('a failing pre hook fails the capture with its stderr; its post hook still runs and nothing is read', async () => {
    let progress = 0
    await assert.rejects(run([
      { name: 'files', path: src, pre: sh('pre', 'echo "FLUSH TABLES WITH READ LOCK: timeout" >&2; exit 1'), post: sh('post') }
    ], {}, { onProgress: () => { progress++ } }), (err: any) => {
      assert.ok(err instanceof HookFailedError)
      assert.equal(err.message, 'source "files": pre hook exited with code 1: FLUSH TABLES WITH READ LOCK: timeout')
      return true
    })
    assert.deepEqual(await lines(log), ['pre', 'post'])
    assert.equal(progress, 0, 'no file was captured')
  })

  it('post hooks run after a capture that fails', async () => {
    await assert.rejects(run([
      { name: 'files', path: src, pre: sh('pre-files'), post: sh('post-files') },
      { name: 'dump', command: ['sh', '-c', 'echo "pg_dump: connection refused" >&2; exit 2'], post: sh('post-dump') }
    ]), /source "dump": command exited with code 2: pg_dump: connection refused/)
    assert.deepEqual(await lines(log), ['pre-files', 'post-dump', 'post-files'])
  })

  it('post hooks run after a capture that is aborted, and the abort is what it throws', async () => {
    const controller = new AbortController()
    const p = run([
      { name: 'files', path: src, pre: sh('pre'), post: sh('post') },
      { name: 'dump', command: `echo dumping >> "${log}"; sleep 60` }
    ], {}, { signal: controller.signal })
    // abort once the capture runs (the dump started), not while the pre hook does
    while (!(await lines(log)).includes('dumping')) await new Promise(resolve => setTimeout(resolve, 20))
    controller.abort()
    await assert.rejects(p, { name: 'AbortError' })
    assert.deepEqual(await lines(log), ['pre', 'dumping', 'post'])
  })

  it('a post hook that fails after a good capture is a problem in the result, not a failure', async () => {
    const result = await run([
      { name: 'files', path: src, post: { command: 'echo "cannot thaw /srv" >&2; exit 7' } }
    ])
    assert.deepEqual(result.problems, [{ source: 'files', path: '', message: 'source "files": post hook exited with code 7: cannot thaw /srv' }])
    assert.deepEqual(await names(result.root, 'files'), ['data.txt'])
  })

  it('skipHooks leaves hooks to the caller', async () => {
    const result = await run([{ name: 'files', path: src, pre: sh('pre', 'exit 1'), post: sh('post') }], { skipHooks: true })
    assert.deepEqual(await lines(log), [])
    assert.deepEqual(await names(result.root, 'files'), ['data.txt'])
  })

  it('refuses a bad hook before running any', async () => {
    await assert.rejects(run([
      { name: 'files', path: src, pre: sh('pre') },
      { name: 'other', path: src, post: { command: [''] } }
    ]), /source "other": post hook: the program/)
    assert.deepEqual(await lines(log), [])
  })
})
