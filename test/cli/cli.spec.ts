import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import fs from 'node:fs/promises'
import path from 'node:path'
import { AdminServer } from '../../src/admin/index.js'
import { ID_AA11, ID_BB33, ID_NEW, PEER_A, PEER_B, TestBackend, tempDir } from '../admin/fixtures.js'
import type { TestBackendInit } from '../admin/fixtures.js'
import type { PeerView, RestoreResultView, SnapshotView, StatusView } from '../../src/admin/index.js'

const BIN = new URL('../../src/cli/bin.js', import.meta.url).pathname

interface Run { code: number, stdout: string, stderr: string }

/** runs `snapmesh args...`; never rejects on a non-zero exit */
async function snapmesh (args: string[], options: { cwd?: string, env?: Record<string, string> } = {}): Promise<Run> {
  const env: Record<string, string | undefined> = { ...process.env, SNAPMESH_CONFIG: '', ...options.env }
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [BIN, ...args], { cwd: options.cwd, env, timeout: 20_000 }, (err: any, stdout, stderr) => {
      if (err != null && typeof err.code !== 'number') {
        reject(err)
        return
      }
      resolve({ code: err?.code ?? 0, stdout, stderr })
    })
  })
}

/** exit 1 and exactly one line on stderr, `snapmesh: <message>` */
function assertFailure (run: Run, message: RegExp, code = 1): void {
  assert.equal(run.code, code, `exit code; stderr: ${run.stderr}`)
  assert.match(run.stderr, /^snapmesh: [^\n]+\n$/)
  assert.match(run.stderr, message)
}

