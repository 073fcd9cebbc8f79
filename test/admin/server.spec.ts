import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import fs from 'node:fs/promises'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { AdminClient, AdminError, AgentNotRunningError } from '../../src/admin/client.js'
import { AdminServer } from '../../src/admin/server.js'
import { AmbiguousIdError, NotFoundError } from '../../src/metadata/index.js'
import type { AdminBackend, ProgressView, RestoreRequest, SnapshotView } from '../../src/admin/api.js'

const exec = promisify(execFile)
const BIN = new URL('../../src/cli/bin.js', import.meta.url).pathname

function snap (id: string, status: SnapshotView['status'] = 'complete'): SnapshotView {
  return {
    id,
    status,
    initiator: '12D3KooWA',
    lamport: 1,
    startedAt: '2026-01-01T00:00:00.000Z',
    deadline: '2026-01-01T00:02:00.000Z',
    participants: [{ peerId: '12D3KooWA', name: 'a', status: 'ok', root: 'bafy' }]
  }
}

/** a backend with fixed answers: what is under test here is the HTTP layer and its client */
class TestBackend implements AdminBackend {
  snapshots = [snap('aa11' + '0'.repeat(60)), snap('aa22' + '0'.repeat(60)), snap('bb33' + '0'.repeat(60), 'partial')]
  restoreAborted = false
  async status (): Promise<any> { return { peerId: '12D3KooWA', name: 'a', version: '0', addresses: [], uptimeSeconds: 1, peers: { known: 0, connected: 0 }, snapshots: 3, dataDir: '/d' } }
  async peers (): Promise<any> { return [{ peerId: '12D3KooWB', name: 'b', addresses: ['/ip4/127.0.0.1/tcp/1'], connected: true }] }
  async createSnapshot (req: { tag?: string }): Promise<SnapshotView> { return { ...snap('cc44' + '0'.repeat(60), 'running'), tag: req.tag } }
  async listSnapshots (): Promise<SnapshotView[]> { return this.snapshots }
  async getSnapshot (id: string): Promise<SnapshotView> {
    const m = [...this.snapshots, snap('cc44' + '0'.repeat(60))].filter(s => s.id.startsWith(id))
    if (m.length === 0) throw new NotFoundError(`no snapshot matches "${id}"`)
    if (m.length > 1) throw new AmbiguousIdError(`"${id}" matches ${m.length} snapshots`)
    return m[0]
  }

  async verify (req: { snapshot: string }): Promise<any> {
    return { snapshot: req.snapshot, ok: req.snapshot !== 'bad', participants: [] }
  }

  async restore (req: RestoreRequest, options: { signal?: AbortSignal, onProgress?: (ev: ProgressView) => void }): Promise<any> {
    if (req.snapshot === 'slow') {
      await new Promise((resolve, reject) => {
        options.signal?.addEventListener('abort', () => { this.restoreAborted = true; reject(new Error('aborted')) })
      })
    }
    if (req.snapshot === 'bad') throw Object.assign(new Error('refusing to restore "../x"'), { code: 'ERR_UNSAFE_PATH' })
    for (let i = 1; i <= 3; i++) {
      options.onProgress?.({ type: 'progress', phase: 'restore', files: i, bytes: i * 10 })
      await new Promise(resolve => setTimeout(resolve, 120))
    }
    return { snapshot: req.snapshot, peerId: 'p', name: 'a', target: req.target, files: 3, dirs: 1, symlinks: 0, bytes: 30, blocksFetched: 2, durationMs: 5 }
  }
}

async function raw (socketPath: string, method: string, url: string, body?: string | Buffer): Promise<{ status: number, json: any }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, method, path: url }, (res) => {
      let text = ''
      res.on('data', d => { text += String(d) })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, json: text === '' ? undefined : JSON.parse(text) }) })
    })
    req.on('error', reject)
    if (body != null) req.write(body)
    req.end()
  })
}

