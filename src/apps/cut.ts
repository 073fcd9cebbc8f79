// The app-channel cut: a pure state machine, one per agent. Given the same inputs and clock it
// returns the same effects; it does no I/O. The hub (hub.ts) feeds it what happens on the app
// socket and on the app protocol, and carries out the effects in the order returned.
//
// Processes are apps (one per (agent, app name)); a channel is (from agent, from app) -> (to
// agent, to app) within one incarnation (`epoch`) of the sending agent, and carries a sequence
// number from 1. The transport may reorder and duplicate; it must eventually deliver.
//
// The rule, per snapshot S:
// - The agent cuts S for all its connected apps at once: it asks each for its state. An app's
//   receive side is cut when the request is written to it (it handles its socket in order); its
//   send side when its state reply arrives: sends before the reply are before its cut (counted),
//   sends after carry S's marker (tagged).
// - A message tagged with S is delivered only once the receiving agent has cut S (it cuts first).
// - A message not tagged with S that reaches an app after the app's receive cut is recorded as
//   in flight in S (channel state), unless its sender's count says it was sent after the cut.
// - Once all its apps replied, an agent announces to every participant, per channel to that
//   participant, how many messages it sent before its cut (`cut` frame). A channel is complete
//   once every sequence number up to the count has arrived. S is complete at an agent when its
//   apps replied, every participant announced and every channel into its apps is complete.
import { DEFAULT_MAX_MARKER_AGE_MS } from '../snapshot/validate.js'
import type { Marker } from '../wire/index.js'

/** An app on an agent. */
export interface Endpoint { peer: string, app: string }

/** An app message as it travels between agents. */
export interface AppMessage {
  from: Endpoint
  to: Endpoint
  /** the sending agent's incarnation: channels restart at 1 when the agent restarts */
  epoch: string
  /** position in its channel (from -> to in this epoch), from 1 */
  seq: number
  payload: Uint8Array
  /** the markers of the snapshots the sending app had cut when it sent this */
  cuts: Marker[]
}

/** How many messages one app sent on one channel before its cut. */
export interface ChannelCount { from: string, to: string, count: number }

/** What agents send each other on the app protocol. */
export type Frame =
  | { type: 'msg', message: AppMessage }
  | { type: 'cut', marker: Marker, epoch: string, counts: ChannelCount[] }

/** An app's part of a complete cut. */
export interface AppCutPart {
  app: string
  /** the state the app gave; absent when it gave an error instead */
  state?: Uint8Array
  error?: string
  /** messages sent to it before their sender's cut and delivered after its own, in arrival order */
  inFlight: AppMessage[]
}

export interface CutRecord {
  marker: Marker
  apps: AppCutPart[]
  /** what this agent announced: per destination peer, the counts of its channels to it */
  announced: Record<string, ChannelCount[]>
}

export type Effect =
  /** write a state request to the app (before anything written after it) */
  | { type: 'request-state', app: string, snapshot: string }
  /** write the message to the app */
  | { type: 'deliver', app: string, message: AppMessage }
  /** send the frame to the peer, reliably (retry until it is acknowledged) */
  | { type: 'transmit', peer: string, frame: Frame }
  /** a cut started because of a peer's message: the agent should take its part of the snapshot */
  | { type: 'started', marker: Marker }
  | { type: 'complete', snapshot: string, record: CutRecord }
  | { type: 'incomplete', snapshot: string, reason: string }

export type Verdict = { ok: true } | { ok: false, retry: boolean, error: string }

export interface CutMachineInit {
  /** this agent's peer ID */
  self: string
  /** this incarnation, unique among the agent's restarts */
  epoch: string
  /** how long after its deadline a snapshot is remembered (duplicates ignored); default 10 min */
  retainMs?: number
}

interface AppEntry {
  connected: boolean
  /** last sequence number sent per destination (`peer\napp`) */
  sent: Map<string, number>
  /** snapshots whose send side this app has cut (or joined after): its messages carry them */
  cutSend: Set<string>
}

interface AppOutcome { replied: boolean, state?: Uint8Array, error?: string }

interface Announcement { epoch: string, counts: Map<string, number> }

interface Snap {
  marker: Marker
  /**
   * this agent's deadline for S: the marker's span counted on this agent's clock from its cut, or
   * the marker's deadline if later, so that an initiator whose clock is behind cannot end S here
   * before it started (as the snapshot protocol measures it)
   */
  deadline: number
  /** the apps asked for their state at the cut */
  apps: Map<string, AppOutcome>
  /** each app's sent counts when its send side was cut */
  countsAt: Map<string, Map<string, number>>
  announced?: Record<string, ChannelCount[]>
  /** per peer, what it announced for channels into this agent */
  announcements: Map<string, Announcement>
  recorded: Map<string, AppMessage[]>
  done: 'open' | 'complete' | 'incomplete'
}