describe('cli / snapmesh against an admin socket', function () {
  this.timeout(30_000)
  let dir: string
  let socketPath: string
  let backend: TestBackend
  let server: AdminServer

  async function serve (init: TestBackendInit = {}): Promise<void> {
    await server?.stop()
    backend = new TestBackend(init)
    server = new AdminServer({ backend }, { socketPath })
    await server.start()
  }

  /** `snapmesh --socket <test socket> args...` */
  async function cli (...args: string[]): Promise<Run> {
    return snapmesh(['--socket', socketPath, ...args], { cwd: dir })
  }

  before(async () => {
    dir = await tempDir('cli')
    socketPath = path.join(dir, 'admin.sock')
    await serve()
  })

  after(async () => {
    await server?.stop()
    await fs.rm(dir, { recursive: true, force: true })
  })

  it('status and peers --json print the documented objects', async () => {
    const [status, peers, peersTable] = await Promise.all([cli('status', '--json'), cli('--json', 'peers'), cli('peers')])
    assert.equal(status.code, 0)
    const s: StatusView = JSON.parse(status.stdout)
    assert.equal(s.peerId, PEER_A)
    assert.equal(s.name, 'alpha')
    assert.deepEqual(s.peers, { known: 2, connected: 1 })
    const p: PeerView[] = JSON.parse(peers.stdout)
    assert.deepEqual(p.map(x => x.peerId), [PEER_B, '12D3KooWCccc'])
    assert.equal(p[0].connected, true)
    const lines = peersTable.stdout.trimEnd().split('\n')
    assert.match(lines[0], /^NAME\s+PEER ID\s+CONNECTED\s+ADDRESSES$/)
    assert.match(lines[1], new RegExp(`^beta\\s+${PEER_B}\\s+yes\\s+/ip4/127.0.0.1/tcp/4102 \\(\\+1\\)$`))
    // columns line up
    assert.equal(lines[1].indexOf(PEER_B), lines[0].indexOf('PEER ID'))
    assert.equal(lines[2].indexOf('no'), lines[0].indexOf('CONNECTED'))
  })

  it('snapshot list prints an aligned table, or the snapshot objects with --json', async () => {
    const [json, text] = await Promise.all([cli('snapshot', 'list', '--json'), cli('snapshot', 'list')])
    assert.equal(json.code, 0)
    const list: SnapshotView[] = JSON.parse(json.stdout)
    assert.deepEqual(list.map(s => s.id), [ID_AA11, 'aa22' + '0'.repeat(60), ID_BB33])
    assert.deepEqual(Object.keys(list[2].participants[1]).sort(), ['name', 'peerId', 'status'])
    const lines = text.stdout.trimEnd().split('\n')
    assert.match(lines[0], /^ID\s+STARTED\s+TAG\s+STATUS\s+OK$/)
    assert.match(lines[1], /^aa110000  2026-01-01 00:00:00Z\s+complete\s+2\/2$/)
    assert.match(lines[3], /^bb330000  2026-01-01 00:00:00Z\s+partial\s+1\/2$/)
    assert.equal(lines[3].indexOf('partial'), lines[0].indexOf('STATUS'))
  })

  it('snapshot show finds a prefix and prints participants, roots, stats and problems', async () => {
    const [json, text] = await Promise.all([cli('snapshot', 'show', 'bb', '--json'), cli('snapshot', 'show', 'bb')])
    const snap: SnapshotView = JSON.parse(json.stdout)
    assert.equal(snap.id, ID_BB33)
    assert.equal(snap.status, 'partial')
    assert.deepEqual(snap.participants.map(p => [p.peerId, p.name, p.status]), [[PEER_A, 'alpha', 'ok'], [PEER_B, 'beta', 'missing']])
    assert.equal(text.code, 0)
    assert.match(text.stdout, new RegExp(`^snapshot\\s+${ID_BB33}$`, 'm'))
    assert.match(text.stdout, /^status\s+partial$/m)
    assert.match(text.stdout, /root\s+bafyrootalpha/)
    assert.match(text.stdout, /content\s+3 files, 1 dirs, 0 symlinks, 2\.9 KiB/)
    assert.match(text.stdout, /problem\s+etc\/shadow: EACCES/)
    assert.match(text.stdout, /beta\s+12D3KooWB\w+\s+missing/)
    assert.match(text.stdout, /reason: beta sent no result before the deadline/)
  })

  it('a backend error is one line on stderr and exit code 1', async () => {
    const [ambiguous, unknown] = await Promise.all([cli('snapshot', 'show', 'aa'), cli('snapshot', 'show', 'ff', '--json')])
    assertFailure(ambiguous, /^snapmesh: "aa" matches 2 snapshots: aa110000, aa220000\n$/)
    assert.equal(ambiguous.stdout, '')
    assertFailure(unknown, /no snapshot matches "ff"/)
    assert.equal(unknown.stdout, '')
  })

  it('snapshot create prints the new ID; with --wait the final snapshot, exit 0 when complete', async () => {
    await serve({ runningMs: 300, outcome: 'complete' })
    const plain = await cli('snapshot', 'create', '--tag', 'nightly')
    assert.equal(plain.code, 0)
    assert.equal(plain.stdout, `${ID_NEW}\n`)
    const waited = await cli('snapshot', 'create', '--wait', '--json', '--tag', 'nightly')
    assert.equal(waited.code, 0, waited.stderr)
    const snap: SnapshotView = JSON.parse(waited.stdout)
    assert.equal(snap.id, ID_NEW)
    assert.equal(snap.status, 'complete')
    assert.equal(snap.tag, 'nightly')
    assert.deepEqual(snap.participants.map(p => p.status), ['ok', 'ok'])
    // stderr is not a terminal here: no progress drawn into it
    assert.equal(waited.stderr, '')
    const text = await cli('snapshot', 'create', '--wait')
    assert.equal(text.code, 0)
    assert.match(text.stdout, /^status\s+complete$/m)
  })

  it('snapshot create --wait exits 3 when the snapshot ends partial, or is still running at --timeout', async () => {
    await serve({ runningMs: 200, outcome: 'partial' })
    const partial = await cli('snapshot', 'create', '--wait', '--json')
    assert.equal(partial.code, 3)
    assert.equal(JSON.parse(partial.stdout).status, 'partial')
    await serve({ runningMs: 60_000 })
    const started = Date.now()
    const running = await cli('snapshot', 'create', '--wait', '--timeout', '0.5', '--json')
    assert.equal(running.code, 3)
    assert.equal(JSON.parse(running.stdout).status, 'running')
    assert.ok(Date.now() - started < 10_000)
    await serve()
  })

  it('restore sends the target made absolute against the cwd and prints the result', async () => {
    const json = await cli('restore', 'aa11', '--target', 'rel/dir', '--node', 'beta', '--include', 'etc/hosts', '--include', 'etc/passwd', '--json')
    assert.equal(json.code, 0, json.stderr)
    const result: RestoreResultView = JSON.parse(json.stdout)
    assert.equal(result.target, path.join(dir, 'rel/dir'))
    assert.equal(result.files, 3)
    assert.deepEqual(backend.restores.at(-1), { snapshot: 'aa11', target: path.join(dir, 'rel/dir'), node: 'beta', include: ['etc/hosts', 'etc/passwd'] })
    assert.equal(json.stderr, '')
    const text = await cli('restore', 'aa11', '--target', '/abs/t', '--resume')
    assert.equal(text.code, 0)
    assert.deepEqual(backend.restores.at(-1), { snapshot: 'aa11', target: '/abs/t', resume: true })
    assert.match(text.stdout, /^restored alpha \(12D3KooWA\w+\) from snapshot aa110000 into \/abs\/t$/m)
    assert.match(text.stdout, /3 files, 1 dirs, 0 symlinks, 2\.9 KiB in 0\.2s; 2 blocks fetched from peers/)
    const flags = await cli('restore', 'aa11', '--target', '/abs/t', '--keep-special-bits', '--no-owner')
    assert.equal(flags.code, 0, flags.stderr)
    assert.deepEqual(backend.restores.at(-1), { snapshot: 'aa11', target: '/abs/t', keepSpecialBits: true, noOwner: true })
  })

  it('a failed restore prints the agent\'s reason and exits 1', async () => {
    const run = await cli('restore', 'evil', '--target', 't')
    assertFailure(run, /^snapmesh: refusing to restore "\.\.\/x": it leaves the target\n$/)
    assert.equal(run.stdout, '')
  })

  it('verify exits 3 when problems are left and lists them', async () => {
    const [ok, bad] = await Promise.all([cli('verify', 'aa11', '--json'), cli('verify', 'bb33')])
    assert.equal(ok.code, 0)
    assert.equal(JSON.parse(ok.stdout).ok, true)
    assert.equal(bad.code, 3)
    assert.match(bad.stdout, /missing\s+etc\/hosts\s+block bafyblock\s+at 12D3KooWB/)
  })

  it('forget sends keep rules (spans in seconds, repeated tags) or IDs, and prints what it kept and forgot', async () => {
    const before = backend.forgets.length
    const dry = await cli('forget', '--keep-last', '2', '--keep-daily', '-1', '--keep-within', '2d12h', '--keep-tag', 'a', '--keep-tag', 'b', '--dry-run', '--prune')
    assert.equal(dry.code, 0, dry.stderr)
    assert.deepEqual(backend.forgets[before], { keep: { last: 2, daily: -1, withinSeconds: 216000, tags: ['a', 'b'] }, dryRun: true, prune: true })
    assert.match(dry.stdout, /keep 2 snapshots:[\s\S]*aa11[\s\S]*would forget 1 snapshots:[\s\S]*bb33[\s\S]*prune: 150 blocks stored, 120 referenced by 4 manifest roots; would delete 30 blocks \(30\.0 MiB\)/)
    const bad = await Promise.all([cli('forget', '--keep-last', 'two'), cli('forget', '--keep-within', '3 days'), cli('forget', '--keep-daily', '-2')])
    for (const r of bad) {
      assert.equal(r.code, 2, r.stderr)
      assert.match(r.stderr, /--keep-(last|within|daily)/)
    }
    assert.equal(backend.forgets.length, before + 1, 'a usage error sends nothing')
    const prune = await cli('prune', '--json')
    assert.equal(prune.code, 0)
    assert.equal(JSON.parse(prune.stdout).deleted, 30)
  })

  it('usage errors exit 2 with one line on stderr', async () => {
    const restores = backend.restores.length
    const runs = await Promise.all([
      cli('snapshot', 'create', '--timeout', 'soon'),
      cli('restore', 'aa11'),
      cli('frobnicate'),
      cli('status', '--colour'),
      cli('keygen')
    ])
    const messages = [/--timeout.*must be a positive number of seconds/, /required option '--target <dir>'/, /unknown command 'frobnicate'/, /unknown option '--colour'/, /required option '--psk'/]
    runs.forEach((run, i) => { assertFailure(run, messages[i], 2) })
    assert.equal(backend.restores.length, restores)
  })

  it('says no agent is listening, and exits 1, when the socket is missing', async () => {
    const run = await snapmesh(['--socket', path.join(dir, 'gone.sock'), 'status'], { cwd: dir })
    assertFailure(run, new RegExp(`^snapmesh: no agent is listening on ${path.join(dir, 'gone.sock')} \\(is \`snapmesh agent\` running\\?\\)\n$`))
  })

  it('finds the socket through --config, $SNAPMESH_CONFIG or ./config/default.json', async () => {
    const confDir = path.join(dir, 'config')
    await fs.mkdir(confDir, { recursive: true })
    const config = { name: 'alpha', dataDir: '../data', adminSocket: '../admin.sock' }
    await fs.writeFile(path.join(confDir, 'default.json'), JSON.stringify(config))
    await fs.writeFile(path.join(confDir, 'other.json'), JSON.stringify({ ...config, adminSocket: '../other.sock' }))
    const [byDefault, byFlag, byEnv] = await Promise.all([
      snapmesh(['status', '--json'], { cwd: dir }),
      snapmesh(['--config', 'config/other.json', 'status'], { cwd: dir }),
      snapmesh(['status'], { cwd: dir, env: { SNAPMESH_CONFIG: path.join(confDir, 'other.json') } })
    ])
    assert.equal(byDefault.code, 0, byDefault.stderr)
    assert.equal(JSON.parse(byDefault.stdout).peerId, PEER_A)
    assertFailure(byFlag, /no agent is listening on .*other\.sock/)
    assertFailure(byEnv, /no agent is listening on .*other\.sock/)
    const none = await snapmesh(['status'], { cwd: confDir })
    assertFailure(none, /no config file at .*config\/config\/default\.json: name one with --config FILE/)
    await fs.rm(confDir, { recursive: true })
  })
})

