import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import fs from 'node:fs/promises'
import http from 'node:http'
import path from 'node:path'
import { AdminClient, AdminError, AdminServer, AgentNotRunningError, SocketInUseError } from '../../src/admin/index.js'
import { ID_AA11, ID_BB33, ID_NEW, PEER_A, PEER_B, TestBackend, tempDir } from './fixtures.js'
import type { ProgressView, SnapshotView } from '../../src/admin/index.js'

interface RawAnswer { status: number, headers: http.IncomingHttpHeaders, text: string, json: any }

/** one HTTP request on the socket, without the typed client */
async function raw (socketPath: string, method: string, url: string, body?: string, headers: Record<string, string> = {}): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, method, path: url, headers }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', d => { text += d })
      res.on('end', () => {
        let json: any
        try { json = JSON.parse(text) } catch {}
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json })
      })
    })
    req.on('error', reject)
    req.end(body)
  })
}

/** leaves a socket file nobody listens on, as a crashed agent does */
async function leaveStaleSocket (socketPath: string): Promise<void> {
  const child = spawn(process.execPath, ['-e', `require('node:net').createServer().listen(${JSON.stringify(socketPath)}, () => process.kill(process.pid, 'SIGKILL'))`])
  await once(child, 'exit')
  assert.ok((await fs.lstat(socketPath)).isSocket())
}

