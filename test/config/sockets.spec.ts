import assert from 'node:assert/strict'
import path from 'node:path'
import { ConfigError, parseConfig, resolveGroup } from '../../src/config/index.js'

const FILE = '/etc/snapmesh/agent.json'

function fails (raw: unknown, field: string, pattern: RegExp): void {
  assert.throws(() => parseConfig(raw, FILE), (err: any) => {
    assert.ok(err instanceof ConfigError, String(err))
    assert.equal(err.field, field)
    assert.match(err.message, pattern)
    assert.ok(err.message.includes(field))
    return true
  })
}

describe('config / sockets and app tokens', () => {
  it('defaults: the full socket 0600, the read-only socket on at <dataDir>/admin-read.sock 0660, no groups, no tokens', () => {
    const c = parseConfig({ dataDir: 'd' }, FILE)
    assert.equal(c.adminSocket, '/etc/snapmesh/d/admin.sock')
    assert.equal(c.adminSocketMode, 0o600)
    assert.equal(c.readSocket, '/etc/snapmesh/d/admin-read.sock')
    assert.equal(c.readSocketMode, 0o660)
    assert.equal(c.adminSocketGroup, undefined)
    assert.equal(c.readSocketGroup, undefined)
    assert.equal(c.apps.tokens, undefined)
  })

  it('takes paths, octal modes, group names and gids, and token files relative to the config', () => {
    const c = parseConfig({
      readSocket: '/run/snapmesh/read.sock',
      adminSocketMode: '0660',
      readSocketMode: '666',
      adminSocketGroup: 'snapadmin',
      readSocketGroup: 1200,
      apps: { tokens: { bank: 'tokens/bank', 'ledger.v2': '/secret/ledger' } }
    }, FILE)
    assert.equal(c.readSocket, '/run/snapmesh/read.sock')
    assert.equal(c.adminSocketMode, 0o660)
    assert.equal(c.readSocketMode, 0o666)
    assert.equal(c.adminSocketGroup, 'snapadmin')
    assert.equal(c.readSocketGroup, 1200)
    assert.deepEqual(c.apps.tokens, { bank: path.join('/etc/snapmesh', 'tokens/bank'), 'ledger.v2': '/secret/ledger' })
    assert.equal(parseConfig({ readSocketGroup: '42' }, FILE).readSocketGroup, 42)
  })

  it('turns the read-only socket off with false or null', () => {
    assert.equal(parseConfig({ readSocket: false }, FILE).readSocket, undefined)
    assert.equal(parseConfig({ readSocket: null }, FILE).readSocket, undefined)
  })

  it('names the field of a wrong value', () => {
    fails({ adminSocketMode: 384 }, 'adminSocketMode', /must be string/)
    fails({ adminSocketMode: 'rw-------' }, 'adminSocketMode', /octal mode as a string/)
    fails({ adminSocketMode: '0666' }, 'adminSocketMode', /every local user/)
    fails({ adminSocketMode: '0604' }, 'adminSocketMode', /last digit must be 0/)
    fails({ readSocketMode: '0440' }, 'readSocketMode', /read and write/)
    fails({ readSocketMode: '4660' }, 'readSocketMode', /octal mode/)
    fails({ readSocket: true }, 'readSocket', /false to turn/)
    fails({ readSocket: 'x'.repeat(120) }, 'readSocket', /at most 100/)
    fails({ dataDir: 'x'.repeat(73) }, 'readSocket', /at most 100/)
    fails({ readSocket: 'a.sock', adminSocket: 'a.sock' }, 'readSocket', /differ from adminSocket/)
    fails({ readSocket: 'a.sock', apps: { socket: 'a.sock' } }, 'readSocket', /differ from apps.socket/)
    fails({ adminSocketGroup: 'bad group' }, 'adminSocketGroup', /not a group name/)
    fails({ readSocketGroup: -1 }, 'readSocketGroup', /must be >= 0/)
    fails({ apps: { tokens: { bank: 3 } } }, 'apps.tokens.bank', /must be string/)
    fails({ apps: { tokens: { 'no/slash': 'f' } } }, 'apps.tokens.no/slash', /not an app name/)
  })

  it('resolves group names to gids, and names the field of a group this host lacks', async () => {
    assert.equal(await resolveGroup(FILE, 'readSocketGroup', 'root'), 0)
    assert.equal(await resolveGroup(FILE, 'readSocketGroup', 77), 77)
    assert.equal(await resolveGroup(FILE, 'readSocketGroup', undefined), undefined)
    await assert.rejects(resolveGroup(FILE, 'adminSocketGroup', 'no-such-group-here'), (err: any) => {
      assert.ok(err instanceof ConfigError)
      assert.equal(err.field, 'adminSocketGroup')
      assert.match(err.message, /no group named "no-such-group-here"/)
      return true
    })
  })
})