describe('cli / commands without an agent', function () {
  this.timeout(30_000)
  let dir: string

  beforeEach(async () => {
    dir = await tempDir('cli')
  })

  afterEach(async () => {
    await fs.rm(dir, { recursive: true, force: true })
  })

  it('id creates the identity in the config\'s dataDir once and prints the same peer ID after', async () => {
    const config = path.join(dir, 'host.json')
    await fs.writeFile(config, JSON.stringify({ name: 'alpha', dataDir: 'state' }))
    const first = await snapmesh(['--config', config, 'id', '--json'], { cwd: dir })
    assert.equal(first.code, 0, first.stderr)
    const { peerId } = JSON.parse(first.stdout)
    assert.match(peerId, /^12D3KooW\w{44}$/)
    assert.ok((await fs.stat(path.join(dir, 'state', 'identity.key'))).isFile())
    const again = await snapmesh(['id'], { cwd: dir, env: { SNAPMESH_CONFIG: config } })
    assert.equal(again.stdout, `${String(peerId)}\n`)
  })

  it('keygen --psk --out writes a swarm key with mode 0600 and never overwrites one', async () => {
    const out = path.join(dir, 'swarm.key')
    const made = await snapmesh(['keygen', '--psk', '--out', 'swarm.key', '--json'], { cwd: dir })
    assert.equal(made.code, 0, made.stderr)
    assert.deepEqual(JSON.parse(made.stdout), { file: out })
    assert.equal((await fs.stat(out)).mode & 0o777, 0o600)
    const key = await fs.readFile(out, 'utf8')
    assert.match(key, /^\/key\/swarm\/psk\/1\.0\.0\/\n\/base16\/\n[0-9a-f]{64}$/)
    const again = await snapmesh(['keygen', '--psk', '--out', out], { cwd: dir })
    assertFailure(again, /already exists: refusing to overwrite a key/)
    assert.equal(await fs.readFile(out, 'utf8'), key)
  })

  it('keygen --psk without --out prints a fresh key each time', async () => {
    const [a, b] = await Promise.all([snapmesh(['keygen', '--psk']), snapmesh(['keygen', '--psk'])])
    assert.match(a.stdout, /^\/key\/swarm\/psk\/1\.0\.0\/\n\/base16\/\n[0-9a-f]{64}\n$/)
    assert.notEqual(a.stdout, b.stdout)
  })
})