/** All seen sequence numbers of one channel: everything up to `low`, and `above`. */
class SeqSet {
  low = 0
  private readonly above = new Set<number>()

  has (seq: number): boolean {
    return seq <= this.low || this.above.has(seq)
  }

  add (seq: number): void {
    if (this.has(seq)) return
    this.above.add(seq)
    while (this.above.delete(this.low + 1)) this.low++
  }
}

const destKey = (peer: string, app: string): string => `${peer}\n${app}`
const chanKey = (fromPeer: string, fromApp: string, toApp: string, epoch: string): string => `${fromPeer}\n${fromApp}\n${toApp}\n${epoch}`
const countKey = (from: string, to: string): string => `${from}\n${to}`

export class CutMachine {
  readonly self: string
  readonly epoch: string
  private readonly retainMs: number
  private readonly apps = new Map<string, AppEntry>()
  private readonly snaps = new Map<string, Snap>()
  private readonly received = new Map<string, SeqSet>()

  constructor (init: CutMachineInit) {
    this.self = init.self
    this.epoch = init.epoch
    this.retainMs = init.retainMs ?? 600_000
  }

  /** whether an app of this name is connected */
  connected (app: string): boolean {
    return this.apps.get(app)?.connected === true
  }

  /** the snapshots held (open, complete or incomplete), for status lines */
  snapshots (): Array<{ id: string, done: Snap['done'], pending: string[] }> {
    return [...this.snaps.values()].map(s => ({ id: s.marker.id, done: s.done, pending: [...s.apps].filter(([, o]) => !o.replied).map(([a]) => a) }))
  }

  /**
   * An app connected. Throws when one of that name is connected already. An app that connects
   * after the agent cut a snapshot is not part of it: its messages carry that snapshot, so no
   * receiver records them in it.
   */
  register (app: string, now: number): void {
    const entry = this.apps.get(app)
    if (entry?.connected === true) throw new Error(`an app named ${JSON.stringify(app)} is already connected`)
    const e = entry ?? { connected: false, sent: new Map(), cutSend: new Set() }
    e.connected = true
    for (const s of this.snaps.values()) if (now <= s.deadline) e.cutSend.add(s.marker.id)
    this.apps.set(app, e)
  }

  /** An app disconnected: a state it still owed counts as an error. */
  unregister (app: string): Effect[] {
    const e = this.apps.get(app)
    if (e == null || !e.connected) return []
    e.connected = false
    const out: Effect[] = []
    for (const s of this.snaps.values()) {
      const o = s.apps.get(app)
      if (o != null && !o.replied) out.push(...this.stateReply(app, s.marker.id, { error: `app ${JSON.stringify(app)} disconnected before it gave its state` }))
    }
    return out
  }

  /**
   * Cuts snapshot S here (idempotent): asks every connected app for its state. `remote` when a
   * peer's frame caused it (then a `started` effect tells the agent). A marker more than a day
   * past its deadline is not cut: asked locally, it is incomplete at once.
   */
  cut (marker: Marker, now: number, cause: 'local' | 'remote' = 'local'): Effect[] {
    if (this.snaps.has(marker.id)) return []
    // markers are captured up to a day past their deadline (skewed clocks), as gossip validation allows
    if (now > marker.deadline + DEFAULT_MAX_MARKER_AGE_MS) {
      return cause === 'local' ? [{ type: 'incomplete', snapshot: marker.id, reason: `snapshot ${marker.id.slice(0, 8)} reached this agent more than a day after its deadline` }] : []
    }
    const s: Snap = { marker, deadline: Math.max(marker.deadline, now + Math.max(0, marker.deadline - marker.startedAt)), apps: new Map(), countsAt: new Map(), announcements: new Map(), recorded: new Map(), done: 'open' }
    this.snaps.set(marker.id, s)
    const out: Effect[] = []
    if (cause === 'remote') out.push({ type: 'started', marker })
    for (const [name, e] of this.apps) {
      if (e.connected) {
        s.apps.set(name, { replied: false })
        s.recorded.set(name, [])
        out.push({ type: 'request-state', app: name, snapshot: marker.id })
      } else {
        // everything an absent app sent was sent before the cut
        s.countsAt.set(name, new Map(e.sent))
        e.cutSend.add(marker.id)
      }
    }
    out.push(...this.announceIfReady(s), ...this.completeIfReady(s))
    return out
  }

