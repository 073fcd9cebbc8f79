import assert from 'node:assert/strict'
import { execFile, spawn } from 'node:child_process'
import { once } from 'node:events'
import fs from 'node:fs/promises'
import http from 'node:http'
import net from 'node:net'
import path from 'node:path'
import { AdminClient, AdminError, AdminServer, SocketAccessError, SocketSetupError } from '../../src/admin/index.js'
import { ID_AA11, ID_NEW, TestBackend, tempDir } from './fixtures.js'

interface RawAnswer { status: number, json: any }

async function raw (socketPath: string, method: string, url: string, body?: unknown): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body)
    const req = http.request({ socketPath, method, path: url, headers: payload != null ? { 'content-type': 'application/json' } : {} }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', d => { text += d })
      res.on('end', () => {
        let json: any
        try { json = JSON.parse(text) } catch {}
        resolve({ status: res.statusCode ?? 0, json })
      })
    })
    req.on('error', reject)
    req.end(payload)
  })
}

/** connects, writes `text`, and resolves with the ms until the server closed the connection */
async function closedAfter (socketPath: string, text: string, limitMs: number): Promise<{ ms: number, answer: string }> {
  const s = net.connect(socketPath)
  await new Promise(resolve => s.once('connect', resolve))
  const t0 = Date.now()
  if (text !== '') s.write(text)
  let answer = ''
  s.on('data', d => { answer += d.toString() })
  s.on('error', () => {})
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { s.destroy(); reject(new Error(`still open after ${limitMs} ms`)) }, limitMs)
    s.once('close', () => { clearTimeout(timer); resolve({ ms: Date.now() - t0, answer }) })
  })
}

describe('admin / the read-only socket', () => {
  let dir: string
  let full: AdminServer
  let read: AdminServer
  let backend: TestBackend
  let fullPath: string
  let readPath: string

  before(async () => {
    dir = await tempDir('sockets')
    backend = new TestBackend()
    fullPath = path.join(dir, 'admin.sock')
    readPath = path.join(dir, 'admin-read.sock')
    full = new AdminServer({ backend }, { socketPath: fullPath })
    read = new AdminServer({ backend }, { socketPath: readPath, kind: 'read', mode: 0o660 })
    await full.start()
    await read.start()
  })

  after(async () => {
    await read.stop()
    await full.stop()
    await fs.rm(dir, { recursive: true, force: true })
  })

  it('serves status, peers, the list, one snapshot and verify', async () => {
    const client = new AdminClient({ socketPath: readPath })
    assert.equal((await client.status()).name, 'alpha')
    assert.equal((await client.peers()).length, 2)
    assert.equal((await client.listSnapshots()).length, 3)
    assert.equal((await client.getSnapshot('aa11')).id, ID_AA11)
    assert.equal((await client.verify({ snapshot: 'aa11', readData: true })).ok, true)
    // the audit log's reads are served there too (this backend keeps no log: 404, not 403)
    for (const [method, url, body] of [['GET', '/v1/audit'], ['GET', '/v1/audit/heads'], ['POST', '/v1/audit/verify', {}]] as Array<[string, string, unknown?]>) {
      const a = await raw(readPath, method, url, body)
      assert.equal(a.status, 404, `${method} ${url}: ${JSON.stringify(a.json)}`)
      assert.match(a.json.error, /keeps no audit log/)
    }
  })

  it('answers 403 naming the socket and the route to every write, and does not call the backend', async () => {
    const writes: Array<[string, string, unknown]> = [
      ['POST', '/v1/snapshots', { tag: 'x' }],
      ['POST', '/v1/restore', { snapshot: 'aa11', target: '/tmp/x' }],
      ['POST', '/v1/forget', { snapshots: ['aa11'] }],
      ['POST', '/v1/prune', {}],
      ['POST', '/v1/verify', { snapshot: 'aa11', repair: true }]
    ]
    for (const [method, url, body] of writes) {
      const a = await raw(readPath, method, url, body)
      assert.equal(a.status, 403, `${method} ${url}`)
      assert.equal(a.json.code, 'ERR_READ_ONLY_SOCKET')
      assert.equal(a.json.socket, readPath)
      assert.match(a.json.route, new RegExp(`^${method} ${url.replace(/\//g, '\\/')}`))
      assert.ok(a.json.error.includes(readPath) && a.json.error.includes(url), a.json.error)
    }
    assert.equal(backend.restores.length, 0)
    assert.equal(backend.forgets.length, 0)
    assert.equal((await backend.listSnapshots()).some(s => s.id === ID_NEW), false, 'no snapshot was created')
    // the typed client sees the same
    await assert.rejects(new AdminClient({ socketPath: readPath }).createSnapshot({}), (err: any) => {
      assert.ok(err instanceof AdminError)
      assert.equal(err.status, 403)
      assert.match(err.message, /read-only admin socket .* does not serve POST \/v1\/snapshots/)
      return true
    })
    // unknown routes and methods keep their answers
    assert.equal((await raw(readPath, 'GET', '/v1/nothing')).status, 404)
    assert.equal((await raw(readPath, 'DELETE', '/v1/status')).status, 405)
  })

  it('the full socket still serves every route', async () => {
    const a = await raw(fullPath, 'POST', '/v1/verify', { snapshot: 'aa11', repair: true })
    assert.equal(a.status, 200)
    assert.equal((await raw(fullPath, 'POST', '/v1/prune', {})).status, 200)
  })
})

