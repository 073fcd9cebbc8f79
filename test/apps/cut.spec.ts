import assert from 'node:assert/strict'
import { CutMachine, type AppMessage, type CutRecord, type Effect, type Frame } from '../../src/apps/cut.js'
import { marker, prng } from '../snapshot/fixtures.js'
import type { Marker } from '../../src/snapshot/index.js'

const enc = new TextEncoder()
const dec = new TextDecoder()

/** a bank account app as the machine sees it: a FIFO inbox it works through, a balance, transfer IDs */
interface Account {
  balance: number
  sent: Set<string>
  received: Set<string>
  inbox: Array<{ kind: 'request', snapshot: string } | { kind: 'message', message: AppMessage }>
}

interface BankState { balance: number, sent: string[], received: string[] }

interface SimOptions {
  seed: number
  agents?: number
  transfers?: number
  snapshots?: number
  /** probability that a frame in transit is also delivered a second time */
  duplicate?: number
  /** the rule broken on purpose: deliver a tagged message before cutting */
  deliverBeforeCut?: boolean
}

const PEERS = ['p0', 'p1', 'p2', 'p3', 'p4', 'p5', 'p6', 'p7']
const TOTAL_PER_ACCOUNT = 1000

/**
 * Agents with one bank app each, joined by a network that delivers frames in a seeded random
 * order, duplicates some and refuses some (app not ready) so they are sent again; snapshots start
 * at random steps at random agents, several at once. Returns every cut each agent completed.
 */
function simulate (o: SimOptions): { records: Map<string, Map<string, CutRecord>>, incomplete: string[], accounts: Map<string, Account> } {
  const rnd = prng(o.seed)
  const n = o.agents ?? 4
  const peers = PEERS.slice(0, n)
  const now = 10_000
  const machines = new Map(peers.map(p => [p, new CutMachine({ self: p, epoch: p.padStart(16, '0').replace(/p/g, 'a') })]))
  const accounts = new Map(peers.map(p => [p, { balance: TOTAL_PER_ACCOUNT, sent: new Set<string>(), received: new Set<string>(), inbox: [] } as Account]))
  for (const m of machines.values()) m.register('bank', now)
  const net: Array<{ from: string, to: string, frame: Frame }> = []
  const records = new Map<string, Map<string, CutRecord>>()
  const incomplete: string[] = []
  let tid = 0

  const apply = (peer: string, effects: Effect[]): void => {
    let list = effects
    if (o.deliverBeforeCut === true) list = [...effects.filter(e => e.type === 'deliver'), ...effects.filter(e => e.type !== 'deliver')]
    for (const e of list) {
      const acct = accounts.get(peer) as Account
      if (e.type === 'request-state') acct.inbox.push({ kind: 'request', snapshot: e.snapshot })
      else if (e.type === 'deliver') acct.inbox.push({ kind: 'message', message: e.message })
      else if (e.type === 'transmit') net.push({ from: peer, to: e.peer, frame: e.frame })
      else if (e.type === 'complete') {
        const byPeer = records.get(e.snapshot) ?? new Map<string, CutRecord>()
        byPeer.set(peer, e.record)
        records.set(e.snapshot, byPeer)
      } else if (e.type === 'incomplete') incomplete.push(`${peer}: ${e.reason}`)
    }
  }

  /** the app takes the next event from its socket */
  const step = (peer: string): void => {
    const acct = accounts.get(peer) as Account
    const ev = acct.inbox.shift()
    if (ev == null) return
    const m = machines.get(peer) as CutMachine
    if (ev.kind === 'request') {
      const state: BankState = { balance: acct.balance, sent: [...acct.sent], received: [...acct.received] }
      apply(peer, m.stateReply('bank', ev.snapshot, { state: enc.encode(JSON.stringify(state)) }))
    } else {
      const t = JSON.parse(dec.decode(ev.message.payload)) as { id: string, amount: number }
      acct.balance += t.amount
      acct.received.add(t.id)
    }
  }

  const send = (peer: string): void => {
    const acct = accounts.get(peer) as Account
    const to = peers[Math.floor(rnd() * n)]
    const amount = 1 + Math.floor(rnd() * 20)
    if (acct.balance < amount) return
    const id = `t${tid++}`
    acct.balance -= amount
    acct.sent.add(id)
    const { effects } = (machines.get(peer) as CutMachine).send('bank', { peer: to, app: 'bank' }, enc.encode(JSON.stringify({ id, amount })), now)
    apply(peer, effects)
  }

  const transfers = o.transfers ?? 400
  const snapshotsAt = new Set(Array.from({ length: o.snapshots ?? 6 }, () => Math.floor(rnd() * transfers)))
  const markers: Marker[] = []
  for (let i = 0; i < transfers * 4 || net.length > 0 || [...accounts.values()].some(a => a.inbox.length > 0); i++) {
    const r = rnd()
    const p = peers[Math.floor(rnd() * n)]
    if (i < transfers && snapshotsAt.has(i)) {
      const mk = marker(p, peers, { deadline: 1e12 })
      markers.push(mk)
      apply(p, (machines.get(p) as CutMachine).cut(mk, now))
    }
    if (i < transfers * 4 && r < 0.25) send(p)
    else if (r < 0.6) step(p)
    else if (net.length > 0) {
      const j = Math.floor(rnd() * net.length)
      const { from, to, frame } = net[j]
      const { verdict, effects } = (machines.get(to) as CutMachine).receive(from, frame, now)
      apply(to, effects)
      // an acknowledged frame leaves the network, sometimes only after a duplicate
      if (verdict.ok && rnd() >= (o.duplicate ?? 0)) net.splice(j, 1)
    }
  }
  // gossip: a marker reaches every agent in the end
  for (const mk of markers) for (const p of peers) apply(p, (machines.get(p) as CutMachine).cut(mk, now))
  while (net.length > 0 || [...accounts.values()].some(a => a.inbox.length > 0)) {
    for (const p of peers) step(p)
    const item = net.shift()
    if (item != null) apply(item.to, (machines.get(item.to) as CutMachine).receive(item.from, item.frame, now).effects)
  }
  return { records, incomplete, accounts }
}

