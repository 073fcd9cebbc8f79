import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { LocalCluster, waitFor } from '../../scripts/cluster.js'
import { cli, tempDir } from './helpers.js'
import type { SnapshotView } from '../../src/admin/api.js'

/** `freeze <ns>` and `thaw <ns>` lines each agent's hooks append to its hooks.log */
async function hookLog (dir: string): Promise<Array<{ what: string, at: bigint }>> {
  const text = await fs.readFile(path.join(dir, 'hooks.log'), 'utf8').catch(() => '')
  return text.trim().split('\n').filter(Boolean).map(l => { const [what, at] = l.split(' '); return { what, at: BigInt(at) } })
}

describe('integration / barrier snapshots', function () {
  this.timeout(240_000)
  let dir: string
  let cluster: LocalCluster
  const names = ['b1', 'b2', 'b3']

  before(async () => {
    dir = await tempDir('barrier')
    const agents = names.map(name => {
      const home = path.join(dir, name)
      // the pre hook fails while <home>/refuse exists and is slow while <home>/slow exists
      const pre = `test ! -e ${home}/refuse || { echo "cannot freeze ${name}" >&2; exit 3; }; test ! -e ${home}/slow || sleep 4; echo freeze $(date +%s%N) >> ${home}/hooks.log`
      const post = `echo thaw $(date +%s%N) >> ${home}/hooks.log`
      return { name, sources: [{ name: 'files', path: './files', pre: { command: pre, timeoutSeconds: 20 }, post: { command: post } }], extra: { snapshot: { deadlineSeconds: 20, prepareTimeoutSeconds: 8 }, replication: { copies: 1 } } }
    })
    cluster = new LocalCluster({ dir, agents, logToFiles: process.env.SNAPMESH_AGENT_DEBUG != null })
    for (const name of names) {
      await fs.mkdir(path.join(dir, name, 'files'), { recursive: true })
      await fs.writeFile(path.join(dir, name, 'files', 'data.txt'), `data of ${name}\n`)
    }
    await cluster.start()
    for (const agent of cluster.agents) {
      await waitFor(`${agent.name} to see the others`, async () => (await agent.client.peers()).filter(p => p.connected).length >= 2, 30_000)
    }
  })

  after(async () => {
    await cluster?.stop()
    if (process.env.SNAPMESH_KEEP == null) await fs.rm(dir, { recursive: true, force: true })
  })

  it('every host is frozen before any captures, each thaws once, and the snapshot completes', async () => {
    const r = await cli(['--socket', cluster.get('b2').socket, 'snapshot', 'create', '--barrier', '--wait', '--json'], { timeoutMs: 60_000 })
    assert.equal(r.code, 0, r.stdout + r.stderr)
    const snap = JSON.parse(r.stdout) as SnapshotView
    assert.equal(snap.status, 'complete')
    assert.equal(snap.consistency, 'barrier')
    const logs = await Promise.all(cluster.agents.map(async a => hookLog(a.dir)))
    for (const log of logs) assert.deepEqual(log.map(e => e.what), ['freeze', 'thaw'])
    // one instant at which every host was frozen
    const lastFreeze = logs.map(l => l[0].at).reduce((a, b) => a > b ? a : b)
    const firstThaw = logs.map(l => l[1].at).reduce((a, b) => a < b ? a : b)
    assert.ok(lastFreeze < firstThaw, 'a host thawed before another one froze')
    const shown = await cli(['--socket', cluster.get('b1').socket, 'snapshot', 'show', snap.id])
    assert.match(shown.stdout, /status\s+complete/)
  })

  it('a host that cannot freeze aborts the snapshot everywhere with its reason, and every host that froze thaws', async () => {
    await fs.writeFile(path.join(dir, 'b3', 'refuse'), '')
    await fs.writeFile(path.join(dir, 'b1', 'slow'), '')
    try {
      const before = await Promise.all(cluster.agents.map(async a => (await hookLog(a.dir)).length))
      const r = await cli(['--socket', cluster.get('b1').socket, 'snapshot', 'create', '--barrier', '--wait', '--json'], { timeoutMs: 60_000 })
      assert.equal(r.code, 3, r.stdout + r.stderr)
      const snap = JSON.parse(r.stdout) as SnapshotView
      assert.equal(snap.status, 'failed')
      assert.ok((snap.reasons ?? []).some(x => /cannot freeze b3/.test(x)), JSON.stringify(snap.reasons))
      assert.ok(snap.participants.every(p => p.status === 'error'), JSON.stringify(snap.participants))
      const b2 = snap.participants.find(p => p.name === 'b2')
      assert.match(b2?.error ?? '', /aborted: .*could not prepare/)
      // no capture happened, and whoever froze has thawed (b1 was slow: it froze after the abort)
      await waitFor('every frozen host to thaw', async () => {
        const logs = await Promise.all(cluster.agents.map(async a => (await hookLog(a.dir))))
        return logs.slice(0, 2).every((l, i) => l.slice(before[i]).map(e => e.what).join() === 'freeze,thaw')
      }, 20_000)
      // b3's pre hook failed: its post hook ran once to undo whatever the pre hook half did
      assert.deepEqual((await hookLog(cluster.get('b3').dir)).slice(before[2]).map(e => e.what), ['thaw'])
    } finally {
      await fs.rm(path.join(dir, 'b3', 'refuse'), { force: true })
      await fs.rm(path.join(dir, 'b1', 'slow'), { force: true })
    }
  })

  it('a host killed while frozen thaws when it starts again; the snapshot fails, naming it', async () => {
    const victim = cluster.get('b3')
    await fs.writeFile(path.join(dir, 'b1', 'slow'), '')
    try {
      const before = (await hookLog(victim.dir)).length
      const created = await cluster.get('b2').client.createSnapshot({ consistency: 'barrier' })
      await waitFor('b3 to freeze', async () => (await hookLog(victim.dir)).length > before, 20_000, 100)
      // b1 is still freezing: b3 says it is frozen, for this snapshot
      const st = await cli(['--socket', victim.socket, 'status'])
      assert.match(st.stdout, new RegExp(`frozen\\s+for ${created.id.slice(0, 8)}`))
      await victim.kill()
      assert.deepEqual((await hookLog(victim.dir)).slice(before).map(e => e.what), ['freeze'])
      await victim.start()
      await waitFor('b3 to thaw after its restart', async () => (await hookLog(victim.dir)).slice(before).map(e => e.what).join() === 'freeze,thaw', 20_000, 200)
      const done = await waitFor('the snapshot to end', async () => {
        const s = await cluster.get('b2').client.getSnapshot(created.id)
        return s.status !== 'running' ? s : undefined
      }, 60_000, 500)
      assert.equal(done.status, 'failed')
      assert.ok((done.reasons ?? []).some(x => x.includes(victim.peerId)), JSON.stringify(done.reasons))
    } finally {
      await fs.rm(path.join(dir, 'b1', 'slow'), { force: true })
    }
  })
})