describe('cli / snapmesh against the read-only socket', function () {
  this.timeout(30_000)
  let dir: string
  let socketPath: string
  let backend: TestBackend
  let server: AdminServer

  before(async () => {
    dir = await tempDir('cli-read')
    socketPath = path.join(dir, 'admin-read.sock')
    backend = new TestBackend()
    server = new AdminServer({ backend }, { socketPath, kind: 'read', mode: 0o660 })
    await server.start()
  })

  after(async () => {
    await server.stop()
    await fs.rm(dir, { recursive: true, force: true })
  })

  it('runs the read commands', async () => {
    for (const args of [['status'], ['peers'], ['snapshot', 'list'], ['snapshot', 'show', 'aa11'], ['verify', 'aa11'], ['verify', 'aa11', '--read-data']]) {
      const r = await snapmesh(['--socket', socketPath, ...args])
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`)
    }
  })

  it('prints the 403 of every write command as one line naming the socket and the route', async () => {
    const cases: Array<[string[], string]> = [
      [['snapshot', 'create', '--wait'], 'POST /v1/snapshots'],
      [['restore', 'aa11', '--target', path.join(dir, 'out')], 'POST /v1/restore'],
      [['verify', 'aa11', '--repair'], 'POST /v1/verify'],
      [['forget', '--keep-last', '1'], 'POST /v1/forget'],
      [['prune'], 'POST /v1/prune']
    ]
    for (const [args, route] of cases) {
      const r = await snapmesh(['--socket', socketPath, ...args])
      assertFailure(r, new RegExp(`read-only admin socket ${socketPath.replace(/[.]/g, '\\.')} does not serve ${route.replace(/\//g, '\\/')}`))
    }
    assert.equal(backend.restores.length, 0)
    assert.equal(backend.forgets.length, 0)
  })
})

describe('cli / cluster init and member add (offline)', function () {
  this.timeout(60_000)
  let dir: string

  before(async () => { dir = await tempDir('cli-cluster') })
  after(async () => { await fs.rm(dir, { recursive: true, force: true }) })

  it('creates an admin key (0600, never overwritten) and signs a certificate that verifies against its admin ID', async () => {
    const init = await snapmesh(['--json', 'cluster', 'init', '--out', path.join(dir, 'admin')])
    assert.equal(init.code, 0, init.stderr)
    const { file, adminId } = JSON.parse(init.stdout) as { file: string, adminId: string }
    assert.equal(file, path.join(dir, 'admin', 'admin.key'))
    assert.equal((await fs.stat(file)).mode & 0o777, 0o600)
    assert.equal((await fs.stat(path.join(dir, 'admin'))).mode & 0o777, 0o700)
    assert.match(adminId, /^12D3KooW/)
    assertFailure(await snapmesh(['cluster', 'init', '--out', path.join(dir, 'admin')]), /already exists: refusing to overwrite/)

    const { generateKeyPair } = await import('@libp2p/crypto/keys')
    const { peerIdFromPrivateKey } = await import('@libp2p/peer-id')
    const host = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
    const out = path.join(dir, 'db1.cert')
    const added = await snapmesh(['member', 'add', '--key', file, '--peer', host, '--name', 'db1', '--expires', '30d', '--out', out])
    assert.equal(added.code, 0, added.stderr)
    assert.match(added.stdout, new RegExp(`membership certificate of db1 \\(${host}\\) signed by admin ${adminId}, expires `))
    const { verifyCertificate } = await import('../../src/membership/certificate.js')
    const cert = await verifyCertificate(await fs.readFile(out), { admins: [adminId], now: Date.now(), peerId: host })
    assert.equal(cert.name, 'db1')
    assert.ok(cert.expiresAt != null && Math.abs(cert.expiresAt - (Date.now() + 30 * 86400_000)) < 60_000)

    assertFailure(await snapmesh(['member', 'add', '--key', file, '--peer', '/ip4/1.2.3.4/tcp/1', '--name', 'x', '--out', path.join(dir, 'x.cert')]), /must be a peer ID/, 2)
    assertFailure(await snapmesh(['member', 'add', '--key', file, '--peer', host, '--name', 'x', '--expires', 'soon', '--out', path.join(dir, 'y.cert')]), /must be a span/, 2)
    assertFailure(await snapmesh(['member', 'add', '--key', path.join(dir, 'missing.key'), '--peer', host, '--name', 'x', '--out', path.join(dir, 'z.cert')]), /cannot read the admin key/)
  })
})