/** what is wrong with one snapshot's cuts, over all agents: money not conserved, a receipt not sent */
function problems (records: Map<string, CutRecord>, peers: string[]): string[] {
  const out: string[] = []
  let total = 0
  const sent = new Set<string>()
  const received = new Set<string>()
  const inFlight: string[] = []
  for (const p of peers) {
    const rec = records.get(p)
    if (rec == null) { out.push(`no cut from ${p}`); continue }
    const part = rec.apps.find(a => a.app === 'bank')
    if (part?.state == null) { out.push(`no state of ${p}`); continue }
    const s = JSON.parse(dec.decode(part.state)) as BankState
    total += s.balance
    for (const t of s.sent) sent.add(t)
    for (const t of s.received) received.add(t)
    for (const m of part.inFlight) {
      const t = JSON.parse(dec.decode(m.payload)) as { id: string, amount: number }
      total += t.amount
      inFlight.push(t.id)
      if (received.has(t.id)) out.push(`${t.id} recorded both in flight and received`)
    }
  }
  if (total !== TOTAL_PER_ACCOUNT * peers.length) out.push(`balances plus in-flight sum to ${total}, not ${TOTAL_PER_ACCOUNT * peers.length}`)
  for (const t of [...received, ...inFlight]) if (!sent.has(t)) out.push(`${t} recorded as received but not as sent`)
  return out
}

