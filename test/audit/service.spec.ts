import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { AuditedBackend } from '../../src/admin/audited.js'
import { AUDIT_TOPIC, AuditService, decodeAuditHead, verifyLog } from '../../src/audit/index.js'
import { ID_AA11, TestBackend } from '../admin/fixtures.js'
import { peers, type Peer } from '../snapshot/fixtures.js'

describe('audit / the service', () => {
  let host: Peer
  let other: Peer
  let dir: string
  let published: Array<{ topic: string, bytes: Uint8Array }>
  let audit: AuditService

  before(async () => { [host, other] = await peers(2) })

  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'snapmesh-audit-service-'))
    published = []
    audit = new AuditService({
      privateKey: host.key,
      mesh: { peerId: host.id, publish: async (topic, bytes) => { published.push({ topic, bytes }) }, subscribe: () => {}, connectedSpeaking: async () => [] },
      libp2p: { handle: async () => {}, unhandle: async () => {}, dialProtocol: async () => { throw new Error('no network here') } }
    }, { dir, headMs: 3_600_000, windowMs: 3_600_000 })
    await audit.start()
  })

  afterEach(async () => {
    await audit.stop()
    await fs.rm(dir, { recursive: true, force: true })
  })

  it('a flood of rejected gossip is one summary entry per window, counted per peer, topic and reason', async () => {
    for (let i = 0; i < 5000; i++) audit.rejected({ topic: '/snapmesh/snapshots/1.0.0', from: other.id, reason: 'InvalidSignatureError' })
    for (let i = 0; i < 3; i++) audit.rejected({ topic: AUDIT_TOPIC, from: other.id, reason: 'WrongAuditHeadAuthorError' })
    await audit.flushRejections()
    await audit.flushRejections()
    const entries = await audit.show()
    assert.equal(entries.length, 1, 'an empty window writes nothing')
    assert.equal(entries[0].action, 'gossip-rejected')
    assert.deepEqual(entries[0].data.counts, [
      { peer: other.id, topic: '/snapmesh/snapshots/1.0.0', reason: 'InvalidSignatureError', count: 5000 },
      { peer: other.id, topic: AUDIT_TOPIC, reason: 'WrongAuditHeadAuthorError', count: 3 }
    ])
  })

  it('a snapshot is logged once per status it ended with here, and only when this host took part', async () => {
    const r = { id: ID_AA11, status: 'partial', initiator: other.id, expected: [host.id, other.id], results: [{ peerId: host.id, status: 'ok' }] }
    await audit.recordSnapshot(r)
    await audit.recordSnapshot(r)
    await audit.recordSnapshot({ ...r, status: 'complete' })
    await audit.recordSnapshot({ ...r, id: 'bb'.repeat(32), expected: [other.id], results: [{ peerId: other.id, status: 'ok' }] })
    const entries = await audit.show()
    assert.deepEqual(entries.map(e => [e.action, e.data.id, e.data.status, e.data.part]), [['snapshot', ID_AA11, 'partial', 'ok'], ['snapshot', ID_AA11, 'complete', 'ok']])
  })

  it('recorded() logs what it ran with its outcome, the error\'s code when it failed', async () => {
    assert.equal(await audit.recorded('restore', { via: 'app', app: 'bank' }, async () => 7), 7)
    await assert.rejects(audit.recorded('restore', { via: 'app', app: 'bank' }, async () => { throw Object.assign(new Error('no such snapshot'), { code: 'ERR_NOT_FOUND' }) }), /no such snapshot/)
    const entries = await audit.show()
    assert.deepEqual(entries.map(e => e.data), [{ via: 'app', app: 'bank', outcome: 'ok' }, { via: 'app', app: 'bank', outcome: 'ERR_NOT_FOUND' }])
  })

  it('the head gossiped names the log\'s last entry, signed by this host', async () => {
    await audit.publishHead()
    assert.equal(published.length, 0, 'nothing while the log is empty')
    await audit.record('admin', { route: 'GET /v1/status', outcome: 'ok' })
    await audit.publishHead()
    assert.equal(published.length, 1)
    assert.equal(published[0].topic, AUDIT_TOPIC)
    const head = await decodeAuditHead(published[0].bytes)
    assert.equal(head.peerId, host.id)
    assert.equal(head.seq, 1)
    assert.equal(head.hash, audit.log.head().hash)
  })

  it('the audited backend records each request with its route, public parameters and outcome', async () => {
    const backend = new AuditedBackend(new TestBackend({ runningMs: 0 }), audit)
    await backend.status()
    await backend.getSnapshot('aa11')
    await backend.getSnapshot('aa11', { poll: true })
    await assert.rejects(backend.getSnapshot('ffff'))
    await backend.restore({ snapshot: 'aa11', target: '/tmp/x', include: ['etc'] }, {})
    const redacted = (await import('../../src/admin/audited.js')).publicParams({ app: 'bank', token: 's3cret', nested: { appToken: 'x', keep: 1 } })
    assert.deepEqual(redacted, { app: 'bank', token: '[redacted]', nested: { appToken: '[redacted]', keep: 1 } })
    await backend.auditVerify({})
    const entries = await audit.show()
    assert.deepEqual(entries.map(e => [e.action, e.data.route, e.data.outcome]), [
      ['admin', 'GET /v1/status', 'ok'],
      ['admin', 'GET /v1/snapshots/:id', 'ok'],
      ['admin', 'GET /v1/snapshots/:id', 'ERR_NOT_FOUND'],
      ['restore', 'POST /v1/restore', 'ok'],
      ['verify', 'POST /v1/audit/verify', 'ok']
    ])
    assert.deepEqual(entries[3].data.params, { snapshot: 'aa11', target: '/tmp/x', include: ['etc'] })
    assert.equal((await verifyLog(dir, host.id)).ok, true)
  })
})