describe('admin / socket mode and group', () => {
  let dir: string
  const servers: AdminServer[] = []

  beforeEach(async () => { dir = await tempDir('sockmode') })
  afterEach(async () => {
    for (const s of servers.splice(0)) await s.stop()
    await fs.rm(dir, { recursive: true, force: true })
  })

  async function start (name: string, init: { mode?: number, gid?: number, kind?: 'full' | 'read' } = {}): Promise<string> {
    const socketPath = path.join(dir, name)
    const s = new AdminServer({ backend: new TestBackend() }, { socketPath, ...init })
    servers.push(s)
    await s.start()
    return socketPath
  }

  it('has its mode from the first moment it can be reached, even under umask 0, and leaves nothing behind', async () => {
    const socketPath = path.join(dir, 'admin.sock')
    // another process looks at the final path as fast as it can while the server starts and
    // reports every mode it saw (listen then chmod shows 0777 to it in about half the runs)
    const code = `const fs = require('fs'); const seen = new Set(); const end = Date.now() + 1000; process.stdout.write('go\\n');
      while (Date.now() < end) { try { seen.add(fs.lstatSync(${JSON.stringify(socketPath)}).mode & 0o777) } catch {} }
      process.stdout.write(JSON.stringify([...seen]) + '\\n')`
    const watcher = spawn(process.execPath, ['-e', code])
    let out = ''
    watcher.stdout.on('data', d => { out += d })
    await new Promise(resolve => watcher.stdout.once('data', resolve))
    const old = process.umask(0)
    try {
      await start('admin.sock', { mode: 0o600 })
      await start('read.sock', { mode: 0o640, kind: 'read' })
    } finally {
      process.umask(old)
    }
    await once(watcher, 'exit')
    assert.deepEqual(JSON.parse(out.split('\n')[1]), [0o600])
    assert.equal((await fs.lstat(path.join(dir, 'read.sock'))).mode & 0o777, 0o640)
    // the private folder it was bound in is gone
    assert.deepEqual((await fs.readdir(dir)).sort(), ['admin.sock', 'read.sock'])
    assert.equal((await new AdminClient({ socketPath }).status()).name, 'alpha')
  })

  it('is given the configured group', async () => {
    // root may give any gid; anyone else a group they are in
    const gid = process.getuid?.() === 0 ? 4242 : (process.getgroups?.().find(g => g !== process.getgid?.()) ?? process.getgid?.() ?? 0)
    const p = await start('g.sock', { mode: 0o660, gid, kind: 'read' })
    const st = await fs.lstat(p)
    assert.equal(st.gid, gid)
    assert.equal(st.mode & 0o777, 0o660)
  })

  it('names the socket when its folder does not exist, and leaves nothing listening', async () => {
    const socketPath = path.join(dir, 'missing', 'admin.sock')
    const s = new AdminServer({ backend: new TestBackend() }, { socketPath })
    await assert.rejects(s.start(), (err: any) => err instanceof SocketSetupError && err.message.includes(socketPath) && /does not exist/.test(err.message))
    assert.equal(s.isStarted(), false)
  })

  it('says so when this user may not open the socket', async function () {
    const p = await start('closed.sock', { mode: 0o600 })
    if (process.getuid?.() !== 0) {
      await fs.chmod(p, 0o000)
      await assert.rejects(new AdminClient({ socketPath: p }).status(), SocketAccessError)
      return
    }
    // root opens any socket: ask as nobody, through the CLI
    await fs.chmod(dir, 0o755)
    const bin = new URL('../../src/cli/bin.js', import.meta.url).pathname
    const r = await new Promise<{ code: number | null, stderr: string }>(resolve => {
      execFile(process.execPath, [bin, '--socket', p, 'status'], { uid: 65534, gid: 65534, env: { ...process.env, SNAPMESH_CONFIG: '' } }, (err: any, _stdout, stderr) => {
        resolve({ code: err?.code ?? 0, stderr })
      })
    })
    if (/Cannot find|EACCES: permission denied, (open|scandir|stat)/.test(r.stderr)) this.skip() // nobody cannot read the program here
    assert.equal(r.code, 1, r.stderr)
    assert.match(r.stderr, /^snapmesh: permission denied on .*closed\.sock/)
  })
})

