import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import * as dagCbor from '@ipld/dag-cbor'
import { Catalog, ForgottenSnapshotError, InvalidForgetNoticeError, InvalidRecordError, decodeForgetNotice, decodeHead, encodeForgetNotice, recordFromState, signForgetNotice, signHead, type ForgetNotice } from '../../src/metadata/index.js'
import { applyResult, newState, signResult } from '../../src/snapshot/index.js'
import { marker, okBody, peers, type Peer } from '../snapshot/fixtures.js'

/** notices compared by their encoding (a signature may come back as a Buffer or a Uint8Array) */
function same (x: ForgetNotice | undefined, y: ForgetNotice): void {
  assert.ok(x != null)
  assert.deepEqual(encodeForgetNotice(x), encodeForgetNotice(y))
}

describe('metadata / forget notices', () => {
  let a: Peer
  let b: Peer
  let dir: string
  let cat: Catalog

  before(async () => { [a, b] = await peers(2) })
  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'snapmesh-forget-'))
    cat = new Catalog({ path: dir, clock: () => 2000 })
    await cat.start()
  })
  afterEach(async () => {
    await cat.stop()
    await fs.rm(dir, { recursive: true, force: true })
  })

  it('round-trips a signed notice; a forged or altered one is refused naming why', async () => {
    const n = await signForgetNotice(a.key, { id: 'a'.repeat(64), by: a.id, time: 5, prune: true })
    same(await decodeForgetNotice(encodeForgetNotice(n)), n)
    const forged = { ...n, by: b.id }
    await assert.rejects(decodeForgetNotice(encodeForgetNotice(forged)), (err: Error) => err instanceof InvalidForgetNoticeError && /not signed by its key/.test(err.message))
    const altered = { ...n, id: 'b'.repeat(64) }
    await assert.rejects(decodeForgetNotice(encodeForgetNotice(altered)), InvalidForgetNoticeError)
    // a notice travels as an envelope { type, body, signer, sig }: tamper with its body or the envelope itself
    const env = dagCbor.decode(encodeForgetNotice(n)) as { body: Record<string, unknown> }
    await assert.rejects(decodeForgetNotice(dagCbor.encode({ ...env, body: { ...env.body, prune: 'yes' } })), /field "prune" must be true or false/)
    await assert.rejects(decodeForgetNotice(dagCbor.encode({ ...env, body: { ...env.body, extra: 1 } })), /unknown field "extra"/)
    await assert.rejects(decodeForgetNotice(dagCbor.encode({ ...env, extra: 1 })), /unknown field "extra"/)
  })

  it('the catalog keeps the notice in place of the record and refuses the record afterwards', async () => {
    const m = marker(a.id, [a.id])
    const record = recordFromState(applyResult(newState(m), await signResult(a.key, okBody(m, a))), 2000)
    await cat.put(record)
    const notice = await signForgetNotice(b.key, { id: m.id, by: b.id, time: 10, prune: false })
    const first = await cat.forget(notice)
    assert.equal(first.first, true)
    assert.equal(first.record?.id, m.id)
    assert.equal(await cat.get(m.id), undefined)
    assert.deepEqual((await cat.list()).map(r => r.id), [])
    same(await cat.forgotten(m.id), notice)
    await assert.rejects(cat.put(record), ForgottenSnapshotError)
    const again = await cat.forget(await signForgetNotice(a.key, { id: m.id, by: a.id, time: 11, prune: true }))
    assert.equal(again.first, false)
    same(await cat.forgotten(m.id), notice) // the first notice stays
    // kept across a restart
    await cat.stop()
    await cat.start()
    assert.deepEqual((await cat.listForgotten()).map(x => x.id), [m.id])
  })

  it('heads carry notices signed by other agents; a head with a forged notice is refused', async () => {
    const n = await signForgetNotice(b.key, { id: 'c'.repeat(64), by: b.id, time: 7, prune: true })
    const head = await decodeHead(await signHead(a.key, { peerId: a.id, seq: 3, snapshots: [], forgotten: [n] }))
    assert.equal(head.forgotten.length, 1)
    same(head.forgotten[0], n)
    const empty = await decodeHead(await signHead(a.key, { peerId: a.id, seq: 4, snapshots: [] }))
    assert.deepEqual(empty.forgotten, [])
    const bad = await signHead(a.key, { peerId: a.id, seq: 5, snapshots: [], forgotten: [{ ...n, by: a.id }] })
    await assert.rejects(decodeHead(bad), (err: Error) => err instanceof InvalidRecordError && /forget notice/.test(err.message))
  })
})