  /** An app's answer to a state request. A reply for a request not outstanding is ignored. */
  stateReply (app: string, snapshot: string, reply: { state: Uint8Array } | { error: string }): Effect[] {
    const s = this.snaps.get(snapshot)
    const o = s?.apps.get(app)
    if (s == null || o == null || o.replied) return []
    o.replied = true
    if ('state' in reply) o.state = reply.state
    else o.error = reply.error
    const e = this.apps.get(app)
    if (e != null) {
      s.countsAt.set(app, new Map(e.sent))
      e.cutSend.add(snapshot)
    }
    if (s.done !== 'open') return []
    return [...this.announceIfReady(s), ...this.completeIfReady(s)]
  }

  /** An app sends a message. Throws when the app is not connected. */
  send (app: string, to: Endpoint, payload: Uint8Array, now: number): { message: AppMessage, effects: Effect[] } {
    const e = this.apps.get(app)
    if (e == null || !e.connected) throw new Error(`no app named ${JSON.stringify(app)} is connected`)
    const key = destKey(to.peer, to.app)
    const seq = (e.sent.get(key) ?? 0) + 1
    e.sent.set(key, seq)
    const cuts: Marker[] = []
    for (const id of e.cutSend) {
      const s = this.snaps.get(id)
      if (s != null && now <= s.deadline) cuts.push(s.marker)
    }
    const message: AppMessage = { from: { peer: this.self, app }, to: { ...to }, epoch: this.epoch, seq, payload, cuts }
    return { message, effects: [{ type: 'transmit', peer: to.peer, frame: { type: 'msg', message } }] }
  }

  /**
   * A frame from `fromPeer` (this agent itself for messages between its own apps). The verdict
   * says whether to acknowledge it; a refused frame must be sent again later when `retry`.
   */
  receive (fromPeer: string, frame: Frame, now: number): { verdict: Verdict, effects: Effect[] } {
    return frame.type === 'msg' ? this.receiveMessage(fromPeer, frame.message, now) : this.receiveCut(fromPeer, frame, now)
  }

  private receiveMessage (fromPeer: string, m: AppMessage, now: number): { verdict: Verdict, effects: Effect[] } {
    if (m.from.peer !== fromPeer) return { verdict: { ok: false, retry: false, error: `message claims to come from ${m.from.peer} but was sent by ${fromPeer}` }, effects: [] }
    if (m.to.peer !== this.self) return { verdict: { ok: false, retry: false, error: `message is addressed to ${m.to.peer}, not to this agent (${this.self})` }, effects: [] }
    if (!this.connected(m.to.app)) return { verdict: { ok: false, retry: true, error: `no app named ${JSON.stringify(m.to.app)} is connected to ${this.self}` }, effects: [] }
    const key = chanKey(fromPeer, m.from.app, m.to.app, m.epoch)
    let seen = this.received.get(key)
    if (seen == null) {
      seen = new SeqSet()
      this.received.set(key, seen)
    }
    if (seen.has(m.seq)) return { verdict: { ok: true }, effects: [] }
    const out: Effect[] = []
    // the rule: a message sent after its sender's cut is delivered after this agent's cut
    for (const marker of m.cuts) out.push(...this.cut(marker, now, 'remote'))
    const tagged = new Set(m.cuts.map(c => c.id))
    const touched: Snap[] = []
    for (const s of this.snaps.values()) {
      if (s.done !== 'open' || !s.apps.has(m.to.app) || tagged.has(s.marker.id)) continue
      const ann = s.announcements.get(fromPeer)
      const count = ann != null && ann.epoch === m.epoch ? (ann.counts.get(countKey(m.from.app, m.to.app)) ?? 0) : undefined
      if (count == null || m.seq <= count) s.recorded.get(m.to.app)?.push(m)
      touched.push(s)
    }
    seen.add(m.seq)
    out.push({ type: 'deliver', app: m.to.app, message: m })
    for (const s of touched) out.push(...this.completeIfReady(s))
    return { verdict: { ok: true }, effects: out }
  }

  private receiveCut (fromPeer: string, f: Extract<Frame, { type: 'cut' }>, now: number): { verdict: Verdict, effects: Effect[] } {
    const out = this.cut(f.marker, now, 'remote')
    const s = this.snaps.get(f.marker.id)
    if (s != null && s.done === 'open' && !s.announcements.has(fromPeer)) {
      const counts = new Map(f.counts.map(c => [countKey(c.from, c.to), c.count]))
      s.announcements.set(fromPeer, { epoch: f.epoch, counts })
      // what was recorded before the count was known and turns out sent after the cut
      for (const [app, list] of s.recorded) {
        s.recorded.set(app, list.filter(m => m.from.peer !== fromPeer || m.epoch !== f.epoch || m.seq <= (counts.get(countKey(m.from.app, app)) ?? 0)))
      }
      out.push(...this.completeIfReady(s))
    }
    return { verdict: { ok: true }, effects: out }
  }

