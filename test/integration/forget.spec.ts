import assert from 'node:assert/strict'
import crypto from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { LocalCluster, waitFor } from '../../scripts/cluster.js'
import { cli, describeTree, makeTree, tempDir } from './helpers.js'
import { capture } from '../../src/capture/index.js'
import { FsBlockStore, RAW } from '../../src/store/index.js'
import { CID } from 'multiformats/cid'
import type { ForgetResultView, SnapshotView } from '../../src/admin/api.js'

/** the chunk CIDs of one file, cut as the agents cut it (into a scratch store) */
async function chunksOf (file: string, scratch: string): Promise<string[]> {
  const store = new FsBlockStore({ path: scratch })
  await store.start()
  const dir = path.join(scratch, 'src')
  await fs.mkdir(dir, { recursive: true })
  await fs.copyFile(file, path.join(dir, 'f'))
  await capture({ blocks: store }, { peerId: '12D3KooWQbKkGa7xjDTtyVmjVuHKDNJ9qGpsanqNfwbyBu3g5aph', name: 'x', sources: [{ name: 'x', path: dir }] })
  const out: string[] = []
  for await (const c of store.cids()) if (c.code === RAW) out.push(c.toString())
  return out
}

/** how many of these blocks the agent's store holds */
async function held (agentDir: string, cids: string[]): Promise<number> {
  const store = new FsBlockStore({ path: path.join(agentDir, 'data', 'store') })
  let n = 0
  for (const c of cids) {
    try {
      await fs.access(store.pathFor(CID.parse(c)))
      n++
    } catch {}
  }
  return n
}

describe('integration / forget and prune', function () {
  this.timeout(240_000)
  let dir: string
  let cluster: LocalCluster
  const names = ['f1', 'f2', 'f3']

  before(async () => {
    dir = await tempDir('forget')
    cluster = new LocalCluster({
      dir,
      agents: names.map(name => ({ name, extra: { replication: { copies: 2 }, retention: { pruneGraceSeconds: 0 }, network: { syncSeconds: 2 } } })),
      logToFiles: process.env.SNAPMESH_AGENT_DEBUG != null
    })
    for (const name of names) await makeTree(path.join(dir, name, 'files'), name)
    await cluster.start()
    for (const agent of cluster.agents) {
      await waitFor(`${agent.name} to see the others`, async () => (await agent.client.peers()).filter(p => p.connected).length >= 2, 30_000)
    }
  })

  after(async () => {
    await cluster?.stop()
    if (process.env.SNAPMESH_KEEP == null) await fs.rm(dir, { recursive: true, force: true })
  })

  const protectedSnapshot = async (tag: string, on: string): Promise<SnapshotView> => {
    const r = await cli(['--socket', cluster.get(on).socket, 'snapshot', 'create', '--tag', tag, '--wait', '--json'], { timeoutMs: 90_000 })
    assert.equal(r.code, 0, r.stderr)
    const snap = JSON.parse(r.stdout) as SnapshotView
    assert.equal(snap.status, 'complete')
    return waitFor(`${tag} to be protected`, async () => {
      const v = await cluster.get(on).client.getSnapshot(snap.id)
      return v.protected ? v : undefined
    }, 60_000, 500)
  }

  it('forget --keep-last 1 --prune forgets the older snapshot everywhere, an agent that was down included, and frees the blocks only it needed', async () => {
    const f1 = cluster.get('f1')
    const f3 = cluster.get('f3')
    const gone = path.join(f1.sourcesDir, 'gone.bin')
    await fs.writeFile(gone, crypto.randomBytes(3 << 20))
    const goneChunks = await chunksOf(gone, path.join(dir, 'scratch'))
    assert.ok(goneChunks.length >= 2)
    const old = await protectedSnapshot('old', 'f1')
    // replicated: every chunk of the file is at two agents
    assert.equal((await Promise.all(cluster.agents.map(async a => held(a.dir, goneChunks)))).reduce((x, y) => x + y, 0), 2 * goneChunks.length)

    await fs.rm(gone)
    const kept = await protectedSnapshot('new', 'f2')
    const reference = await describeTree(f1.sourcesDir)
    await f3.stop()

    // the dry run is f2's: it would delete the chunks of the removed file that placement gave f2
    // (f2 holds some, f3 the rest), and at least f2's own root of the old snapshot (roots carry a time)
    const onF2 = await held(cluster.get('f2').dir, goneChunks)
    const dry = await cli(['--socket', cluster.get('f2').socket, 'forget', '--keep-last', '1', '--dry-run', '--prune', '--json'])
    assert.equal(dry.code, 0, dry.stderr)
    const dryView = JSON.parse(dry.stdout) as ForgetResultView
    assert.deepEqual(dryView.forgotten.map(s => s.id), [old.id])
    assert.ok((dryView.prune?.deleted ?? 0) >= onF2 + 1, `f2 holds ${onF2} of the ${goneChunks.length} chunks: ${JSON.stringify(dryView.prune)}`)
    assert.equal((await cluster.get('f2').client.listSnapshots()).length, 2, 'a dry run forgets nothing')

    const text = await cli(['--socket', cluster.get('f2').socket, 'forget', '--keep-last', '1', '--prune'], { timeoutMs: 60_000 })
    assert.equal(text.code, 0, text.stderr)
    assert.match(text.stdout, new RegExp(`keep 1 snapshots:[\\s\\S]*${kept.id.slice(0, 8)}.*last`))
    assert.match(text.stdout, new RegExp(`forgot 1 snapshots:[\\s\\S]*${old.id.slice(0, 8)}`))
    assert.match(text.stdout, /prune: .* deleted \d+ blocks/)

    for (const name of ['f1', 'f2']) {
      const agent = cluster.get(name)
      await waitFor(`${name} to forget the old snapshot and drop its blocks`, async () =>
        !(await agent.client.listSnapshots()).some(s => s.id === old.id) && await held(agent.dir, goneChunks) === 0, 30_000, 500)
      const show = await cli(['--socket', agent.socket, 'snapshot', 'show', old.id])
      assert.notEqual(show.code, 0)
      assert.match(show.stderr, /no snapshot matches/)
    }

    // f3 was down: its catalog still has the record, its store the copies; the notice reaches it
    // through the others' heads, and the record it republishes at start is not taken back
    await f3.start()
    await waitFor('f3 to forget the old snapshot from the heads and prune', async () =>
      !(await f3.client.listSnapshots()).some(s => s.id === old.id) && await held(f3.dir, goneChunks) === 0, 60_000, 500)
    await new Promise(resolve => setTimeout(resolve, 5000))
    for (const agent of cluster.agents) {
      assert.deepEqual((await agent.client.listSnapshots()).map(s => s.id), [kept.id], `${agent.name} lists only the kept snapshot`)
    }

    // the kept snapshot is whole: every copy re-hashed, and f1's part restores byte for byte on f3
    const check = await cli(['--socket', f3.socket, 'verify', kept.id, '--read-data', '--json'], { timeoutMs: 60_000 })
    assert.equal(check.code, 0, check.stdout + check.stderr)
    const target = path.join(dir, 'restored-f1')
    const res = await cli(['--socket', f3.socket, 'restore', kept.id, '--node', 'f1', '--target', target, '--json'], { timeoutMs: 60_000 })
    assert.equal(res.code, 0, res.stderr)
    assert.deepEqual(await describeTree(path.join(target, 'files')), reference)

    // naming nothing is refused
    const none = await cli(['--socket', f3.socket, 'forget'])
    assert.equal(none.code === 0, false)
    assert.match(none.stderr, /nothing to forget/)
  })
})
