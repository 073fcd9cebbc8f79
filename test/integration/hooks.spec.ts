import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { LocalCluster, waitFor } from '../../scripts/cluster.js'
import { writeSeededFile } from '../capture/fixtures.js'
import { cli, makeTree, tempDir } from './helpers.js'
import type { SnapshotView } from '../../src/admin/api.js'

async function sha256 (file: string): Promise<string> {
  return createHash('sha256').update(await fs.readFile(file)).digest('hex')
}

async function lines (file: string): Promise<string[]> {
  return (await fs.readFile(file, 'utf8').catch(() => '')).split('\n').filter(l => l !== '')
}

describe('integration / hooks and command sources', function () {
  this.timeout(180_000)
  let dir: string
  let cluster: LocalCluster
  let snap: SnapshotView
  let expectedDump: string

  before(async () => {
    dir = await tempDir('hooks')
    // app: a folder source and a database dump framed by pre and post hooks that write marker files
    // plain: nothing special; broken: a pre hook that fails
    cluster = new LocalCluster({
      dir,
      deadlineSeconds: 10,
      agents: [
        {
          name: 'app',
          extra: {
            sources: [
              { name: 'files', path: './files' },
              {
                name: 'db',
                // the dump ends with what the pre hook left in `state`, so it shows the pre hook ran first
                command: ['sh', '-c', 'cat table.bin; cat state'],
                output: 'db.dump',
                timeoutSeconds: 60,
                pre: { command: 'echo "pre $SNAPMESH_SOURCE" >> markers.log; echo frozen > state', timeoutSeconds: 10 },
                post: { command: ['sh', '-c', 'echo "post $SNAPMESH_SOURCE" >> markers.log; echo thawed > state'] }
              }
            ]
          }
        },
        'plain',
        {
          name: 'broken',
          extra: {
            sources: [{
              name: 'files',
              path: './files',
              pre: { command: 'echo "cannot quiesce the app: socket /run/app.sock busy" >&2; exit 3' },
              post: { command: 'echo "post $SNAPMESH_SOURCE" >> markers.log' }
            }]
          }
        }
      ]
    })
    for (const name of ['app', 'plain', 'broken']) {
      await makeTree(path.join(dir, name, 'files'), name)
    }
    // larger than a few chunks (chunks average 1 MiB): the dump streams through the chunker
    const table = path.join(dir, 'app', 'table.bin')
    await fs.mkdir(path.dirname(table), { recursive: true })
    await writeSeededFile(table, 5 * 1024 * 1024 + 17, 3)
    const expected = path.join(dir, 'expected.dump')
    await fs.writeFile(expected, Buffer.concat([await fs.readFile(table), Buffer.from('frozen\n')]))
    expectedDump = await sha256(expected)
    await cluster.start()
    for (const agent of cluster.agents) {
      await waitFor(`${agent.name} to see the others`, async () => (await agent.client.peers()).filter(p => p.connected).length >= 2, 30_000)
    }
  })

  after(async () => {
    await cluster?.stop()
    await fs.rm(dir, { recursive: true, force: true })
  })

  it('a snapshot with a failing pre hook on one host is partial, and that host\'s result carries the hook\'s stderr', async () => {
    const { code, stdout, stderr } = await cli(['--socket', cluster.get('plain').socket, 'snapshot', 'create', '--wait', '--json'], { timeoutMs: 90_000 })
    assert.equal(code, 3, `a snapshot that is not complete exits with 3: ${stderr}`)
    snap = JSON.parse(stdout)
    assert.equal(snap.status, 'partial')
    const byName = new Map(snap.participants.map(p => [p.name, p]))
    assert.equal(byName.get('app')?.status, 'ok')
    assert.equal(byName.get('plain')?.status, 'ok')
    const broken = byName.get('broken')
    assert.equal(broken?.status, 'error')
    assert.equal(broken?.error, 'source "files": pre hook exited with code 3: cannot quiesce the app: socket /run/app.sock busy')
    assert.ok((snap.reasons ?? []).some(r => r.includes('broken')), (snap.reasons ?? []).join('; '))
  })

  it('the failing host still ran its post hook', async () => {
    assert.deepEqual(await lines(path.join(dir, 'broken', 'markers.log')), ['post files'])
  })

  it('pre ran before the dump and post after it, once each', async () => {
    assert.deepEqual(await lines(path.join(dir, 'app', 'markers.log')), ['pre db', 'post db'])
    assert.equal(await fs.readFile(path.join(dir, 'app', 'state'), 'utf8'), 'thawed\n')
    const app = snap.participants.find(p => p.name === 'app')
    assert.equal(app?.stats?.files, 7, 'the six files of the folder source and the dump')
  })

  it('the dump restored on another host is byte-identical, as <target>/<source>/<output>', async () => {
    const target = path.join(dir, 'restore-app-on-plain')
    const { code, stdout, stderr } = await cli(['--socket', cluster.get('plain').socket, 'restore', snap.id, '--node', 'app', '--target', target, '--json'])
    assert.equal(code, 0, stderr)
    assert.ok(JSON.parse(stdout).blocksFetched > 0, 'blocks came over the network')
    assert.deepEqual((await fs.readdir(target)).sort(), ['db', 'files'])
    assert.deepEqual(await fs.readdir(path.join(target, 'db')), ['db.dump'])
    assert.equal(await sha256(path.join(target, 'db', 'db.dump')), expectedDump)
  })
})