describe('apps / cut machine', () => {
  for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
    it(`seed ${seed}: every snapshot completes everywhere and conserves money, under reordering and duplicates`, () => {
      const { records, incomplete } = simulate({ seed, duplicate: 0.2 })
      assert.deepEqual(incomplete, [])
      assert.ok(records.size >= 3, `only ${records.size} snapshots`)
      for (const [id, byPeer] of records) {
        assert.equal(byPeer.size, 4, `snapshot ${id.slice(0, 8)} completed at ${byPeer.size} agents`)
        assert.deepEqual(problems(byPeer, PEERS.slice(0, 4)), [], `snapshot ${id.slice(0, 8)}`)
      }
    })
  }

  it('records in-flight messages in some snapshot (the channel state is exercised)', () => {
    let inFlight = 0
    for (const seed of [1, 2, 3]) {
      for (const byPeer of simulate({ seed }).records.values()) {
        for (const rec of byPeer.values()) inFlight += rec.apps.reduce((n, a) => n + a.inFlight.length, 0)
      }
    }
    assert.ok(inFlight > 0)
  })

  it('the check catches a machine that delivers before cutting', () => {
    let broken = 0
    for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
      const { records } = simulate({ seed, deliverBeforeCut: true })
      for (const byPeer of records.values()) if (problems(byPeer, PEERS.slice(0, 4)).length > 0) broken++
    }
    assert.ok(broken > 0, 'no snapshot was inconsistent')
  })

  it('a duplicate is acknowledged and not delivered again', () => {
    const a = new CutMachine({ self: 'pa', epoch: 'aaaaaaaaaaaaaaaa' })
    const b = new CutMachine({ self: 'pb', epoch: 'bbbbbbbbbbbbbbbb' })
    a.register('x', 0)
    b.register('y', 0)
    const { effects } = a.send('x', { peer: 'pb', app: 'y' }, enc.encode('hi'), 0)
    const frame = (effects[0] as Extract<Effect, { type: 'transmit' }>).frame
    const first = b.receive('pa', frame, 0)
    const again = b.receive('pa', frame, 0)
    assert.deepEqual(first.effects.map(e => e.type), ['deliver'])
    assert.deepEqual(again, { verdict: { ok: true }, effects: [] })
  })

  it('a message for an app not connected is refused for a retry, and one claiming another sender for good', () => {
    const a = new CutMachine({ self: 'pa', epoch: 'aaaaaaaaaaaaaaaa' })
    const b = new CutMachine({ self: 'pb', epoch: 'bbbbbbbbbbbbbbbb' })
    a.register('x', 0)
    const frame = (a.send('x', { peer: 'pb', app: 'y' }, enc.encode('hi'), 0).effects[0] as Extract<Effect, { type: 'transmit' }>).frame
    const r = b.receive('pa', frame, 0)
    assert.equal(r.verdict.ok, false)
    assert.match((r.verdict as { error: string }).error, /no app named "y"/)
    assert.equal((r.verdict as { retry: boolean }).retry, true)
    const forged = b.receive('pc', frame, 0)
    assert.equal((forged.verdict as { retry: boolean }).retry, false)
  })

  it('a tagged message makes the receiver cut before it delivers, and starts the snapshot there', () => {
    const a = new CutMachine({ self: 'pa', epoch: 'aaaaaaaaaaaaaaaa' })
    const b = new CutMachine({ self: 'pb', epoch: 'bbbbbbbbbbbbbbbb' })
    a.register('x', 0)
    b.register('y', 0)
    const mk = marker('pa', ['pa', 'pb'], { deadline: 1e12 })
    assert.deepEqual(a.cut(mk, 0).map(e => e.type), ['request-state'])
    a.stateReply('x', mk.id, { state: enc.encode('s') })
    const { effects } = a.send('x', { peer: 'pb', app: 'y' }, enc.encode('after'), 0)
    const msg = (effects[0] as Extract<Effect, { type: 'transmit' }>).frame as Extract<Frame, { type: 'msg' }>
    assert.deepEqual(msg.message.cuts.map(c => c.id), [mk.id])
    assert.deepEqual(b.receive('pa', msg, 0).effects.map(e => e.type), ['started', 'request-state', 'deliver'])
  })

  it('a channel is incomplete at the deadline until every message sent before the cut arrived', () => {
    const a = new CutMachine({ self: 'pa', epoch: 'aaaaaaaaaaaaaaaa' })
    const b = new CutMachine({ self: 'pb', epoch: 'bbbbbbbbbbbbbbbb' })
    a.register('x', 0)
    b.register('y', 0)
    a.send('x', { peer: 'pb', app: 'y' }, enc.encode('lost'), 0)
    const mk = marker('pa', ['pa', 'pb'], { deadline: 100 })
    a.cut(mk, 0)
    const ann = a.stateReply('x', mk.id, { state: enc.encode('s') }).find(e => e.type === 'transmit') as Extract<Effect, { type: 'transmit' }>
    const bEffects = [...b.receive('pa', ann.frame, 0).effects]
    for (const e of bEffects) if (e.type === 'request-state') bEffects.push(...b.stateReply('y', e.snapshot, { state: enc.encode('t') }))
    assert.ok(!bEffects.some(e => e.type === 'complete'))
    const late = b.tick(101)
    assert.equal(late.length, 1)
    assert.match((late[0] as { reason: string }).reason, /pa\/x -> y: 0 of 1 messages sent before the cut arrived/)
  })

  it('an app that disconnects before it gives its state leaves an error in the cut', () => {
    const a = new CutMachine({ self: 'pa', epoch: 'aaaaaaaaaaaaaaaa' })
    a.register('x', 0)
    const mk = marker('pa', ['pa'], { deadline: 1e12 })
    a.cut(mk, 0)
    const done = a.unregister('x').find(e => e.type === 'complete') as Extract<Effect, { type: 'complete' }>
    assert.match(done.record.apps[0].error ?? '', /disconnected before it gave its state/)
  })
})
