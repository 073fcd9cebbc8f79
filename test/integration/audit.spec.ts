import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import path from 'node:path'
import { LocalCluster, waitFor, type LocalAgent } from '../../scripts/cluster.js'
import { cli, tempDir } from './helpers.js'
import type { AuditEntryView, AuditVerifyView, SnapshotView } from '../../src/admin/api.js'

/** the lines of one agent's audit log files, as [file, lines] */
async function logOf (agent: LocalAgent): Promise<Array<[string, string[]]>> {
  const dir = path.join(agent.dir, 'data', 'audit')
  const names = (await fs.readdir(dir)).filter(n => n.endsWith('.jsonl')).sort()
  return Promise.all(names.map(async n => [n, (await fs.readFile(path.join(dir, n), 'utf8')).split('\n').slice(0, -1)] as [string, string[]]))
}

async function verify (agent: LocalAgent): Promise<{ code: number, report: AuditVerifyView, stderr: string }> {
  const { code, stdout, stderr } = await cli(['--socket', agent.socket, 'audit', 'verify', '--json'])
  return { code, report: JSON.parse(stdout), stderr }
}

describe('integration / audit log', function () {
  this.timeout(240_000)
  let dir: string
  let cluster: LocalCluster
  let a1: LocalAgent
  let a2: LocalAgent

  before(async () => {
    dir = await tempDir('audit')
    const extra = { audit: { headSeconds: 1, maxFileBytes: 4096 } }
    cluster = new LocalCluster({ dir, agents: ['a1', 'a2', 'a3'].map(name => ({ name, extra })), deadlineSeconds: 30 })
    await cluster.start()
    a1 = cluster.get('a1')
    a2 = cluster.get('a2')
    for (const agent of cluster.agents) {
      await waitFor(`${agent.name} to see the others`, async () => (await agent.client.peers()).filter(p => p.connected).length >= 2, 30_000)
    }
  })

  after(async () => {
    await cluster?.stop()
    await fs.rm(dir, { recursive: true, force: true })
  })

  it('admin requests and the snapshots an agent took part in are listed by `audit show --json`', async () => {
    const created = await cli(['--socket', a1.socket, 'snapshot', 'create', '--tag', 'audited', '--wait', '--json'], { timeoutMs: 90_000 })
    assert.equal(created.code, 0, created.stderr)
    const snap = JSON.parse(created.stdout) as SnapshotView
    assert.equal(snap.status, 'complete')
    assert.equal((await cli(['--socket', a1.socket, 'prune', '--dry-run', '--json'])).code, 0)
    assert.notEqual((await cli(['--socket', a1.socket, 'snapshot', 'show', 'ffffffff'])).code, 0)
    for (const agent of [a1, a2]) {
      await waitFor(`${agent.name} to log the snapshot`, async () => {
        const { code, stdout } = await cli(['--socket', agent.socket, 'audit', 'show', '--json'])
        assert.equal(code, 0)
        return (JSON.parse(stdout) as AuditEntryView[]).some(e => e.action === 'snapshot' && e.data.id === snap.id && e.data.status === 'complete')
      })
    }
    const { code, stdout } = await cli(['--socket', a1.socket, 'audit', 'show', '--json'])
    assert.equal(code, 0)
    const entries = JSON.parse(stdout) as AuditEntryView[]
    assert.deepEqual(entries.map(e => e.seq), entries.map((_, i) => entries[0].seq + i), 'in order, none missing')
    const route = (r: string): AuditEntryView[] => entries.filter(e => e.data.route === r)
    assert.ok(route('GET /v1/status').length >= 1)
    const post = route('POST /v1/snapshots')
    assert.equal(post.length, 1)
    assert.deepEqual(post[0].data.params, { tag: 'audited' })
    assert.equal(post[0].data.outcome, 'ok')
    assert.equal(route('GET /v1/snapshots/:id').filter(e => (e.data.params as any)?.id === snap.id).length, 1, 'a long-poll is one entry, however often it asked')
    const prune = entries.find(e => e.action === 'prune')
    assert.equal(prune?.data.outcome, 'ok')
    assert.deepEqual(prune?.data.params, { dryRun: true })
    const missing = entries.filter(e => (e.data.params as any)?.id === 'ffffffff')
    assert.equal(missing.length, 1)
    assert.equal(missing[0].data.outcome, 'ERR_NOT_FOUND')
    assert.ok(entries.every(e => e.signer === a1.peerId))
    const later = await cli(['--socket', a1.socket, 'audit', 'show', '--since', new Date(Date.now() + 3600_000).toISOString(), '--json'])
    assert.deepEqual(JSON.parse(later.stdout), [])
    const text = await cli(['--socket', a1.socket, 'audit', 'show'])
    assert.match(text.stdout, /POST \/v1\/snapshots \{"tag":"audited"\} -> ok/)
  })

  it('an untouched log verifies, against the heads the other members hold of it', async () => {
    const last = (await a1.client.auditShow()).at(-1)?.seq ?? 0
    await waitFor('a2 and a3 to hold a recent head of a1', async () => {
      for (const other of cluster.agents.slice(1)) {
        const held = (await other.client.auditHeads()).find(h => h.peerId === a1.peerId)
        if (held == null || held.seq < last) return false
      }
      return true
    })
    const { code, report } = await verify(a1)
    assert.equal(code, 0, JSON.stringify(report.problem))
    assert.equal(report.ok, true)
    assert.deepEqual([...new Set(report.heads.map(h => h.holder))].sort(), cluster.agents.slice(1).map(a => a.peerId).sort())
    assert.ok(report.heads.every(h => h.status === 'match'))
    const text = await cli(['--socket', a1.socket, 'audit', 'verify'])
    assert.equal(text.code, 0)
    assert.match(text.stdout, /audit log ok/)
  })

  it('an entry modified on disk: `audit verify` exits 3 naming it; put back, the log verifies again', async () => {
    const file = path.join(a1.dir, 'data', 'audit', 'audit-000001.jsonl')
    const text = await fs.readFile(file, 'utf8')
    const lines = text.split('\n')
    const line = lines.findIndex((l, i) => i > 0 && l.includes('"outcome":"ok"')) + 1
    assert.ok(line > 1)
    const offset = Buffer.byteLength(lines.slice(0, line - 1).map(l => l + '\n').join('')) + Buffer.byteLength(lines[line - 1].slice(0, lines[line - 1].indexOf('"outcome":"ok"')))
    const patch = async (what: string): Promise<void> => {
      const fh = await fs.open(file, 'r+')
      try { await fh.write(Buffer.from(what), 0, Buffer.byteLength(what), offset) } finally { await fh.close() }
    }
    const seq = JSON.parse(lines[line - 1]).seq as number
    await patch('"outcome":"no"')
    const bad = await verify(a1)
    assert.equal(bad.code, 3, bad.stderr)
    assert.equal(bad.report.ok, false)
    assert.deepEqual({ ...bad.report.problem, message: undefined }, { kind: 'signature', file: 'audit-000001.jsonl', line, seq, message: undefined })
    const textual = await cli(['--socket', a1.socket, 'audit', 'verify'])
    assert.equal(textual.code, 3)
    assert.match(textual.stdout, new RegExp(`first bad entry audit-000001\\.jsonl line ${line} \\(seq ${seq}\\): signature`))
    await patch('"outcome":"ok"')
    const good = await verify(a1)
    assert.equal(good.code, 0, JSON.stringify(good.report.problem))
  })

  it('the tail cut off while the agent was down: `audit verify` exits 3, from the head another member holds', async () => {
    // a2 is cut (it bootstraps from a1, so it finds the others again after its restart); a1 holds its head
    for (let i = 0; i < 50; i++) await a2.client.status()
    const last = (await a2.client.auditShow()).at(-1)?.seq ?? 0
    assert.ok(last > 50)
    const held = await waitFor('a1 to hold a head of a2', async () => {
      const h = (await a1.client.auditHeads()).find(x => x.peerId === a2.peerId)
      return h != null && h.seq >= last ? h : undefined
    })
    await a2.stop()
    // keep the entries up to 45 below the head a1 holds (the restart and the waits below add a few)
    const keep = held.seq - 45
    for (const [name, lines] of await logOf(a2)) {
      const kept = lines.filter(l => JSON.parse(l).seq <= keep)
      await fs.writeFile(path.join(a2.dir, 'data', 'audit', name), kept.map(l => l + '\n').join(''))
    }
    const files = await logOf(a2)
    await a2.start()
    await waitFor('a2 to see a1 again', async () => (await a2.client.peers()).some(p => p.peerId === a1.peerId && p.connected), 30_000)
    const r = await waitFor('a2 to ask a1 for the head it holds', async () => {
      const v = await verify(a2)
      return v.report.asked.includes(a1.peerId) ? v : undefined
    }, 30_000, 1000)
    assert.equal(r.code, 3)
    assert.equal(r.report.problem?.kind, 'truncated', JSON.stringify(r.report.problem))
    assert.ok(r.report.problem?.seq != null && r.report.problem.seq < held.seq)
    // named by a1 or a3 (both hold heads of a2), with a head at least as new as the one read above
    const m = /but (\S+) holds a head of it at seq (\d+)/.exec(r.report.problem?.message ?? '')
    assert.ok(m != null && [a1.peerId, cluster.get('a3').peerId].includes(m[1]) && Number(m[2]) > keep, r.report.problem?.message)
    assert.ok(r.report.heads.some(h => h.holder === a1.peerId && h.status === 'ahead'))
    // it names the entry the log now ends at: the last line kept, or one written since the restart
    const [lastFile, lastLines] = files[files.length - 1]
    assert.ok(r.report.problem?.file != null && r.report.problem.file >= lastFile)
    if (r.report.problem?.file === lastFile) assert.ok((r.report.problem.line ?? 0) >= lastLines.length)
  })
})
