import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { ConfigError, loadConfig, parseConfig } from '../../src/config/index.js'

describe('config / load', () => {
  let dir: string

  beforeEach(async () => { dir = await fs.mkdtemp(path.join(os.tmpdir(), 'snapmesh-config-')) })
  afterEach(async () => { await fs.rm(dir, { recursive: true, force: true }) })

  async function write (value: unknown): Promise<string> {
    const file = path.join(dir, 'agent.json')
    await fs.writeFile(file, typeof value === 'string' ? value : JSON.stringify(value))
    return file
  }

  async function rejects (value: unknown, field: string | undefined, pattern: RegExp): Promise<void> {
    const file = await write(value)
    await assert.rejects(loadConfig(file), (err: any) => {
      assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`)
      assert.equal(err.file, file)
      assert.equal(err.field, field)
      assert.match(err.message, pattern)
      assert.ok(err.message.startsWith(file), 'message names the file')
      return true
    })
  }

  it('resolves relative paths against the config file folder and applies defaults', async () => {
    const file = await write({ dataDir: 'data', sources: [{ name: 'etc', path: '../etc' }] })
    const c = await loadConfig(file)
    assert.equal(c.dataDir, path.join(dir, 'data'))
    assert.equal(c.adminSocket, path.join(dir, 'data', 'admin.sock'))
    assert.deepEqual(c.sources, [{ name: 'etc', path: path.resolve(dir, '../etc'), exclude: [], cwd: dir }])
    assert.equal(c.name, os.hostname())
    assert.equal(c.snapshot.deadlineSeconds, 120)
    assert.deepEqual(c.bootstrap, [])
  })

  it('the shipped default config is valid and keeps its data in the git-ignored data/ folder', async () => {
    const c = await loadConfig(new URL('../../../config/default.json', import.meta.url).pathname)
    const root = path.resolve(new URL('../../../', import.meta.url).pathname)
    assert.equal(c.dataDir, path.join(root, 'data', 'default'))
    const ignore = await fs.readFile(path.join(root, '.gitignore'), 'utf8')
    assert.match(ignore, /^data\/$/m)
  })

  it('names a field with a wrong type', async () => {
    await rejects({ snapshot: { deadlineSeconds: 'soon' } }, 'snapshot.deadlineSeconds', /must be number/)
  })

  it('names an unknown field', async () => {
    await rejects({ dataDir: 'd', sourcse: [] }, 'sourcse', /unknown field/)
  })

  it('names a missing required field inside a list', async () => {
    await rejects({ sources: [{ name: 'a', path: '.' }, { name: 'b' }] }, 'sources[1].path', /is required/)
  })

  it('rejects a bootstrap address without a peer ID', async () => {
    await rejects({ bootstrap: ['/ip4/127.0.0.1/tcp/4001'] }, 'bootstrap[0]', /must match pattern/)
  })

  it('rejects a listen address that is not a multiaddr', async () => {
    await rejects({ listen: ['/ip4/999.1.1.1/tcp/1'] }, 'listen[0]', /not a valid multiaddr/)
  })

  it('rejects duplicate source names', async () => {
    await rejects({ sources: [{ name: 'a', path: '.' }, { name: 'a', path: '..' }] }, 'sources[1].name', /duplicate source name/)
  })

  it('reads a command source and hooks, applying their defaults and resolving cwd', async () => {
    const file = await write({
      sources: [
        { name: 'db', command: ['pg_dump', 'mydb'], pre: { command: 'sync' }, post: { command: ['true'], timeoutSeconds: 5 } },
        { name: 'shell', command: 'pg_dumpall | gzip', output: 'all.sql.gz', timeoutSeconds: 600, cwd: 'work' },
        { name: 'files', path: 'f', pre: { command: ['fsfreeze', '-f', '/srv'], timeoutSeconds: 10 } }
      ]
    })
    const c = await loadConfig(file)
    assert.deepEqual(c.sources, [
      { name: 'db', cwd: dir, command: ['pg_dump', 'mydb'], output: 'stdout', timeoutSeconds: 3600, pre: { command: 'sync', timeoutSeconds: 60 }, post: { command: ['true'], timeoutSeconds: 5 } },
      { name: 'shell', cwd: path.join(dir, 'work'), command: 'pg_dumpall | gzip', output: 'all.sql.gz', timeoutSeconds: 600 },
      { name: 'files', cwd: dir, path: path.join(dir, 'f'), exclude: [], pre: { command: ['fsfreeze', '-f', '/srv'], timeoutSeconds: 10 } }
    ])
  })

  it('a source needs exactly one of path and command', async () => {
    await rejects({ sources: [{ name: 'a', path: '.', command: ['ls'] }] }, 'sources[0].command', /either a path or a command, not both/)
    await rejects({ sources: [{ name: 'a', exclude: ['x'] }] }, 'sources[0].path', /is required \(or command/)
  })

  it('refuses keys that do not fit the kind of source', async () => {
    await rejects({ sources: [{ name: 'a', command: ['ls'], exclude: ['*.tmp'] }] }, 'sources[0].exclude', /only a source with a path/)
    await rejects({ sources: [{ name: 'a', path: '.', output: 'x' }] }, 'sources[0].output', /only a source with a command/)
    await rejects({ sources: [{ name: 'a', path: '.', timeoutSeconds: 5 }] }, 'sources[0].timeoutSeconds', /only a source with a command/)
  })

  it('names what is wrong with a command', async () => {
    await rejects({ sources: [{ name: 'a', command: [] }] }, 'sources[0].command', /must NOT have fewer than 1 items/)
    await rejects({ sources: [{ name: 'a', command: ['pg_dump', 5] }] }, 'sources[0].command[1]', /must be string/)
    await rejects({ sources: [{ name: 'a', command: 42 }] }, 'sources[0].command', /must be array,string/)
    await rejects({ sources: [{ name: 'a', command: ['', 'x'] }] }, 'sources[0].command', /the program \(the first item\) must not be empty/)
    await rejects({ sources: [{ name: 'a', command: '   ' }] }, 'sources[0].command', /must not be blank/)
    await rejects({ sources: [{ name: 'a', command: ['ls'], timeoutSeconds: 0 }] }, 'sources[0].timeoutSeconds', /must be > 0/)
  })

  it('refuses an output name that is not a single file name', async () => {
    for (const output of ['..', 'a/b', '.', 'x'.repeat(256)]) {
      await rejects({ sources: [{ name: 'a', command: ['ls'], output }] }, 'sources[0].output', /is not a file name/)
    }
  })

  it('names what is wrong with a hook', async () => {
    await rejects({ sources: [{ name: 'a', path: '.', pre: { timeoutSeconds: 3 } }] }, 'sources[0].pre.command', /is required/)
    await rejects({ sources: [{ name: 'a', path: '.', post: { command: ['x'], timeout: 3 } }] }, 'sources[0].post.timeout', /unknown field/)
    await rejects({ sources: [{ name: 'a', path: '.', post: { command: ['x'], timeoutSeconds: -1 } }] }, 'sources[0].post.timeoutSeconds', /must be > 0/)
    await rejects({ sources: [{ name: 'a', path: '.', pre: ['fsfreeze', '-f', '/srv'] }] }, 'sources[0].pre', /must be object/)
    await rejects({ sources: [{ name: 'a', path: '.', pre: { command: '' } }] }, 'sources[0].pre.command', /must NOT have fewer than 1 characters/)
    await rejects({ sources: [{ name: 'a', path: '.', pre: { command: [''] } }] }, 'sources[0].pre.command', /must not be empty/)
  })

  it('rejects malformed JSON and a missing file, naming the file', async () => {
    await rejects('{ "dataDir": ', undefined, /not valid JSON/)
    await assert.rejects(loadConfig(path.join(dir, 'nope.json')), /nope\.json: file not found/)
  })

  it('rejects a socket path too long for a Unix socket', () => {
    assert.throws(() => parseConfig({ adminSocket: 'x'.repeat(120) }, path.join(dir, 'c.json')), (err: any) => err.field === 'adminSocket')
  })
})

describe('config / agent start', function () {
  this.timeout(30_000)

  it('an agent given a config with a wrong field does not start, and says which field', async () => {
    const { execFile } = await import('node:child_process')
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'snapmesh-config-'))
    try {
      const file = path.join(dir, 'bad.json')
      await fs.writeFile(file, JSON.stringify({ dataDir: 'data', sources: [{ name: 'x', path: '.', exclude: 'not-a-list' }] }))
      const bin = new URL('../../src/cli/bin.js', import.meta.url).pathname
      const result = await new Promise<{ code: number | null, stderr: string }>(resolve => {
        execFile(process.execPath, [bin, 'agent', '--config', file], { timeout: 20_000 }, (err: any, _stdout, stderr) => { resolve({ code: err?.code ?? 0, stderr }) })
      })
      assert.equal(result.code, 1)
      assert.match(result.stderr, /bad\.json: sources\[0\]\.exclude: must be array/)
      await assert.rejects(fs.stat(path.join(dir, 'data')), { code: 'ENOENT' }, 'nothing was created')
    } finally {
      await fs.rm(dir, { recursive: true, force: true })
    }
  })
})