describe('admin / slow clients', function () {
  this.timeout(20_000)
  let dir: string
  let server: AdminServer
  let socketPath: string
  const timeouts = { headersMs: 300, requestMs: 600, keepAliveMs: 300, idleMs: 400 }

  before(async () => {
    dir = await tempDir('slow')
    socketPath = path.join(dir, 'admin.sock')
    server = new AdminServer({ backend: new TestBackend({ runningMs: 1500 }) }, { socketPath, timeouts, pollIntervalMs: 50 })
    await server.start()
  })

  after(async () => {
    await server.stop()
    await fs.rm(dir, { recursive: true, force: true })
  })

  it('disconnects a client that sends half a header within the bound', async () => {
    const { ms, answer } = await closedAfter(socketPath, 'GET /v1/status HTTP/1.1\r\nHost: agent\r\nX-Slow: ', 3000)
    assert.ok(ms < 1500, `closed after ${ms} ms`)
    assert.match(answer, /^HTTP\/1.1 408/)
  })

  it('disconnects a client that connects and says nothing', async () => {
    const { ms } = await closedAfter(socketPath, '', 3000)
    assert.ok(ms < 1500, `closed after ${ms} ms`)
  })

  it('disconnects a client that sends its body too slowly', async () => {
    const s = net.connect(socketPath)
    await new Promise(resolve => s.once('connect', resolve))
    s.on('error', () => {})
    const t0 = Date.now()
    s.write('POST /v1/prune HTTP/1.1\r\nHost: agent\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{')
    const drip = setInterval(() => { if (!s.destroyed) s.write(' ') }, 100)
    await new Promise(resolve => s.once('close', resolve))
    clearInterval(drip)
    assert.ok(Date.now() - t0 < 2000, `closed after ${Date.now() - t0} ms`)
  })

  it('closes an idle keep-alive connection', async () => {
    const { ms, answer } = await closedAfter(socketPath, 'GET /v1/status HTTP/1.1\r\nHost: agent\r\n\r\n', 3000)
    assert.match(answer, /^HTTP\/1.1 200/)
    assert.ok(ms < 1500, `closed after ${ms} ms`)
  })

  it('does not cut a restore stream whose progress lines are further apart than every bound', async () => {
    const lines: unknown[] = []
    const t0 = Date.now()
    const result = await new AdminClient({ socketPath }).restore({ snapshot: 'long', target: '/tmp/long' }, { onProgress: ev => { lines.push(ev) } })
    assert.ok(Date.now() - t0 > 2000, 'the stream lasted longer than the bounds')
    assert.equal(result.files, 3)
    assert.equal(lines.length, 3)
  })

  it('does not cut a long-poll that waits longer than every bound', async () => {
    const client = new AdminClient({ socketPath })
    await client.createSnapshot({})
    const t0 = Date.now()
    const snap = await client.getSnapshot(ID_NEW, { wait: true, timeoutSeconds: 10 })
    assert.ok(Date.now() - t0 > 1000)
    assert.equal(snap.status, 'complete')
  })
})
