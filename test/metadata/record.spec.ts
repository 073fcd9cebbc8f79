import assert from 'node:assert/strict'
import * as dagCbor from '@ipld/dag-cbor'
import {
  ConflictingRecordError, InvalidRecordError, MAX_RECORD_BYTES, decodeRecord, encodeRecord, markerOf, mergeRecords, recordFromState, refreshRecord, stateFromRecord,
  type SnapshotRecord
} from '../../src/metadata/index.js'
import { DAG_CBOR } from '../../src/store/index.js'
import { applyResult, encodeResult, newState, signResult, type Marker, type SignedResult } from '../../src/snapshot/index.js'
import { errorBody, marker, okBody, peers, root, shuffle, type Peer } from '../snapshot/fixtures.js'

async function results (m: Marker, reporting: Peer[]): Promise<SignedResult[]> {
  return Promise.all(reporting.map(async (p, i) => signResult(p.key, okBody(m, p, { time: 1500 + i, root: root(i) }))))
}

function recordOf (m: Marker, rs: SignedResult[], now: number): SnapshotRecord {
  return recordFromState(rs.reduce(applyResult, newState(m)), now)
}

/**
 * A record map as it is encoded: its results as the signed envelopes they travel in. Tests tamper
 * with the in-memory record, then encode it with this.
 */
function wire (o: any): unknown {
  if (o == null || typeof o !== 'object' || Array.isArray(o) || !Array.isArray(o.results)) return o
  return { ...o, results: o.results.map((r: any) => r?.sig instanceof Uint8Array ? dagCbor.decode(encodeResult(r)) : r) }
}

/** asserts decodeRecord refuses the map with InvalidRecordError matching `re` */
async function refuses (o: object, re: RegExp): Promise<void> {
  await assert.rejects(decodeRecord(dagCbor.encode(wire(o))), (err: any) => {
    assert.ok(err instanceof InvalidRecordError, `expected InvalidRecordError, got ${err?.name}: ${err?.message}`)
    assert.equal(err.code, 'ERR_INVALID_RECORD')
    assert.match(err.message, re)
    return true
  })
}

