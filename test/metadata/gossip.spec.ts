import assert from 'node:assert/strict'
import { CID } from 'multiformats/cid'
import { COPIES_TOPIC, FORGET_TOPIC, encodeCopyReport, encodeForgetNotice, signCopyReport, signForgetNotice } from '../../src/metadata/index.js'
import { copyReportTopic, forgetTopic, futureDatedIn, validateCopyReportGossip, validateForgetGossip } from '../../src/metadata/gossip.js'
import { peers, root, type Peer } from '../snapshot/fixtures.js'

describe('metadata / gossip validation of copy reports and forget notices', () => {
  let a: Peer
  let b: Peer
  const id = 'e'.repeat(64)

  before(async () => { [a, b] = await peers(2) })

  it('a copy report from its reporter is accepted; from another sender, forged or malformed it is rejected', async () => {
    const report = await signCopyReport(a.key, { id, owner: a.id, root: root(1) as CID, reporter: a.id, time: 5, blocks: 3, copies: 2, wanted: 2, holders: [a.id, b.id] })
    const bytes = encodeCopyReport(report)
    const ok = await validateCopyReportGossip({ from: a.id, data: bytes })
    assert.equal(ok.action, 'accept')
    assert.equal(ok.message?.reporter, a.id)
    const relayedAsOwn = await validateCopyReportGossip({ from: b.id, data: bytes })
    assert.equal(relayedAsOwn.action, 'reject')
    assert.match(String(relayedAsOwn.error?.message), /names reporter .* but was sent by/)
    const forged = encodeCopyReport({ ...report, copies: 9 })
    assert.equal((await validateCopyReportGossip({ from: a.id, data: forged })).action, 'reject')
    assert.equal((await validateCopyReportGossip({ from: a.id, data: new Uint8Array([1, 2, 3]) })).action, 'reject')
    assert.equal(copyReportTopic(async () => {}).topic, COPIES_TOPIC)
  })

  it('a forget notice from its author is accepted; from another sender, forged or malformed it is rejected', async () => {
    const notice = await signForgetNotice(a.key, { id, by: a.id, time: 5, prune: true })
    const bytes = encodeForgetNotice(notice)
    const ok = await validateForgetGossip({ from: a.id, data: bytes })
    assert.equal(ok.action, 'accept')
    assert.equal(ok.message?.id, id)
    const other = await validateForgetGossip({ from: b.id, data: bytes })
    assert.equal(other.action, 'reject')
    assert.match(String(other.error?.message), /names .* but was sent by/)
    assert.equal((await validateForgetGossip({ from: a.id, data: encodeForgetNotice({ ...notice, prune: false }) })).action, 'reject')
    assert.equal((await validateForgetGossip({ from: a.id, data: new Uint8Array(4096) })).action, 'reject')
    assert.equal(forgetTopic(async () => {}).topic, FORGET_TOPIC)
  })

  it('a copy report or forget notice dated more than the allowed skew ahead is rejected; within it, accepted', async () => {
    const now = 1_000_000_000
    const clock = { now: () => now, maxSkewMs: 300_000 }
    const report = async (time: number): Promise<Uint8Array> => encodeCopyReport(await signCopyReport(a.key, { id, owner: a.id, root: root(1) as CID, reporter: a.id, time, blocks: 3, copies: 2, wanted: 2, holders: [a.id, b.id] }))
    const future = await validateCopyReportGossip({ from: a.id, data: await report(now + 400_000) }, clock)
    assert.equal(future.action, 'reject')
    assert.match(String(future.error?.message), /"time" is 400 s ahead of this agent's clock/)
    assert.equal((await validateCopyReportGossip({ from: a.id, data: await report(now + 200_000) }, clock)).action, 'accept')
    const notice = async (time: number): Promise<Uint8Array> => encodeForgetNotice(await signForgetNotice(a.key, { id, by: a.id, time, prune: false }))
    assert.equal((await validateForgetGossip({ from: a.id, data: await notice(now + 400_000) }, clock)).action, 'reject')
    assert.equal((await validateForgetGossip({ from: a.id, data: await notice(now) }, clock)).action, 'accept')
    // in a record from another agent
    const rec = { id, results: [{ peerId: a.id, time: now }], copies: [{ reporter: b.id, time: now + 400_000 }] }
    assert.match(futureDatedIn(rec, now, 300_000) ?? '', /copy report by .* "time" is 400 s ahead/)
    assert.equal(futureDatedIn({ ...rec, copies: [{ reporter: b.id, time: now }] }, now, 300_000), undefined)
  })
})
