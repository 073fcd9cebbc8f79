import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import fs from 'node:fs/promises'
import path from 'node:path'
import { LocalCluster, type LocalAgent } from '../../scripts/cluster.js'
import { connectApp } from '../../src/apps/client.js'
import { cli, makeTree, tempDir } from './helpers.js'
import type { SnapshotView } from '../../src/admin/api.js'

describe('integration / local access: data folder, admin sockets, app tokens', function () {
  this.timeout(120_000)
  let dir: string
  let cluster: LocalCluster
  let agent: LocalAgent
  let dataDir: string
  let readSocket: string
  const TOKEN = 'bank-0123456789abcdef-token'
  const asRoot = process.getuid?.() === 0 && /^daemon:x:1:/m.test(readFileSync('/etc/group', 'utf8'))

  before(async () => {
    dir = await tempDir('access')
    cluster = new LocalCluster({ dir, agents: [] })
    await fs.mkdir(path.join(dir, 'solo'), { recursive: true })
    await fs.writeFile(path.join(dir, 'solo', 'bank.token'), `${TOKEN}\n`, { mode: 0o600 })
    // as root the sockets can be given any group: a name for one, a gid for the other
    const groups = asRoot ? { adminSocketGroup: 'daemon', readSocketGroup: 4242 } : {}
    agent = await cluster.add({ name: 'solo', extra: { readSocketMode: '0640', ...groups, apps: { tokens: { bank: './bank.token' } } } }, { start: false })
    await makeTree(agent.sourcesDir, 'solo')
    dataDir = path.join(agent.dir, 'data')
    readSocket = path.join(dataDir, 'admin-read.sock')
    // a data folder left open to every local user, as an older version or a careless mkdir made it
    await fs.chmod(dataDir, 0o755)
    assert.equal((await fs.stat(dataDir)).mode & 0o777, 0o755)
    await agent.start()
  })

  after(async () => {
    await cluster?.stop()
    await fs.rm(dir, { recursive: true, force: true })
  })

  it('makes the data folder 0700 at start, though it existed as 0755', async () => {
    assert.equal((await fs.stat(dataDir)).mode & 0o777, 0o700)
  })

  it('listens on the full socket (0600) and on the read-only one (its configured 0640), each with its group', async () => {
    const full = await fs.lstat(agent.socket)
    assert.equal(full.mode & 0o777, 0o600)
    const st = await fs.lstat(readSocket)
    assert.ok(st.isSocket())
    assert.equal(st.mode & 0o777, 0o640)
    if (asRoot) {
      assert.equal(full.gid, 1, 'adminSocketGroup "daemon" resolved to its gid')
      assert.equal(st.gid, 4242)
    }
  })

  it('read commands work on the read-only socket; write commands there fail with the 403 in one line', async () => {
    const created = await cli(['--socket', agent.socket, '--json', 'snapshot', 'create', '--wait', '--timeout', '60'])
    assert.equal(created.code, 0, created.stderr)
    const snap = JSON.parse(created.stdout) as SnapshotView
    assert.equal(snap.status, 'complete')

    for (const args of [['status'], ['peers'], ['snapshot', 'list'], ['snapshot', 'show', snap.id.slice(0, 8)], ['verify', snap.id]]) {
      const r = await cli(['--socket', readSocket, ...args])
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`)
    }
    const status = JSON.parse((await cli(['--socket', readSocket, '--json', 'status'])).stdout)
    assert.equal(status.name, 'solo')

    const writes = [
      ['snapshot', 'create'],
      ['restore', snap.id, '--target', path.join(dir, 'restored')],
      ['verify', snap.id, '--repair'],
      ['forget', snap.id],
      ['prune', '--dry-run']
    ]
    for (const args of writes) {
      const r = await cli(['--socket', readSocket, ...args])
      assert.equal(r.code, 1, `${args.join(' ')}: ${r.stdout}`)
      assert.match(r.stderr, /^snapmesh: the read-only admin socket [^\n]+ does not serve POST \/v1\/[a-z]+[^\n]*\n$/, r.stderr)
      assert.ok(r.stderr.includes(readSocket))
    }
    // nothing was written: the snapshot is still there, nothing was restored
    assert.equal(JSON.parse((await cli(['--socket', agent.socket, '--json', 'snapshot', 'list'])).stdout).length, 1)
    await assert.rejects(fs.stat(path.join(dir, 'restored')), { code: 'ENOENT' })
  })

  it('the app socket registers "bank" only with its token', async () => {
    const socket = path.join(dataDir, 'apps.sock')
    await assert.rejects(connectApp({ socket, name: 'bank', token: 'not-the-token-at-all' }), /wrong token for app "bank"/)
    await assert.rejects(connectApp({ socket, name: 'bank' }), /needs its token/)
    await assert.rejects(connectApp({ socket, name: 'thief', token: TOKEN }), /not configured/)
    const app = await connectApp({ socket, name: 'bank', tokenFile: path.join(agent.dir, 'bank.token') })
    assert.equal(app.peerId, agent.peerId)
    assert.deepEqual((await agent.client.status()).apps?.connected, ['bank'])
    await app.close()
  })
})
