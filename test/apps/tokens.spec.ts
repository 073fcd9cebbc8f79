import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { AppHub, AppTokenError } from '../../src/apps/index.js'
import { connectApp, AppAgentError } from '../../src/apps/client.js'
import type { AppHubInit } from '../../src/apps/index.js'
import { rawAppConnection } from './fixtures.js'

const SELF = '12D3KooWAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'

/** a hub with a real app socket; no peers (the app protocol is never dialled here) */
function hub (init: AppHubInit): AppHub {
  return new AppHub({
    libp2p: { handle: async () => {}, unhandle: async () => {}, dialProtocol: async () => { throw new Error('no peers here') } } as any,
    peerId: SELF,
    name: 'host',
    onMarker: () => {},
    restore: async () => { throw new Error('no restores here') }
  }, init)
}


describe('apps / tokens on the app socket', () => {
  let dir: string
  let h: AppHub
  let socketPath: string
  const BANK = 'bank-token-0123456789abcdef'
  const LEDGER = 'ledger-token-0123456789abcdef'

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'snapmesh-tokens-'))
    await fs.writeFile(path.join(dir, 'bank.token'), `${BANK}\n`, { mode: 0o600 })
    await fs.writeFile(path.join(dir, 'ledger.token'), LEDGER, { mode: 0o640 })
    socketPath = path.join(dir, 'apps.sock')
    h = hub({
      socketPath,
      workDir: path.join(dir, 'work'),
      maxMessageBytes: 1024,
      maxStateBytes: 1024,
      tokens: { bank: path.join(dir, 'bank.token'), ledger: path.join(dir, 'ledger.token') }
    })
    await h.start()
  })

  after(async () => {
    await h.stop()
    await fs.rm(dir, { recursive: true, force: true })
  })

  it('refuses a wrong or missing token and an unknown name, and the same connection then registers with the right token', async () => {
    const c = await rawAppConnection(socketPath)
    try {
      c.send({ type: 'hello', v: 1, app: 'bank' })
      let ev = await c.next()
      assert.equal(ev.type, 'error')
      assert.equal(ev.code, 'ERR_APP_TOKEN')
      assert.equal(ev.field, 'token')
      assert.match(ev.error, /app "bank" needs its token/)

      c.send({ type: 'hello', v: 1, app: 'bank', token: LEDGER })
      ev = await c.next()
      assert.equal(ev.code, 'ERR_APP_TOKEN')
      assert.match(ev.error, /wrong token for app "bank"/)

      c.send({ type: 'hello', v: 1, app: 'intruder', token: BANK })
      ev = await c.next()
      assert.equal(ev.code, 'ERR_APP_TOKEN')
      assert.equal(ev.field, 'app')
      assert.match(ev.error, /app "intruder" is not configured/)

      // nothing changed: the connection is no app, and no app is registered
      assert.deepEqual(h.status().apps, [])
      c.send({ type: 'restore', id: 'r1', snapshot: 'aaaa' })
      ev = await c.next()
      assert.equal(ev.code, 'ERR_APP_REGISTRATION')
      assert.match(ev.error, /say hello first/)

      // the control: the right token, on the same connection
      c.send({ type: 'hello', v: 1, app: 'bank', token: BANK })
      ev = await c.next()
      assert.equal(ev.type, 'welcome')
      assert.equal(ev.app, 'bank')
      assert.deepEqual(h.status().apps, ['bank'])
    } finally {
      c.close()
    }
    await waitUntil(() => h.status().apps.length === 0)
  })

  it('the client module passes a token or a token file; a wrong one rejects with the agent\'s code', async () => {
    const bank = await connectApp({ socket: socketPath, name: 'bank', tokenFile: path.join(dir, 'bank.token') })
    const ledger = await connectApp({ socket: socketPath, name: 'ledger', token: LEDGER })
    assert.deepEqual(h.status().apps, ['bank', 'ledger'])
    // a second process cannot take a name over, whatever token it has
    await assert.rejects(connectApp({ socket: socketPath, name: 'bank', token: LEDGER }), (err: any) => {
      assert.ok(err instanceof AppAgentError)
      assert.equal(err.code, 'ERR_APP_TOKEN')
      return true
    })
    await assert.rejects(connectApp({ socket: socketPath, name: 'other' }), /not configured/)
    assert.deepEqual(h.status().apps, ['bank', 'ledger'])
    await bank.close()
    await ledger.close()
  })

  it('refuses token files that every local user can read, or that are too short', async () => {
    await fs.writeFile(path.join(dir, 'open.token'), BANK, { mode: 0o644 })
    await fs.chmod(path.join(dir, 'open.token'), 0o644)
    await fs.writeFile(path.join(dir, 'short.token'), 'abc', { mode: 0o600 })
    for (const [file, pattern] of [['open.token', /readable by every local user/], ['short.token', /at least 16/]] as const) {
      const other = hub({ socketPath: path.join(dir, 'x.sock'), workDir: path.join(dir, 'w2'), maxMessageBytes: 1024, maxStateBytes: 1024, tokens: { a: path.join(dir, file) } })
      await assert.rejects(other.start(), (err: any) => err instanceof AppTokenError && pattern.test(err.message))
    }
  })

  it('without apps.tokens any name registers, with or without a token', async () => {
    const open = hub({ socketPath: path.join(dir, 'open.sock'), workDir: path.join(dir, 'w3'), maxMessageBytes: 1024, maxStateBytes: 1024 })
    await open.start()
    try {
      const a = await connectApp({ socket: path.join(dir, 'open.sock'), name: 'anything' })
      const b = await connectApp({ socket: path.join(dir, 'open.sock'), name: 'else', token: 'ignored-when-no-tokens' })
      assert.deepEqual(open.status().apps, ['anything', 'else'])
      await a.close()
      await b.close()
    } finally {
      await open.stop()
    }
  })
})

async function waitUntil (fn: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms
  while (!fn()) {
    if (Date.now() > end) throw new Error('timed out')
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}
