import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import * as dagCbor from '@ipld/dag-cbor'
import { LevelDatastore } from 'datastore-level'
import { Catalog, ConflictingRecordError, encodeRecord, recordFromState, type SnapshotRecord } from '../../src/metadata/index.js'
import { InvalidSignatureError, applyResult, newState, signResult, type Marker } from '../../src/snapshot/index.js'
import { marker, okBody, peers, seededBytes, type Peer } from '../snapshot/fixtures.js'

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

async function rec (m: Marker, reporting: Peer[], now = 2000): Promise<SnapshotRecord> {
  let s = newState(m)
  for (const p of reporting) s = applyResult(s, await signResult(p.key, okBody(m, p)))
  return recordFromState(s, now)
}

describe('metadata / catalog', () => {
  let dir: string
  let cat: Catalog
  const clock = { now: 2000 }
  let a: Peer
  let b: Peer

  before(async () => { [a, b] = await peers(2) })
  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'snapmesh-catalog-'))
    clock.now = 2000
    cat = new Catalog({ path: dir, clock: () => clock.now })
    await cat.start()
  })
  afterEach(async () => {
    await cat.stop()
    await fs.rm(dir, { recursive: true, force: true })
  })

  it('puts and gets a record; an unknown ID gives undefined', async () => {
    const r = await rec(marker(a.id, [a.id, b.id], { tag: 'x' }), [a])
    const stored = await cat.put(r)
    assert.deepEqual(encodeRecord(stored), encodeRecord(r))
    const got = await cat.get(r.id)
    assert.ok(got != null)
    assert.deepEqual(encodeRecord(got), encodeRecord(r))
    assert.equal(got.tag, 'x')
    assert.equal(await cat.get('f'.repeat(64)), undefined)
  })

  it('merges a put with what is stored', async () => {
    const m = marker(a.id, [a.id, b.id])
    await cat.put(await rec(m, [a]))
    const merged = await cat.put(await rec(m, [b]))
    assert.equal(merged.status, 'complete')
    assert.deepEqual(merged.results.map(r => r.peerId), [a.id, b.id].sort())
    assert.equal((await cat.get(m.id))?.status, 'complete')
    const again = await cat.put(await rec(m, []))
    assert.equal(again.results.length, 2, 'a record with fewer results loses nothing')
  })

  it('merges concurrent puts of one snapshot without losing either', async () => {
    const m = marker(a.id, [a.id, b.id])
    await Promise.all([cat.put(await rec(m, [a])), cat.put(await rec(m, [b]))])
    assert.equal((await cat.get(m.id))?.results.length, 2)
  })

  it('refuses a record with a forged result, and one that contradicts the stored snapshot', async () => {
    const m = marker(a.id, [a.id, b.id])
    const forged = recordFromState(applyResult(newState(m), await signResult(b.key, okBody(m, a))), 2000)
    await assert.rejects(cat.put(forged), InvalidSignatureError)
    assert.equal(await cat.get(m.id), undefined)
    await cat.put(await rec(m, [a]))
    await assert.rejects(cat.put({ ...(await rec(m, [])), expected: [a.id] }), ConflictingRecordError)
  })

  it('brings the status of a record stored while running up to date when read', async () => {
    const m = marker(a.id, [a.id, b.id])
    await cat.put(await rec(m, [a]))
    assert.equal((await cat.get(m.id))?.status, 'running')
    clock.now = m.deadline
    const late = await cat.get(m.id)
    assert.equal(late?.status, 'partial')
    assert.ok(late?.reasons?.some(r => r.includes(b.id)))
    assert.equal((await cat.list())[0].status, 'partial')
  })

  it('lists newest first', async () => {
    const ms = [3000, 1000, 5000, 4000].map(t => marker(a.id, [a.id], { startedAt: t, deadline: t + 10_000 }))
    for (const m of ms) await cat.put(await rec(m, [a]))
    const tie = marker(a.id, [a.id], { startedAt: 5000, deadline: 15_000, lamport: 9 })
    await cat.put(await rec(tie, [a]))
    assert.deepEqual((await cat.list()).map(r => r.id), [tie.id, ms[2].id, ms[3].id, ms[0].id, ms[1].id])
  })

  it('resolves a unique prefix, and names the prefix when none or several match', async () => {
    const random = seededBytes(3)
    const ids = Array.from({ length: 40 }, () => hex(random(32)))
    for (const id of ids) await cat.put(await rec(marker(a.id, [a.id], { id }), []))
    const target = ids[0]
    const unique = Array.from({ length: 64 }, (_, n) => target.slice(0, n + 1)).find(p => ids.filter(i => i.startsWith(p)).length === 1) as string
    assert.equal((await cat.resolve(unique)).id, target)
    assert.equal((await cat.resolve(target.toUpperCase())).id, target, 'prefixes are not case-sensitive')
    assert.equal((await cat.resolve(target)).id, target)
    const shared = [...'0123456789abcdef'].find(d => ids.filter(i => i.startsWith(d)).length > 1) as string
    assert.ok(shared != null, '40 random IDs share a first hex digit')
    await assert.rejects(cat.resolve(shared), (err: any) => err.code === 'ERR_AMBIGUOUS' && err.name === 'AmbiguousIdError' && err.message.includes(`"${shared}" matches`) && /give more of the ID/.test(err.message))
    const absent = [...'0123456789abcdef'].map(d => `${unique}${d}`).find(p => !target.startsWith(p)) as string
    await assert.rejects(cat.resolve(absent), (err: any) => err.code === 'ERR_NOT_FOUND' && err.name === 'NotFoundError' && err.message.includes(`"${absent}"`))
    await assert.rejects(cat.resolve('xyz'), (err: any) => err.code === 'ERR_NOT_FOUND' && err.message.includes('"xyz"'))
    await assert.rejects(cat.resolve(''), (err: any) => err.code === 'ERR_NOT_FOUND')
  })

  it('keeps small values in meta slots', async () => {
    assert.equal(await cat.getMeta('lamport'), undefined)
    await cat.setMeta('lamport', '12')
    await cat.setMeta('copies/abc', '3')
    await cat.setMeta('lamport', '13')
    assert.equal(await cat.getMeta('lamport'), '13')
    assert.equal(await cat.getMeta('copies/abc'), '3')
    assert.deepEqual(await cat.list(), [], 'meta values are not snapshots')
  })

  it('keeps records and meta values across a restart', async () => {
    const m = marker(a.id, [a.id, b.id])
    await cat.put(await rec(m, [a, b]))
    await cat.setMeta('last-root', 'bafyroot')
    await cat.stop()
    await cat.stop()
    cat = new Catalog({ path: dir, clock: () => clock.now })
    await cat.start()
    await cat.start()
    assert.equal((await cat.get(m.id))?.status, 'complete')
    assert.equal((await cat.get(m.id))?.results.length, 2)
    assert.equal(await cat.getMeta('last-root'), 'bafyroot')
  })

  it('sets aside, at its first start on a data folder of an older version, the entries it cannot read, keeping their bytes, and serves the rest', async () => {
    const good = marker(a.id, [a.id, b.id])
    await cat.put(await rec(good, [a, b]))
    await cat.stop()
    // entries as an older version wrote them: a result signed flat, a notice without an envelope
    const oldId = 'c'.repeat(64)
    const oldRecord = dagCbor.encode({ v: 1, type: 'snapmesh/snapshot', id: oldId, results: [{ v: 1, type: 'result', sig: new Uint8Array(64) }] })
    const oldNotice = dagCbor.encode({ v: 1, type: 'forget', id: 'd'.repeat(64), by: a.id, time: 5, prune: false, sig: new Uint8Array(64) })
    const raw = new LevelDatastore(dir)
    await raw.open()
    await raw.db.put(`/snapshots/${oldId}`, oldRecord)
    await raw.db.put(`/forgotten/${'d'.repeat(64)}`, oldNotice)
    // a data folder an older version wrote has no catalog format mark
    await raw.db.del('/meta/catalog-format')
    await raw.close()
    cat = new Catalog({ path: dir, clock: () => clock.now })
    await cat.start()
    assert.equal(await cat.get(oldId), undefined)
    assert.equal(await cat.forgotten('d'.repeat(64)), undefined)
    assert.deepEqual((await cat.list()).map(r => r.id), [good.id])
    assert.deepEqual(await cat.listForgotten(), [])
    assert.deepEqual(await cat.unreadable(), [`/forgotten/${'d'.repeat(64)}`, `/snapshots/${oldId}`])
    await cat.stop()
    const check = new LevelDatastore(dir)
    await check.open()
    try {
      assert.deepEqual(Buffer.from(await check.db.get(`/unreadable/snapshots/${oldId}`) as Uint8Array), Buffer.from(oldRecord))
    } finally {
      await check.close()
    }
    cat = new Catalog({ path: dir, clock: () => clock.now })
    await cat.start()
  })

  it('refuses use before start', async () => {
    const other = new Catalog({ path: path.join(dir, 'other') })
    await assert.rejects(other.get('a'.repeat(64)), (err: any) => err.code === 'ERR_NOT_STARTED')
  })
})
