import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import * as dagCbor from '@ipld/dag-cbor'
import {
  Catalog, InvalidCopyReportError, InvalidRecordError, addCopyReport, decodeCopyReport, decodeRecord, encodeCopyReport, encodeRecord, mergeCopyReports, mergeRecords,
  recordFromState, refreshRecord, signCopyReport, type CopyReport, type CopyReportBody, type SnapshotRecord
} from '../../src/metadata/index.js'
import { applyResult, newState, signResult, type Marker } from '../../src/snapshot/index.js'
import { toSnapshotView } from '../../src/admin/views.js'
import { errorBody, marker, okBody, peers, root, shuffle, type Peer } from '../snapshot/fixtures.js'

function body (m: Marker, owner: Peer, reporter: Peer, over: Partial<CopyReportBody> = {}): CopyReportBody {
  const i = m.expected.indexOf(owner.id)
  const other = m.expected[(i + 1) % m.expected.length]
  return { id: m.id, owner: owner.id, root: root(i), reporter: reporter.id, time: 5000, blocks: 10, copies: 2, wanted: 2, holders: [reporter.id, reporter.id === owner.id ? other : owner.id], ...over }
}

describe('metadata / copy reports', () => {
  let ps: Peer[]
  let m: Marker
  let rec: SnapshotRecord

  before(async () => {
    ps = (await peers(3)).sort((a, b) => a.id < b.id ? -1 : 1)
    m = marker(ps[0].id, ps.map(p => p.id))
    // every participant i reports ok with root(i): the fixtures' roots are indexed by position in expected
    let s = newState(m)
    for (const p of ps) s = applyResult(s, await signResult(p.key, okBody(m, p, { time: 1500, root: root(m.expected.indexOf(p.id)) })))
    rec = recordFromState(s, 2000)
  })

  it('round-trips a report signed by its reporter; any changed field or another key is refused', async () => {
    const r = await signCopyReport(ps[1].key, body(m, ps[0], ps[1]))
    const back = await decodeCopyReport(encodeCopyReport(r))
    assert.deepEqual(encodeCopyReport(back), encodeCopyReport(r))
    assert.equal(back.copies, 2)
    await assert.rejects(decodeCopyReport(encodeCopyReport({ ...r, copies: 1 })), /not signed by its key/)
    const forged = await signCopyReport(ps[2].key, body(m, ps[0], ps[1]))
    await assert.rejects(decodeCopyReport(encodeCopyReport(forged)), (err: any) => err instanceof InvalidCopyReportError && /claims reporter/.test(err.message))
    // a report travels as an envelope { type, body, signer, sig }: tamper with its body or the envelope itself
    const env = dagCbor.decode(encodeCopyReport(r)) as { body: Record<string, unknown> }
    await assert.rejects(decodeCopyReport(dagCbor.encode({ ...env, body: { ...env.body, extra: 1 } })), /unknown field "extra"/)
    await assert.rejects(decodeCopyReport(dagCbor.encode({ ...env, extra: 1 })), /unknown field "extra"/)
    await assert.rejects(decodeCopyReport(dagCbor.encode({ ...env, body: { ...env.body, copies: 3 } })), /copies.*only 2 holders/)
    await assert.rejects(decodeCopyReport(new Uint8Array([0xff, 0x00])), /not dag-cbor/)
    const bystander = await signCopyReport(ps[2].key, body(m, ps[0], ps[2], { holders: [ps[0].id, ps[1].id] }))
      .catch((err: Error) => err)
    assert.ok(bystander instanceof InvalidCopyReportError && /must include the reporter/.test(bystander.message))
  })

  it('merging keeps the newest report per owner, whatever the order, and drops one whose root is not the owner\'s', async () => {
    const older = await signCopyReport(ps[0].key, body(m, ps[0], ps[0], { time: 5000, copies: 2 }))
    const newer = await signCopyReport(ps[1].key, body(m, ps[0], ps[1], { time: 6000, copies: 1, holders: [ps[1].id] }))
    const other = await signCopyReport(ps[1].key, body(m, ps[1], ps[1], { time: 5500 }))
    const wrongRoot = await signCopyReport(ps[2].key, body(m, ps[2], ps[2], { root: root(99), time: 9000 }))
    const all = [older, newer, other, wrongRoot]
    const expected = mergeCopyReports(all, [], rec)
    assert.deepEqual(expected.map(r => [r.owner, r.time]), [[ps[0].id, 6000], [ps[1].id, 5500]].sort((a, b) => a[0] < b[0] ? -1 : 1))
    for (let seed = 1; seed <= 10; seed++) {
      const list = shuffle(all, seed)
      const cut = seed % all.length
      assert.deepEqual(mergeCopyReports(list.slice(0, cut), list.slice(cut), rec), expected, `seed ${seed}`)
    }
  })

  it('a record carries its reports through encode, decode, refresh and merge; a forged one makes it invalid', async () => {
    const r0 = await signCopyReport(ps[0].key, body(m, ps[0], ps[0]))
    const r1 = await signCopyReport(ps[1].key, body(m, ps[1], ps[1], { copies: 1, holders: [ps[1].id] }))
    const withOne = addCopyReport(rec, r0)
    const withTwo = addCopyReport(withOne, r1)
    assert.equal(withTwo.copies?.length, 2)
    assert.notEqual(encodeRecord(withTwo).cid.toString(), encodeRecord(rec).cid.toString())
    const back = await decodeRecord(encodeRecord(withTwo).bytes)
    const bytesOf = (r: SnapshotRecord): Uint8Array[] | undefined => r.copies?.map(encodeCopyReport)
    assert.deepEqual(bytesOf(back), bytesOf(withTwo))
    assert.deepEqual(bytesOf(refreshRecord(back, 3000)), bytesOf(withTwo))
    assert.deepEqual(bytesOf(mergeRecords(withOne, addCopyReport(rec, r1), 3000)), bytesOf(withTwo))

    const tampered: CopyReport = { ...r0, copies: 1 }
    await assert.rejects(decodeRecord(encodeRecord({ ...rec, copies: [tampered] }).bytes), (err: any) => err instanceof InvalidRecordError && /copies\[0\].*not signed/.test(err.message))
    const foreign = await signCopyReport(ps[0].key, body(m, ps[0], ps[0], { root: root(42) }))
    await assert.rejects(decodeRecord(encodeRecord({ ...rec, copies: [foreign] }).bytes), /copies\[0\]: root .* is not the owner's root/)
  })

  it('a snapshot is protected once every participant with data has the wanted copies', async () => {
    const two = (p: Peer): Promise<CopyReport> => signCopyReport(p.key, body(m, p, p))
    const view = async (r: SnapshotRecord): Promise<boolean> => (await toSnapshotView(r, { copiesWanted: 2 })).protected
    assert.equal(await view(rec), false)
    assert.equal((await toSnapshotView(rec, { copiesWanted: 1 })).protected, true)
    let r = addCopyReport(addCopyReport(rec, await two(ps[0])), await two(ps[1]))
    assert.equal(await view(r), false, 'one participant still has a single copy')
    r = addCopyReport(r, await two(ps[2]))
    assert.equal(await view(r), true)
    const v = await toSnapshotView(r, { copiesWanted: 2 })
    assert.ok(v.participants.every(p => p.copies === 2 && p.holders?.length === 2 && p.holders.includes(p.peerId) && p.copiesCountedBy === p.peerId))
    // a newer report of fewer copies (a holder died) takes protection away until repair reports again
    r = addCopyReport(r, await signCopyReport(ps[1].key, body(m, ps[2], ps[1], { time: 7000, copies: 1, holders: [ps[1].id] })))
    assert.equal(await view(r), false)
    assert.equal(await view(addCopyReport(r, await signCopyReport(ps[0].key, body(m, ps[2], ps[0], { time: 8000 })))), true)
    // a participant whose part failed needs no copies; a running snapshot is never protected
    let s = newState(m)
    s = applyResult(s, await signResult(ps[0].key, okBody(m, ps[0], { time: 1500, root: root(0) })))
    s = applyResult(s, await signResult(ps[1].key, errorBody(m, ps[1], 'disk gone', { time: 1500 })))
    const partial = addCopyReport(recordFromState(s, m.deadline + 1), await two(ps[0]))
    assert.equal(partial.status, 'partial')
    assert.equal(await view(partial), true)
    assert.equal(await view(addCopyReport(recordFromState(s, 1600), await two(ps[0]))), false)
  })

  it('a participant outside the marker\'s expected list is shown as extra', async () => {
    const m2 = marker(ps[0].id, [ps[0].id, ps[1].id])
    let s = newState(m2)
    for (const p of ps) s = applyResult(s, await signResult(p.key, okBody(m2, p, { time: 1500 })))
    const v = await toSnapshotView(recordFromState(s, 2000))
    assert.deepEqual(v.participants.map(p => p.extra === true), [false, false, true])
    assert.equal(v.participants[2].peerId, ps[2].id)
  })

  it('the catalog merges a report into a known snapshot durably and ignores one for an unknown snapshot', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'snapmesh-copies-'))
    const cat = new Catalog({ path: dir, clock: () => 3000 })
    await cat.start()
    try {
      const r = await signCopyReport(ps[0].key, body(m, ps[0], ps[0]))
      assert.equal(await cat.addCopyReport(r), undefined)
      await cat.put(rec)
      assert.equal((await cat.addCopyReport(r))?.copies?.length, 1)
      // a later put of the record without reports keeps the stored ones
      assert.equal((await cat.put(rec)).copies?.length, 1)
      // a put carrying a forged report is refused
      await assert.rejects(cat.put({ ...rec, copies: [{ ...r, time: 9999 }] }), /not signed/)
      // so is a result altered after signing, even though its signature is the stored one's
      await assert.rejects(cat.put({ ...rec, results: rec.results.map((x, i) => i === 0 ? { ...x, time: x.time + 1 } : x) }), /not signed/)
      await cat.stop()
      await cat.start()
      assert.deepEqual((await cat.get(m.id))?.copies?.map(encodeCopyReport), [encodeCopyReport(r)])
    } finally {
      await cat.stop()
      await fs.rm(dir, { recursive: true, force: true })
    }
  })
})