describe('metadata / records', () => {
  it('round-trips, with a dag-cbor sha2-256 CID of its bytes', async () => {
    const ps = await peers(3)
    const m = marker(ps[0].id, ps.map(p => p.id), { tag: 'weekly' })
    const rec = recordOf(m, await results(m, ps), 2000)
    assert.equal(rec.status, 'complete')
    assert.equal(rec.finishedAt, 1502)
    const { cid, bytes } = encodeRecord(rec)
    assert.equal(cid.code, DAG_CBOR)
    assert.equal(cid.version, 1)
    const back = await decodeRecord(bytes)
    assert.ok(encodeRecord(back).cid.equals(cid))
    assert.equal(back.tag, 'weekly')
    assert.deepEqual(back.expected, m.expected)
    assert.deepEqual(back.results.map(r => r.peerId), [...ps.map(p => p.id)].sort())
    assert.deepEqual(markerOf(back), m)
  })

  it('the same results give the same CID whatever order they arrived or are listed in', async () => {
    const ps = await peers(4)
    const m = marker(ps[0].id, ps.map(p => p.id))
    const rs = await results(m, ps)
    rs.push(await signResult(ps[1].key, errorBody(m, ps[1], 'earlier failure', { time: 1000 })))
    const cid = encodeRecord(recordOf(m, rs, 2000)).cid
    for (let seed = 1; seed <= 20; seed++) {
      const rec = recordOf(m, shuffle(rs, seed), 2000)
      assert.ok(encodeRecord(rec).cid.equals(cid), `seed ${seed}`)
      assert.ok(encodeRecord({ ...rec, results: shuffle(rec.results, seed) }).cid.equals(cid), `listed order, seed ${seed}`)
    }
  })

  it('refuses a record carrying a result signed by key B that claims peer A, naming the result', async () => {
    const [a, b] = await peers(2)
    const m = marker(a.id, [a.id, b.id])
    const rec = recordOf(m, await results(m, [b]), 2000)
    const forged = await signResult(b.key, okBody(m, a))
    const rs = [forged, ...rec.results].sort((x, y) => x.peerId < y.peerId ? -1 : 1)
    const i = rs.indexOf(forged)
    await refuses({ ...rec, results: rs, status: 'complete' }, new RegExp(`results\\[${i}\\].*claims peer ${a.id} but is not signed by its key`))
    const unchecked = await decodeRecord(dagCbor.encode(wire({ ...rec, results: rs, status: 'complete' })), { verify: false })
    assert.equal(unchecked.results.length, 2, 'verify: false skips the signatures (for the local catalog)')
  })

  it('each decode error names the field', async () => {
    const [a, b] = await peers(2)
    const m = marker(a.id, [a.id, b.id])
    const rs = await results(m, [a, b])
    const rec = recordOf(m, rs, 2000)
    const withoutStatus: Partial<SnapshotRecord> = { ...rec }
    delete withoutStatus.status
    await assert.rejects(decodeRecord(new TextEncoder().encode('{"json":true}')), /snapshot record is not dag-cbor/)
    await refuses([rec], /must be a map/)
    await refuses({ ...rec, v: 2 }, /field "v" must be 1, got 2/)
    await refuses({ ...rec, type: 'snapmesh/head' }, /field "type" must be "snapmesh\/snapshot"/)
    await refuses({ ...rec, colour: 'blue' }, /unknown field "colour"/)
    await refuses({ ...rec, id: 'abc' }, /field "id" must be 64 lowercase hex digits/)
    await refuses({ ...rec, initiator: 'nobody' }, /field "initiator" is not a valid peer ID/)
    await refuses({ ...rec, lamport: -3 }, /field "lamport" must be a non-negative integer/)
    await refuses({ ...rec, deadline: rec.startedAt }, /field "deadline" must be after startedAt/)
    await refuses({ ...rec, expected: [...rec.expected].reverse() }, /field "expected" must be sorted/)
    await refuses({ ...rec, results: 'all good' }, /field "results" must be a list/)
    await refuses({ ...rec, results: [{ ...rs[0], name: 5 }] }, /results\[0\]: field "name" must be a string/)
    await refuses({ ...rec, results: [...rec.results].reverse() }, /results\[1\]: results must be sorted by peer ID with one per peer/)
    await refuses({ ...rec, results: [rec.results[0], rec.results[0]] }, /results\[1\]: results must be sorted by peer ID with one per peer/)
    const other = marker(a.id, [a.id])
    await refuses({ ...rec, results: await results(other, [a]) }, /results\[0\]: field "id" is [0-9a-f]{64}, a result of another snapshot/)
    await refuses(withoutStatus, /field "status" must be one of running, complete, partial, failed, got nothing/)
    await refuses({ ...rec, status: 'done' }, /field "status" must be one of/)
    await refuses({ ...rec, status: 'partial' }, /field "status" is "partial" but its results make it "complete"/)
    await refuses({ ...rec, results: [rec.results[0]], status: 'complete' }, /field "status" is "complete" but its results make it "running" or "partial"/)
    await refuses({ ...rec, reasons: [1] }, /field "reasons" entry 0 must be a string/)
    await refuses({ ...rec, finishedAt: -1 }, /field "finishedAt" must be a non-negative integer/)
    await assert.rejects(decodeRecord(new Uint8Array(MAX_RECORD_BYTES + 1)), /exceeds the limit/)
  })

  it('merging unions the results, keeps the better one per peer, and recomputes the status', async () => {
    const [a, b, c] = await peers(3)
    const m = marker(a.id, [a.id, b.id, c.id])
    const okA = await signResult(a.key, okBody(m, a))
    const errB = await signResult(b.key, errorBody(m, b, 'disk full', { time: 1200 }))
    const okB = await signResult(b.key, okBody(m, b, { time: 1100 }))
    const okC = await signResult(c.key, okBody(m, c))
    const one = recordOf(m, [okA, errB], 2000)
    const two = recordOf(m, [okB, okC], 2000)
    assert.equal(one.status, 'running')
    const merged = mergeRecords(one, two, 2000)
    assert.equal(merged.status, 'complete')
    assert.equal(merged.results.length, 3)
    assert.equal(merged.results.find(r => r.peerId === b.id)?.status, 'ok', 'ok beats error')
    assert.deepEqual(mergeRecords(two, one, 2000), merged, 'merge is commutative')
    assert.deepEqual(mergeRecords(merged, merged, 2000), merged, 'and idempotent')
    const late = mergeRecords(one, recordOf(m, [], 2000), m.deadline)
    assert.equal(late.status, 'partial', 'the status is recomputed at the time given')
    assert.ok(late.reasons?.some(r => r.includes('disk full')))
    assert.ok(late.reasons?.some(r => r.includes(c.id)))
    assert.equal(late.finishedAt, m.deadline)
  })

  it('refuses to merge records that describe different snapshots', async () => {
    const [a, b] = await peers(2)
    const m = marker(a.id, [a.id, b.id])
    const rec = recordOf(m, [], 2000)
    assert.throws(() => mergeRecords(rec, { ...rec, expected: [a.id] }, 2000), (err: any) => err instanceof ConflictingRecordError && /field "expected" differs/.test(err.message))
    assert.throws(() => mergeRecords(rec, { ...rec, deadline: rec.deadline + 1 }, 2000), /field "deadline" differs/)
    const other = recordOf(marker(a.id, [a.id]), [], 2000)
    assert.throws(() => mergeRecords(rec, other, 2000), ConflictingRecordError)
  })

  it('refreshRecord brings a record stored while running up to date', async () => {
    const [a, b] = await peers(2)
    const m = marker(a.id, [a.id, b.id])
    const running = recordOf(m, await results(m, [a]), 2000)
    assert.equal(running.status, 'running')
    assert.equal(refreshRecord(running, m.deadline).status, 'partial')
    assert.equal(stateFromRecord(running).results.size, 1)
  })
})