describe('admin / server and client', () => {
  let dir: string
  let socketPath: string
  let backend: TestBackend
  let server: AdminServer
  let client: AdminClient

  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'snapmesh-admin-'))
    socketPath = path.join(dir, 'admin.sock')
    backend = new TestBackend()
    server = new AdminServer({ backend }, { socketPath })
    await server.start()
    client = new AdminClient({ socketPath })
  })

  afterEach(async () => {
    await server.stop()
    await fs.rm(dir, { recursive: true, force: true })
  })

  it('serves every route with its typed client, on a socket only the owner can use', async () => {
    assert.equal((await fs.stat(socketPath)).mode & 0o777, 0o600)
    assert.equal((await client.status()).peerId, '12D3KooWA')
    assert.equal((await client.peers())[0].peerId, '12D3KooWB')
    assert.equal((await client.listSnapshots()).length, 3)
    assert.equal((await client.createSnapshot({ tag: 'x' })).tag, 'x')
    assert.equal((await client.getSnapshot('bb')).status, 'partial')
  })

  it('maps unknown and ambiguous prefixes to 404 and 409', async () => {
    await assert.rejects(client.getSnapshot('ff'), (err: any) => err instanceof AdminError && err.status === 404 && err.code === 'ERR_NOT_FOUND')
    await assert.rejects(client.getSnapshot('aa'), (err: any) => err instanceof AdminError && err.status === 409 && /matches 2 snapshots/.test(err.message))
  })

  it('answers bad requests with 4xx and a message naming the problem', async () => {
    assert.equal((await raw(socketPath, 'GET', '/v1/nope')).status, 404)
    assert.equal((await raw(socketPath, 'GET', '/status')).status, 404)
    assert.equal((await raw(socketPath, 'DELETE', '/v1/snapshots')).status, 405)
    const badJson = await raw(socketPath, 'POST', '/v1/snapshots', '{"tag":')
    assert.equal(badJson.status, 400)
    assert.match(badJson.json.error, /not valid JSON/)
    const badField = await raw(socketPath, 'POST', '/v1/snapshots', '{"tag": 5}')
    assert.equal(badField.status, 400)
    assert.match(badField.json.error, /field "tag" must be string/)
    const unknown = await raw(socketPath, 'POST', '/v1/restore', '{"snapshot":"a","target":"/t","colour":"red"}')
    assert.equal(unknown.status, 400)
    assert.match(unknown.json.error, /unknown field "colour"/)
    const missing = await raw(socketPath, 'POST', '/v1/restore', '{"snapshot":"a"}')
    assert.match(missing.json.error, /field "target" is required/)
    const big = await raw(socketPath, 'POST', '/v1/snapshots', JSON.stringify({ tag: 'x'.repeat(100 * 1024) }))
    assert.equal(big.status, 413)
  })

  it('streams restore progress as NDJSON and ends with the result or the error', async () => {
    const seen: ProgressView[] = []
    const result = await client.restore({ snapshot: 'aa11', target: '/t' }, { onProgress: ev => { seen.push(ev) } })
    assert.equal(result.files, 3)
    assert.ok(seen.length >= 2 && seen.every(e => e.type === 'progress'))
    await assert.rejects(client.restore({ snapshot: 'bad', target: '/t' }), (err: any) => err.code === 'ERR_UNSAFE_PATH' && /\.\.\/x/.test(err.message))
  })

  it('aborts the restore when the client goes away', async () => {
    const controller = new AbortController()
    const p = client.restore({ snapshot: 'slow', target: '/t' }, { signal: controller.signal })
    await new Promise(resolve => setTimeout(resolve, 200))
    controller.abort()
    await assert.rejects(p)
    const deadline = Date.now() + 5000
    while (!backend.restoreAborted && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 50))
    assert.ok(backend.restoreAborted)
  })

  it('replaces a stale socket file but refuses to start beside a live agent', async () => {
    const second = new AdminServer({ backend }, { socketPath })
    await assert.rejects(second.start(), /already listening/)
    await server.stop()
    // a socket file left behind by a crash
    const net = await import('node:net')
    const stale = net.createServer()
    await new Promise<void>(resolve => stale.listen(socketPath, resolve))
    await new Promise<void>(resolve => { (stale as any)._handle?.close(); resolve() })
    server = new AdminServer({ backend }, { socketPath })
    await server.start()
    assert.equal((await client.status()).name, 'a')
  })

  it('says plainly when no agent is listening', async () => {
    const c = new AdminClient({ socketPath: path.join(dir, 'none.sock') })
    await assert.rejects(c.status(), (err: any) => err instanceof AgentNotRunningError && /no agent is listening on .*none\.sock/.test(err.message))
  })

  it('the CLI prints the documented JSON and exits with the documented codes', async () => {
    const run = async (...args: string[]): Promise<{ code: number, stdout: string, stderr: string }> => {
      try {
        const r = await exec(process.execPath, [BIN, '--socket', socketPath, ...args])
        return { code: 0, ...r }
      } catch (err: any) {
        return { code: err.code, stdout: err.stdout, stderr: err.stderr }
      }
    }
    const list = await run('snapshot', 'list', '--json')
    assert.equal(list.code, 0)
    assert.deepEqual(JSON.parse(list.stdout).map((s: SnapshotView) => s.id.slice(0, 4)), ['aa11', 'aa22', 'bb33'])
    const table = await run('snapshot', 'list')
    assert.match(table.stdout, /^ID\s+STARTED\s+TAG\s+STATUS\s+OK$/m)
    assert.match(table.stdout, /^bb330000 .* partial\s+1\/1$/m)
    const show = await run('snapshot', 'show', 'aa', '--json')
    assert.equal(show.code, 1)
    assert.match(show.stderr, /^snapmesh: .*matches 2 snapshots/)
    const peers = JSON.parse((await run('peers', '--json')).stdout)
    assert.equal(peers[0].peerId, '12D3KooWB')
    const waited = await run('snapshot', 'create', '--wait', '--json', '--tag', 't')
    assert.equal(waited.code, 0)
    assert.equal(JSON.parse(waited.stdout).status, 'complete')
    const usage = await run('snapshot', 'create', '--timeout', 'soon')
    assert.equal(usage.code, 2)
    const restore = await run('restore', 'aa11', '--target', 'rel/dir', '--json')
    assert.equal(JSON.parse(restore.stdout).target, path.resolve('rel/dir'))
    const nosock = await exec(process.execPath, [BIN, '--socket', path.join(dir, 'x.sock'), 'status']).catch((err: any) => err)
    assert.equal(nosock.code, 1)
    assert.match(nosock.stderr, /no agent is listening/)
  })

  it('keygen writes a swarm key with mode 0600 and never overwrites one', async () => {
    const out = path.join(dir, 'swarm.key')
    await exec(process.execPath, [BIN, 'keygen', '--psk', '--out', out])
    assert.equal((await fs.stat(out)).mode & 0o777, 0o600)
    assert.match(await fs.readFile(out, 'utf8'), /^\/key\/swarm\/psk\/1\.0\.0\/\n\/base16\/\n[0-9a-f]{64}$/)
    const again = await exec(process.execPath, [BIN, 'keygen', '--psk', '--out', out]).catch((err: any) => err)
    assert.equal(again.code, 1)
    assert.match(again.stderr, /already exists/)
  })
})
