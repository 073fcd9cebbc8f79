import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import { Bank, appSocketOf, checkSnapshot, meshed, restoreAll, runBank, type BankRunResult } from '../../scripts/bank.js'
import { LocalCluster } from '../../scripts/cluster.js'
import { tempDir } from './helpers.js'

const BALANCE = 10_000

describe('integration / bank: app channels and app state in consistent cuts', function () {
  this.timeout(240_000)
  let dir: string
  let cluster: LocalCluster
  const banks: Bank[] = []
  let run: BankRunResult

  before(async () => {
    dir = await tempDir('bank')
    cluster = new LocalCluster({
      dir,
      agents: ['b1', 'b2', 'b3', 'b4', 'b5'].map(name => ({ name, extra: { replication: { copies: 1 } } })),
      deadlineSeconds: 90
    })
    await cluster.start()
    await meshed(cluster)
    for (const agent of cluster.agents) banks.push(await new Bank({ socket: appSocketOf(agent), label: agent.name, balance: BALANCE }).start())
    for (const agent of cluster.agents) assert.deepEqual((await agent.client.status()).apps?.connected, ['bank'], `${agent.name} lists its app`)
  })

  after(async () => {
    for (const b of banks) await b.close().catch(() => {})
    await cluster?.stop()
    if (dir != null) await fs.rm(dir, { recursive: true, force: true })
  })

  it('five banks move money for 20 s while 20 snapshots start at random times from random agents', async () => {
    // a loaded machine is slower: the banks go on past 20 s until thousands of transfers were made
    run = await runBank({ cluster, banks, seconds: 20, snapshots: 20, seed: 20261, minTransfers: 2000 })
    assert.ok(run.transfers >= 2000, `only ${run.transfers} transfers`)
    assert.equal(run.snapshots.length, 20)
    for (const s of run.snapshots) assert.ok(s.status === 'complete' || s.status === 'partial' || s.status === 'failed', `snapshot ${s.id.slice(0, 8)} did not end`)
    // a snapshot started while its initiator was not connected to every agent expects only the
    // ones it saw, and one whose participant was held up past the deadline is partial: neither can
    // be checked against the total of all five banks. On a quiet machine all 20 cover every bank.
    const covered = run.snapshots.filter(s => s.status === 'complete' && s.covered === true)
    assert.ok(covered.length >= 10, `only ${covered.length} of 20 snapshots complete over all five banks: ${run.snapshots.filter(s => !covered.includes(s)).map(s => `${s.id.slice(0, 8)} ${s.status} ${(s.reasons ?? []).join('; ')}`).join(' | ')}`)
    // the money is all there once the transfers are over
    const live = banks.reduce((sum, b) => sum + b.balance, 0)
    assert.ok(live <= BALANCE * banks.length)
  })

  it('every snapshot complete over all five banks conserves money and records no transfer received that was not sent', async () => {
    let inFlight = 0
    // every snapshot that is complete over all five banks (see above)
    for (const s of run.snapshots.filter(x => x.status === 'complete' && x.covered === true)) {
      const parts = await restoreAll(banks, s.id)
      assert.deepEqual(checkSnapshot(parts, BALANCE * banks.length), [], `snapshot ${s.id.slice(0, 8)} started by ${s.by}`)
      inFlight += parts.reduce((k, p) => k + p.restored.messages.length, 0)
    }
    assert.ok(inFlight > 0, 'no snapshot recorded a transfer in flight: the channel state was not exercised')
  })
})