  /** Moves snapshots past their deadline to incomplete and forgets old ones. Call regularly. */
  tick (now: number): Effect[] {
    const out: Effect[] = []
    for (const s of [...this.snaps.values()]) {
      if (s.done === 'open' && now > s.deadline) {
        s.done = 'incomplete'
        out.push({ type: 'incomplete', snapshot: s.marker.id, reason: this.whyOpen(s) })
        this.release(s)
      }
      if (now > s.deadline + this.retainMs) {
        this.snaps.delete(s.marker.id)
        for (const e of this.apps.values()) e.cutSend.delete(s.marker.id)
      }
    }
    return out
  }

  private announceIfReady (s: Snap): Effect[] {
    if (s.announced != null || [...s.apps.values()].some(o => !o.replied)) return []
    const byPeer: Record<string, ChannelCount[]> = {}
    for (const [app, sent] of s.countsAt) {
      for (const [key, count] of sent) {
        const [peer, to] = key.split('\n')
        ;(byPeer[peer] ??= []).push({ from: app, to, count })
      }
    }
    s.announced = byPeer
    const out: Effect[] = []
    const peers = new Set([...s.marker.expected, ...Object.keys(byPeer)])
    for (const peer of [...peers].sort()) {
      if (peer === this.self) continue
      out.push({ type: 'transmit', peer, frame: { type: 'cut', marker: s.marker, epoch: this.epoch, counts: byPeer[peer] ?? [] } })
    }
    // channels between this agent's own apps
    const mine = byPeer[this.self] ?? []
    s.announcements.set(this.self, { epoch: this.epoch, counts: new Map(mine.map(c => [countKey(c.from, c.to), c.count])) })
    return out
  }

  /** the peers whose announcement S waits for: every participant and this agent */
  private participants (s: Snap): string[] {
    return [...new Set([...s.marker.expected, this.self])].sort()
  }

  /** the channels into this agent's apps that still miss messages sent before their sender's cut */
  private openChannels (s: Snap): string[] {
    const out: string[] = []
    for (const [peer, ann] of s.announcements) {
      for (const [key, count] of ann.counts) {
        const [from, to] = key.split('\n')
        if (s.apps.get(to)?.state == null) continue
        const low = this.received.get(chanKey(peer, from, to, ann.epoch))?.low ?? 0
        if (low < count) out.push(`${peer}/${from} -> ${to}: ${low} of ${count} messages sent before the cut arrived`)
      }
    }
    return out
  }

  private whyOpen (s: Snap): string {
    const reasons: string[] = []
    const pending = [...s.apps].filter(([, o]) => !o.replied).map(([a]) => a)
    if (pending.length > 0) reasons.push(`no state from app(s) ${pending.join(', ')}`)
    const silent = this.participants(s).filter(p => !s.announcements.has(p))
    if (silent.length > 0) reasons.push(`no cut announcement from ${silent.join(', ')}`)
    reasons.push(...this.openChannels(s))
    return `app channels of snapshot ${s.marker.id.slice(0, 8)} incomplete at its deadline: ${reasons.join('; ') || 'unknown'}`
  }

  private completeIfReady (s: Snap): Effect[] {
    if (s.done !== 'open') return []
    if ([...s.apps.values()].some(o => !o.replied)) return []
    if (s.apps.size > 0) {
      if (this.participants(s).some(p => !s.announcements.has(p))) return []
      if (this.openChannels(s).length > 0) return []
    }
    s.done = 'complete'
    const apps: AppCutPart[] = [...s.apps].map(([app, o]) => {
      const part: AppCutPart = { app, inFlight: s.recorded.get(app) ?? [] }
      if (o.state != null) part.state = o.state
      if (o.error != null) part.error = o.error
      return part
    })
    const record: CutRecord = { marker: s.marker, apps, announced: s.announced ?? {} }
    this.release(s)
    return [{ type: 'complete', snapshot: s.marker.id, record }]
  }

  /** drops what a finished snapshot held (its marker stays, to tag messages and ignore repeats) */
  private release (s: Snap): void {
    s.apps = new Map([...s.apps].map(([a, o]) => [a, { replied: o.replied }]))
    s.recorded = new Map()
  }
}