describe('admin / server and client', () => {
  let dir: string
  let socketPath: string
  let backend: TestBackend
  let server: AdminServer
  let client: AdminClient

  beforeEach(async () => {
    dir = await tempDir('admin')
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

  it('listens on a socket only its owner can open', async () => {
    const st = await fs.lstat(socketPath)
    assert.ok(st.isSocket())
    assert.equal(st.mode & 0o777, 0o600)
  })

  it('serves status, peers and the snapshot list with their typed client', async () => {
    const status = await client.status()
    assert.equal(status.peerId, PEER_A)
    assert.deepEqual(status.peers, { known: 2, connected: 1 })
    const peers = await client.peers()
    assert.deepEqual(peers.map(p => [p.peerId, p.connected]), [[PEER_B, true], ['12D3KooWCccc', false]])
    const list = await client.listSnapshots()
    assert.deepEqual(list.map(s => s.status), ['complete', 'complete', 'partial'])
    const answer = await raw(socketPath, 'GET', '/v1/status')
    assert.equal(answer.status, 200)
    assert.match(String(answer.headers['content-type']), /^application\/json/)
  })

  it('creates a snapshot with 201 and the new snapshot as the answer', async () => {
    const created = await client.createSnapshot({ tag: 'nightly' })
    assert.equal(created.id, ID_NEW)
    assert.equal(created.tag, 'nightly')
    assert.equal(created.status, 'running')
    const answer = await raw(socketPath, 'POST', '/v1/snapshots', '{}', { 'content-type': 'application/json' })
    assert.equal(answer.status, 201)
    const noBody = await raw(socketPath, 'POST', '/v1/snapshots')
    assert.equal(noBody.status, 201)
  })

  it('finds a snapshot by a unique prefix; an unknown one is 404 and an ambiguous one 409', async () => {
    assert.equal((await client.getSnapshot('bb')).id, ID_BB33)
    assert.equal((await client.getSnapshot(ID_AA11)).id, ID_AA11)
    await assert.rejects(client.getSnapshot('ff'), (err: any) => {
      return err instanceof AdminError && err.status === 404 && err.code === 'ERR_NOT_FOUND' && /no snapshot matches "ff"/.test(err.message)
    })
    await assert.rejects(client.getSnapshot('aa'), (err: any) => {
      return err instanceof AdminError && err.status === 409 && err.code === 'ERR_AMBIGUOUS' && /matches 2 snapshots/.test(err.message)
    })
    const answer = await raw(socketPath, 'GET', '/v1/snapshots/aa')
    assert.deepEqual(Object.keys(answer.json).sort(), ['code', 'error'])
  })

  it('maps backend error codes: ERR_INVALID* to 400, anything else to 500 with the message kept', async () => {
    await assert.rejects(client.getSnapshot('zz'), (err: any) => err.status === 400 && err.code === 'ERR_INVALID_PREFIX' && /not hexadecimal/.test(err.message))
    const boom = await raw(socketPath, 'GET', '/v1/snapshots/boom')
    assert.equal(boom.status, 500)
    assert.deepEqual(boom.json, { error: 'the catalog is on fire', code: 'ERR_INTERNAL' })
  })

  it('answers unknown routes with 404 and wrong methods with 405 naming the allowed ones', async () => {
    for (const url of ['/v1/nope', '/status', '/v2/status', '/v1/snapshots/a/b', '/']) {
      const answer = await raw(socketPath, 'GET', url)
      assert.equal(answer.status, 404, url)
      assert.equal(answer.json.code, 'ERR_NOT_FOUND')
      assert.match(answer.json.error, /no route/)
    }
    const del = await raw(socketPath, 'DELETE', '/v1/snapshots')
    assert.equal(del.status, 405)
    assert.equal(del.headers.allow, 'GET, POST')
    assert.match(del.json.error, /DELETE is not allowed on \/v1\/snapshots/)
    assert.equal((await raw(socketPath, 'GET', '/v1/restore')).status, 405)
    assert.equal((await raw(socketPath, 'POST', '/v1/status', '{}')).status, 405)
  })

  it('answers malformed JSON with 400', async () => {
    const answer = await raw(socketPath, 'POST', '/v1/snapshots', '{"tag":')
    assert.equal(answer.status, 400)
    assert.equal(answer.json.code, 'ERR_INVALID_JSON')
    assert.match(answer.json.error, /not valid JSON/)
  })

  it('answers a body of the wrong shape with 400 naming the field', async () => {
    const cases: Array<[string, string, RegExp]> = [
      ['/v1/snapshots', '{"tag": 5}', /field "tag" must be string/],
      ['/v1/snapshots', '[]', /request body must be object/],
      ['/v1/restore', '{"snapshot":"a","target":"/t","colour":"red"}', /unknown field "colour"/],
      ['/v1/restore', '{"target":"/t"}', /field "snapshot" is required/],
      ['/v1/restore', '{"snapshot":"a"}', /field "target" is required/],
      ['/v1/restore', '{"snapshot":"a","target":"/t","include":["x",7]}', /field "include\[1\]" must be string/],
      ['/v1/restore', '{"snapshot":"a","target":"/t","resume":"yes"}', /field "resume" must be boolean/],
      ['/v1/restore', '{"snapshot":"a","target":"/t","keepSpecialBits":1}', /field "keepSpecialBits" must be boolean/],
      ['/v1/restore', '{"snapshot":"a","target":"/t","noOwner":"no"}', /field "noOwner" must be boolean/],
      ['/v1/verify', '{"snapshot":"a","repair":1}', /field "repair" must be boolean/]
    ]
    for (const [url, body, message] of cases) {
      const answer = await raw(socketPath, 'POST', url, body)
      assert.equal(answer.status, 400, body)
      assert.equal(answer.json.code, 'ERR_INVALID_REQUEST', body)
      assert.match(answer.json.error, message)
    }
    assert.equal(backend.restores.length, 0)
  })

  it('refuses a body over the limit with 413, whether its length was declared or not, and keeps serving', async () => {
    const big = JSON.stringify({ tag: 'x'.repeat(100 * 1024) })
    const declared = await raw(socketPath, 'POST', '/v1/snapshots', big, { 'content-length': String(Buffer.byteLength(big)) })
    assert.equal(declared.status, 413)
    assert.equal(declared.json.code, 'ERR_BODY_TOO_LARGE')
    const chunked = await raw(socketPath, 'POST', '/v1/snapshots', big, { 'transfer-encoding': 'chunked' })
    assert.equal(chunked.status, 413)
    assert.match(chunked.json.error, /over the limit of 65536 bytes/)
    assert.equal((await client.status()).name, 'alpha')
  })

  it('takes its body limit from init', async () => {
    await server.stop()
    server = new AdminServer({ backend }, { socketPath, maxBodyBytes: 64 })
    await server.start()
    assert.equal((await raw(socketPath, 'POST', '/v1/snapshots', JSON.stringify({ tag: 'x'.repeat(80) }))).status, 413)
    assert.equal((await raw(socketPath, 'POST', '/v1/snapshots', JSON.stringify({ tag: 'short' }))).status, 201)
  })

  it('with ?wait=1 answers once the snapshot is no longer running', async () => {
    await client.createSnapshot()
    const started = Date.now()
    const done = await client.getSnapshot(ID_NEW.slice(0, 6), { wait: true, timeoutSeconds: 10 })
    assert.equal(done.status, 'complete')
    assert.ok(Date.now() - started >= 150, 'it waited for the status to change')
    assert.ok(Date.now() - started < 3000, 'it answered soon after the change')
  })

  it('with ?wait=1 answers the running snapshot when the timeout passes, and refuses a bad timeout', async () => {
    backend = new TestBackend({ runningMs: 60_000 })
    await server.stop()
    server = new AdminServer({ backend }, { socketPath })
    await server.start()
    await client.createSnapshot()
    const started = Date.now()
    const still = await client.getSnapshot(ID_NEW, { wait: true, timeoutSeconds: 0.5 })
    const elapsed = Date.now() - started
    assert.equal(still.status, 'running')
    assert.ok(elapsed >= 450 && elapsed < 2500, `answered after ${elapsed} ms`)
    assert.ok(backend.getCalls >= 3, 'the backend was asked again while waiting')
    const bad = await raw(socketPath, 'GET', `/v1/snapshots/${ID_NEW}?wait=1&timeout=soon`)
    assert.equal(bad.status, 400)
    assert.match(bad.json.error, /query parameter "timeout"/)
    const snap: SnapshotView = (await raw(socketPath, 'GET', `/v1/snapshots/${ID_NEW}?wait=0`)).json
    assert.equal(snap.status, 'running')
  })

  it('streams restore progress as NDJSON lines ending with the result', async () => {
    const seen: ProgressView[] = []
    const result = await client.restore({ snapshot: 'aa11', target: '/restore/here' }, { onProgress: ev => { seen.push(ev) } })
    assert.equal(result.files, 3)
    assert.equal(result.target, '/restore/here')
    assert.ok(seen.length >= 2, `${seen.length} progress events`)
    assert.ok(seen.every(e => e.type === 'progress'))
    assert.deepEqual(backend.restores[0], { snapshot: 'aa11', target: '/restore/here' })

    const answer = await raw(socketPath, 'POST', '/v1/restore', JSON.stringify({ snapshot: 'aa11', target: '/t' }))
    assert.equal(answer.status, 200)
    assert.equal(answer.headers['content-type'], 'application/x-ndjson')
    const lines = answer.text.trimEnd().split('\n').map(l => JSON.parse(l))
    assert.equal(lines.at(-1).type, 'done')
    assert.equal(lines.at(-1).result.bytes, 3000)
    assert.ok(lines.slice(0, -1).every(l => l.type === 'progress' && typeof l.files === 'number' && typeof l.bytes === 'number'))
    // the newest progress is never dropped, however close together the events came
    assert.deepEqual(lines.at(-2), { type: 'progress', phase: 'restore', files: 3, bytes: 3000, totalBytes: 3000 })
  })

  it('ends a failed restore stream with an error line carrying the code', async () => {
    await assert.rejects(client.restore({ snapshot: 'evil', target: '/t' }), (err: any) => {
      return err instanceof AdminError && err.code === 'ERR_UNSAFE_PATH' && /refusing to restore "\.\.\/x"/.test(err.message)
    })
    await assert.rejects(client.restore({ snapshot: 'ff', target: '/t' }), (err: any) => err.status === 404 && err.code === 'ERR_NOT_FOUND')
    const answer = await raw(socketPath, 'POST', '/v1/restore', JSON.stringify({ snapshot: 'evil', target: '/t' }))
    assert.deepEqual(JSON.parse(answer.text.trimEnd().split('\n').at(-1) ?? ''), { type: 'error', error: 'refusing to restore "../x": it leaves the target', code: 'ERR_UNSAFE_PATH' })
  })

  it('aborts the restore when the client goes away', async () => {
    const controller = new AbortController()
    const p = client.restore({ snapshot: 'slow', target: '/t' }, { signal: controller.signal })
    while (backend.restores.length === 0) await new Promise(resolve => setTimeout(resolve, 10))
    assert.equal(backend.restoreAborted, false)
    controller.abort()
    await assert.rejects(p, (err: any) => err.name === 'AbortError')
    const deadline = Date.now() + 3000
    while (!backend.restoreAborted && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 20))
    assert.ok(backend.restoreAborted, 'the backend saw the abort')
  })

  it('serves verify with the report', async () => {
    assert.equal((await client.verify({ snapshot: 'aa11' })).ok, true)
    const bad = await client.verify({ snapshot: 'bb33', readData: true })
    assert.equal(bad.ok, false)
    assert.equal(bad.participants[0].problems[0].state, 'missing')
  })

  it('refuses to start beside a live agent on the same socket, which keeps serving', async () => {
    const second = new AdminServer({ backend }, { socketPath })
    await assert.rejects(second.start(), (err: any) => err instanceof SocketInUseError && err.message.includes(`another agent is already listening on ${socketPath}`))
    assert.equal((await client.status()).name, 'alpha')
  })

  it('replaces a socket file left by a crashed agent', async () => {
    await server.stop()
    await leaveStaleSocket(socketPath)
    await assert.rejects(client.status(), AgentNotRunningError)
    server = new AdminServer({ backend }, { socketPath })
    await server.start()
    assert.equal((await client.status()).name, 'alpha')
    assert.equal((await fs.lstat(socketPath)).mode & 0o777, 0o600)
  })

  it('refuses a socket path taken by a file that is not a socket, and leaves the file alone', async () => {
    const file = path.join(dir, 'not-a-socket')
    await fs.writeFile(file, 'keep me')
    const other = new AdminServer({ backend }, { socketPath: file })
    await assert.rejects(other.start(), (err: any) => err instanceof SocketInUseError && /exists and is not a socket/.test(err.message))
    assert.equal(await fs.readFile(file, 'utf8'), 'keep me')
  })

  it('removes its socket on stop; start and stop may be called twice', async () => {
    await server.start()
    await server.stop()
    await server.stop()
    await assert.rejects(fs.lstat(socketPath), { code: 'ENOENT' })
    await server.start()
    assert.equal((await client.status()).name, 'alpha')
  })

  it('says plainly when no agent is listening', async () => {
    const missing = new AdminClient({ socketPath: path.join(dir, 'none.sock') })
    await assert.rejects(missing.status(), (err: any) => {
      return err instanceof AgentNotRunningError && err.code === 'ERR_AGENT_NOT_RUNNING' &&
        err.message === `no agent is listening on ${path.join(dir, 'none.sock')} (is \`snapmesh agent\` running?)`
    })
  })
})
