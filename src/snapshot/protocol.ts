import { logger } from '@libp2p/logger'
import {
  applyResult, computeStatus, encodeResult, mergeMarkers, newSnapshotId, newState, scheduledSnapshotId,
  type Consistency, type Marker, type ResultBody, type SignedResult, type SnapshotState, type SnapshotStatus
} from '../wire/index.js'
import { encodeMarker, encodePrepared, type Prepared } from './messages.js'
import { DEFAULT_MAX_MARKER_AGE_MS } from './validate.js'
import type { AbortOptions } from '@libp2p/interface'
import { timeoutSignal } from '../util/index.js'

const log = logger('snapmesh:snapshot')

export interface SnapshotProtocolComponents {
  /** this agent's peer ID */
  peerId: string
  /** ms since the epoch */
  clock: () => number
  /** `n` random bytes */
  random: (n: number) => Uint8Array
  /** broadcasts an encoded message to every agent */
  publish: (bytes: Uint8Array, options?: AbortOptions) => Promise<void>
  /** records this host's state for the snapshot; failures should be error results, not throws */
  capture: (marker: Marker, options?: AbortOptions) => Promise<ResultBody>
  /** signs a result with this agent's key (see signResult) */
  sign: (body: ResultBody, options?: AbortOptions) => Promise<SignedResult>
  /** called when a snapshot appears, gains a better result, or changes status */
  onChange: (state: SnapshotState, status: SnapshotStatus) => void
  /**
   * barrier mode: freezes this host (runs the pre hooks); throws when it cannot, having undone
   * what it did. Default: nothing to freeze.
   */
  prepare?: (marker: Marker, options?: AbortOptions) => Promise<void>
  /** barrier mode: thaws this host (runs the post hooks) after a successful prepare; never throws */
  release?: (marker: Marker) => Promise<void>
}

/** Where this agent is in a barrier snapshot. */
export type BarrierPhase = 'preparing' | 'prepared' | 'committed' | 'aborted' | 'done'

interface Barrier {
  marker: Marker
  phase: BarrierPhase
  /** local clock: give up waiting for the others to prepare after this */
  prepareBy: number
  /** the prepare wait granted: the marker's, capped by this host's config */
  prepareMs: number
  /** local clock: the capture is aborted after this, so the host is thawed */
  captureBy: number
  votes: Map<string, Prepared>
  /** the pre hooks ran and the post hooks have not yet */
  frozen: boolean
  abortReason?: string
}

export interface SnapshotProtocolInit {
  /** time from a marker's start to its deadline */
  deadlineMs: number
  /** the Lamport clock to resume from (persist `lamport` across restarts) */
  lamport?: number
  /**
   * how long after its deadline a snapshot stays in memory (it lives on in the catalog). The
   * deadline counts on this agent's clock from when the marker arrived, so an initiator whose
   * clock is off cannot make a snapshot vanish early. Default 1 h.
   */
  retainMs?: number
  /**
   * markers whose deadline passed longer ago than this are not captured (replays); default 24 h,
   * as gossip validation
   */
  maxMarkerAgeMs?: number
  /** the host name put in the error result when `capture` throws; default the peer ID */
  name?: string
  /**
   * barrier mode: the longest prepare wait granted whatever a marker asks (default: the marker's,
   * up to MAX_PREPARE_TIMEOUT_MS)
   */
  maxPrepareTimeoutMs?: number
  /** barrier mode: the longest this host stays frozen for one snapshot, prepare wait and capture (default: unbounded by config) */
  maxFreezeMs?: number
  /** most results held for snapshots whose marker has not arrived yet; default 10,000 */
  maxEarlyResults?: number
}

interface Early { at: number, results: SignedResult[], votes: Prepared[] }

/**
 * The marker protocol, transport-free: the agent feeds it decoded, validated messages and calls
 * `tick` regularly; it decides when to capture and what to publish. Given the same clock, random
 * source and message order it does the same things.
 */
export class SnapshotProtocol {
  private readonly c: SnapshotProtocolComponents
  private readonly deadlineMs: number
  private readonly retainMs: number
  private readonly maxPrepareTimeoutMs: number
  private readonly maxFreezeMs: number
  private readonly maxMarkerAgeMs: number
  /** when this agent learned of each snapshot, on its own clock */
  private readonly learnedAt = new Map<string, number>()
  private readonly name: string
  private readonly maxEarly: number
  private readonly states = new Map<string, SnapshotState>()
  private readonly statuses = new Map<string, SnapshotStatus>()
  private readonly captured = new Set<string>()
  private readonly inFlight = new Set<Promise<void>>()
  /** results that arrived before their marker (gossip does not keep order), bounded */
  private readonly early = new Map<string, Early>()
  private earlyCount = 0
  private readonly barriers = new Map<string, Barrier>()
  /** scheduled snapshots: the initiators whose markers were merged, per snapshot */
  private readonly firings = new Map<string, Set<string>>()
  /** votes that came before their marker, until this agent's barrier for it starts */
  private readonly pendingVotes = new Map<string, Prepared[]>()
  private shutdown = new AbortController()
  private clockValue: number

  constructor (components: SnapshotProtocolComponents, init: SnapshotProtocolInit) {
    if (!(init.deadlineMs > 0)) throw new RangeError(`deadlineMs must be positive, got ${init.deadlineMs}`)
    this.c = components
    this.deadlineMs = init.deadlineMs
    this.retainMs = init.retainMs ?? 3600_000
    this.maxPrepareTimeoutMs = init.maxPrepareTimeoutMs ?? Number.MAX_SAFE_INTEGER
    this.maxFreezeMs = init.maxFreezeMs ?? Number.MAX_SAFE_INTEGER
    this.maxMarkerAgeMs = init.maxMarkerAgeMs ?? DEFAULT_MAX_MARKER_AGE_MS
    this.name = init.name ?? components.peerId
    this.maxEarly = init.maxEarlyResults ?? 10_000
    this.clockValue = init.lamport ?? 0
  }

  /** the Lamport clock: one more than the largest seen */
  get lamport (): number {
    return this.clockValue
  }

  private observe (lamport: number): void {
    this.clockValue = Math.max(this.clockValue, lamport) + 1
  }

  get (id: string): SnapshotState | undefined {
    return this.states.get(id)
  }

  /** every snapshot held in memory */
  list (): SnapshotState[] {
    return [...this.states.values()]
  }

  /** For gossip validation: a marker already handled, or an ok result of that peer already held. */
  seen (id: string, kind: 'marker' | 'result' | 'prepared', peerId?: string): boolean {
    if (kind === 'marker') {
      // every agent fires a scheduled snapshot: a marker from another initiator is news
      const firings = this.firings.get(id)
      if (firings != null && peerId != null) return firings.has(peerId)
      return this.states.has(id) || this.captured.has(id)
    }
    if (kind === 'prepared') return peerId != null && this.barriers.get(id)?.votes.has(peerId) === true
    return peerId != null && this.states.get(id)?.results.get(peerId)?.status === 'ok'
  }

  /** this agent's phase in a barrier snapshot, if it takes part in one with that ID */
  barrierPhase (id: string): BarrierPhase | undefined {
    return this.barriers.get(id)?.phase
  }

  /** whether this host is frozen for a barrier snapshot right now */
  frozen (): string[] {
    return [...this.barriers.values()].filter(b => b.frozen).map(b => b.marker.id)
  }

  /**
   * Starts a snapshot: a marker naming this agent and `expected`, published, then handled here
   * like any other marker. Returns once the marker is out; this host's capture runs on (see
   * `settled`).
   */
  async start (tag: string | undefined, expected: string[], options: AbortOptions & { consistency?: Consistency, prepareTimeoutMs?: number } = {}): Promise<SnapshotState> {
    const now = this.c.clock()
    const lamport = this.clockValue + 1
    const marker: Marker = {
      v: 1,
      type: 'marker',
      id: newSnapshotId(this.c.peerId, lamport, now, this.c.random(32)),
      initiator: this.c.peerId,
      lamport,
      startedAt: now,
      deadline: now + this.deadlineMs,
      expected: [...new Set([this.c.peerId, ...expected])].sort(),
      consistency: options.consistency ?? 'marker'
    }
    if (marker.consistency === 'barrier') marker.prepareTimeoutMs = options.prepareTimeoutMs ?? Math.max(1, Math.floor(this.deadlineMs / 4))
    if (tag != null) marker.tag = tag
    const bytes = encodeMarker(marker)
    this.clockValue = lamport
    await this.c.publish(bytes, options)
    this.track(marker)
    const run = this.participate(marker)
    this.inFlight.add(run)
    void run.finally(() => this.inFlight.delete(run))
    return this.states.get(marker.id) as SnapshotState
  }

  /**
   * Fires a schedule's slot: publishes this agent's marker for the slot's snapshot (the same ID
   * on every agent) and takes part in it once, whether its own marker or another agent's came
   * first. Returns the snapshot as known here.
   */
  async startScheduled (schedule: string, slot: number, expected: string[], options: AbortOptions & { tag?: string } = {}): Promise<SnapshotState> {
    const id = scheduledSnapshotId(schedule, slot)
    const lamport = this.clockValue + 1
    const marker: Marker = {
      v: 1,
      type: 'marker',
      id,
      initiator: this.c.peerId,
      lamport,
      startedAt: slot,
      deadline: slot + this.deadlineMs,
      expected: [...new Set([this.c.peerId, ...expected])].sort(),
      consistency: 'marker',
      schedule,
      slot,
      tag: options.tag ?? schedule
    }
    if (this.firings.get(id)?.has(this.c.peerId) !== true) {
      this.clockValue = lamport
      await this.c.publish(encodeMarker(marker), options)
    }
    await this.handleMarker(marker, options)
    return this.states.get(id) ?? newState(marker)
  }

  /**
   * The first copy of a marker starts this host's capture (once), publishes the signed result and
   * applies it here; later copies, and markers too old to matter, are ignored. A scheduled
   * snapshot's markers from other initiators are merged into the one held.
   */
  async handleMarker (marker: Marker, options: AbortOptions = {}): Promise<void> {
    this.observe(marker.lamport)
    if (marker.schedule != null) {
      const firings = this.firings.get(marker.id) ?? new Set<string>()
      if (firings.has(marker.initiator)) return
      firings.add(marker.initiator)
      this.firings.set(marker.id, firings)
      const s = this.states.get(marker.id)
      if (s != null) {
        try {
          this.update({ marker: mergeMarkers(s.marker, marker), results: s.results })
        } catch (err: any) {
          log('marker of %s from %s not merged: %s', marker.id.slice(0, 8), marker.initiator, err.message)
        }
        return
      }
    }
    if (this.states.has(marker.id) || this.captured.has(marker.id)) return
    if (this.c.clock() > marker.deadline + this.maxMarkerAgeMs) {
      log('marker %s from %s is past its deadline by more than %d ms: ignored', marker.id.slice(0, 8), marker.initiator, this.maxMarkerAgeMs)
      return
    }
    this.track(marker)
    const run = this.participate(marker, options)
    this.inFlight.add(run)
    try {
      await run
    } finally {
      this.inFlight.delete(run)
    }
  }

  /** Applies a verified result. A result for a snapshot not known yet waits for its marker. */
  async handleResult (result: SignedResult, _options: AbortOptions = {}): Promise<void> {
    this.observe(result.lamport)
    const s = this.states.get(result.id)
    if (s != null) {
      this.update(applyResult(s, result))
      return
    }
    if (this.captured.has(result.id)) return
    if (this.earlyCount >= this.maxEarly) {
      log('result for unknown snapshot %s from %s dropped: %d results already wait for their marker', result.id.slice(0, 8), result.peerId, this.earlyCount)
      return
    }
    const e = this.early.get(result.id) ?? { at: this.c.clock(), results: [], votes: [] }
    e.results.push(result)
    this.early.set(result.id, e)
    this.earlyCount++
  }

  /**
   * Barrier mode: a participant's vote. A vote that is not ok aborts the snapshot here unless this
   * agent already committed; the last ok vote commits it.
   */
  async handlePrepared (vote: Prepared, _options: AbortOptions = {}): Promise<void> {
    this.observe(vote.lamport)
    const b = this.barriers.get(vote.id)
    if (b == null) {
      if (this.states.has(vote.id) || this.captured.has(vote.id)) return
      if (this.earlyCount >= this.maxEarly) return
      const e = this.early.get(vote.id) ?? { at: this.c.clock(), results: [], votes: [] }
      e.votes.push(vote)
      this.early.set(vote.id, e)
      this.earlyCount++
      return
    }
    await this.takeVote(b, vote)
  }

  private async takeVote (b: Barrier, vote: Prepared): Promise<void> {
    if (!b.marker.expected.includes(vote.peerId)) return
    const had = b.votes.get(vote.peerId)
    // a vote against stands: a peer that gave up does not come back
    if (had != null && (!had.ok || vote.ok)) return
    b.votes.set(vote.peerId, vote)
    if (!vote.ok) await this.abort(b, `${vote.peerId} could not prepare: ${vote.error ?? 'no reason given'}`)
    else await this.maybeCommit(b)
  }

  /**
   * Moves snapshots past their deadline (onChange for each status that changed) and forgets those
   * older than `retainMs`; in barrier mode, gives up on snapshots whose participants did not all
   * prepare in time. Call it regularly; it sets no timers of its own.
   */
  tick (now = this.c.clock()): void {
    for (const b of [...this.barriers.values()]) {
      if ((b.phase === 'preparing' || b.phase === 'prepared') && now > b.prepareBy) {
        const waiting = b.marker.expected.filter(p => b.votes.get(p)?.ok !== true)
        const reason = `gave up after ${b.prepareMs} ms waiting for ${waiting.join(', ')} to prepare`
        void this.vote(b, false, reason).then(async () => { await this.abort(b, reason) })
      }
    }
    for (const s of [...this.states.values()]) {
      this.emitIfChanged(s, now)
      const learned = this.learnedAt.get(s.marker.id) ?? now
      const localDeadline = Math.max(s.marker.deadline, learned + (s.marker.deadline - s.marker.startedAt))
      if (now > localDeadline + this.retainMs) {
        this.learnedAt.delete(s.marker.id)
        this.states.delete(s.marker.id)
        this.statuses.delete(s.marker.id)
        this.captured.delete(s.marker.id)
        this.pendingVotes.delete(s.marker.id)
        this.firings.delete(s.marker.id)
        const b = this.barriers.get(s.marker.id)
        if (b != null && !b.frozen) this.barriers.delete(s.marker.id)
      }
    }
    for (const [id, e] of [...this.early]) {
      if (now > e.at + this.retainMs) {
        this.early.delete(id)
        this.earlyCount -= e.results.length + e.votes.length
      }
    }
  }

  /** Takes in a snapshot learned elsewhere (the DHT), so that its marker is not captured again. */
  adopt (marker: Marker, results: SignedResult[]): void {
    this.observe(marker.lamport)
    const had = this.states.get(marker.id)
    let s = had ?? newState(marker)
    if (had != null && marker.schedule != null && had.marker.schedule != null) {
      try {
        s = { marker: mergeMarkers(had.marker, marker), results: had.results }
      } catch (err: any) {
        log('record of %s not merged: %s', marker.id.slice(0, 8), err.message)
      }
    }
    for (const r of results) s = applyResult(s, r)
    this.captured.add(marker.id)
    if (had == null) this.takeEarly(marker.id, s)
    else if (s !== had) this.update(s)
  }

  /** Resolves once every capture started so far has finished and its result is out. */
  async settled (): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight])
  }

  /** Aborts captures in flight and waits for them. */
  async stop (): Promise<void> {
    this.shutdown.abort()
    await this.settled()
    this.shutdown = new AbortController()
  }

  private track (marker: Marker): void {
    this.takeEarly(marker.id, newState(marker))
  }

  private takeEarly (id: string, state: SnapshotState): void {
    if (!this.learnedAt.has(id)) this.learnedAt.set(id, this.c.clock())
    let s = state
    const e = this.early.get(id)
    if (e != null) {
      this.early.delete(id)
      this.earlyCount -= e.results.length + e.votes.length
      for (const r of e.results) s = applyResult(s, r)
      if (e.votes.length > 0) this.pendingVotes.set(id, e.votes)
    }
    this.states.set(id, s)
    this.emitIfChanged(s, this.c.clock(), true)
  }

  private async participate (marker: Marker, options: AbortOptions = {}): Promise<void> {
    if (marker.consistency === 'barrier') await this.runBarrier(marker, options)
    else await this.runCapture(marker, options)
  }

  // ---- barrier mode ---------------------------------------------------------------------------
  //
  // preparing --pre hooks ok, vote yes--> prepared --every expected peer voted yes--> committed
  //   (capture, post hooks, result) --> done. A no vote, a failed pre hook or prepareBy passing
  // leads to aborted (post hooks if the pre hooks ran, error result). The post hooks run exactly
  // once after pre hooks that succeeded, whatever happens.

  private async runBarrier (marker: Marker, options: AbortOptions = {}): Promise<void> {
    if (this.captured.has(marker.id)) return
    this.captured.add(marker.id)
    // a barrier is for the expected participants only: others do not freeze
    if (!marker.expected.includes(this.c.peerId)) {
      this.pendingVotes.delete(marker.id)
      return
    }
    const now = this.c.clock()
    // what the marker asks, capped by this host's own config: no member can freeze it for longer
    const timeout = Math.min(marker.prepareTimeoutMs ?? 1, this.maxPrepareTimeoutMs)
    const b: Barrier = {
      marker,
      phase: 'preparing',
      prepareBy: now + timeout,
      prepareMs: timeout,
      // measured on this agent's clock, so a skewed initiator clock cannot stretch the freeze
      captureBy: now + Math.min(timeout + Math.max(1, marker.deadline - marker.startedAt), this.maxFreezeMs),
      votes: new Map(),
      frozen: false
    }
    this.barriers.set(marker.id, b)
    const early = this.pendingVotes.get(marker.id) ?? []
    this.pendingVotes.delete(marker.id)
    for (const v of early) {
      if (v.ok) b.votes.set(v.peerId, v)
      else await this.takeVote(b, v)
    }
    if (b.phase === 'aborted') {
      // another participant already gave up: do not freeze at all
      await this.finishBarrier(b, { status: 'error', error: `aborted: ${b.abortReason ?? 'no reason given'}` })
      return
    }
    const signal = options.signal != null ? AbortSignal.any([this.shutdown.signal, options.signal]) : this.shutdown.signal
    try {
      await this.c.prepare?.(marker, { signal: AbortSignal.any([signal, timeoutSignal(timeout)]) })
    } catch (err: any) {
      const reason = `pre hook failed: ${String(err.message)}`
      if (b.phase === 'preparing') b.phase = 'aborted'
      await this.vote(b, false, reason)
      await this.finishBarrier(b, { status: 'error', error: b.abortReason != null ? `aborted: ${b.abortReason}` : reason })
      return
    }
    b.frozen = true
    if ((b.phase as BarrierPhase) === 'aborted') {
      // gave up (or was told to) while the pre hooks ran
      await this.release(b)
      await this.finishBarrier(b, { status: 'error', error: `aborted: ${b.abortReason ?? 'no reason given'}` })
      return
    }
    b.phase = 'prepared'
    await this.vote(b, true)
    await this.maybeCommit(b)
  }

  private async vote (b: Barrier, ok: boolean, error?: string): Promise<void> {
    if (b.votes.get(this.c.peerId)?.ok === false) return
    this.clockValue++
    const vote: Prepared = { v: 1, type: 'prepared', id: b.marker.id, peerId: this.c.peerId, lamport: this.clockValue, time: this.c.clock(), ok }
    if (!ok && error != null) vote.error = error
    b.votes.set(this.c.peerId, vote)
    try {
      await this.c.publish(encodePrepared(vote))
    } catch (err: any) {
      log.error('publishing the prepared vote for %s failed: %s', b.marker.id.slice(0, 8), err.message)
    }
  }

  private async maybeCommit (b: Barrier): Promise<void> {
    if (b.phase !== 'prepared') return
    if (!b.marker.expected.every(p => b.votes.get(p)?.ok === true)) return
    b.phase = 'committed'
    const signal = AbortSignal.any([this.shutdown.signal, timeoutSignal(Math.max(1, b.captureBy - this.c.clock()))])
    let body: ResultBody
    try {
      body = await this.c.capture(b.marker, { signal })
    } catch (err: any) {
      body = { id: b.marker.id, peerId: this.c.peerId, name: this.name, lamport: 0, time: 0, status: 'error', error: `capture failed: ${String(err.message)}` }
    }
    await this.release(b)
    await this.finishBarrier(b, body)
  }

  private async abort (b: Barrier, reason: string): Promise<void> {
    if (b.phase === 'committed' || b.phase === 'done' || b.phase === 'aborted') return
    const wasPreparing = b.phase === 'preparing'
    b.phase = 'aborted'
    b.abortReason = reason
    // still running the pre hooks: runBarrier thaws and reports once they return
    if (wasPreparing) return
    await this.release(b)
    await this.finishBarrier(b, { status: 'error', error: `aborted: ${reason}` })
  }

  private async release (b: Barrier): Promise<void> {
    if (!b.frozen) return
    b.frozen = false
    try {
      await this.c.release?.(b.marker)
    } catch (err: any) {
      log.error('post hooks for %s threw: %s', b.marker.id.slice(0, 8), err.message)
    }
  }

  private async finishBarrier (b: Barrier, body: Partial<ResultBody> & Pick<ResultBody, 'status'>): Promise<void> {
    if (b.phase !== 'aborted') b.phase = 'done'
    await this.publishResult(b.marker, { id: b.marker.id, peerId: this.c.peerId, name: this.name, lamport: 0, time: 0, ...body })
  }

  // ---- marker mode ----------------------------------------------------------------------------

  private async runCapture (marker: Marker, options: AbortOptions = {}): Promise<void> {
    if (this.captured.has(marker.id)) return
    this.captured.add(marker.id)
    const signal = options.signal != null ? AbortSignal.any([this.shutdown.signal, options.signal]) : this.shutdown.signal
    let body: ResultBody
    try {
      body = await this.c.capture(marker, { signal })
    } catch (err: any) {
      log.error('capture for %s threw: %s', marker.id.slice(0, 8), err.message)
      body = { id: marker.id, peerId: this.c.peerId, name: this.name, lamport: 0, time: 0, status: 'error', error: `capture failed: ${String(err.message)}` }
    }
    await this.publishResult(marker, body, signal)
  }

  /** signs this host's result, applies it here and publishes it */
  private async publishResult (marker: Marker, body: ResultBody, signal: AbortSignal = this.shutdown.signal): Promise<void> {
    let signed: SignedResult
    try {
      this.clockValue++
      signed = await this.c.sign({ ...body, id: marker.id, peerId: this.c.peerId, lamport: this.clockValue, time: this.c.clock() }, { signal })
    } catch (err: any) {
      log.error('signing the result for %s failed: %s', marker.id.slice(0, 8), err.message)
      return
    }
    const s = this.states.get(marker.id)
    if (s != null) this.update(applyResult(s, signed))
    try {
      await this.c.publish(encodeResult(signed), { signal })
    } catch (err: any) {
      log.error('publishing the result for %s failed: %s', marker.id.slice(0, 8), err.message)
    }
  }

  private update (s: SnapshotState): void {
    const before = this.states.get(s.marker.id)
    if (before === s) return
    this.states.set(s.marker.id, s)
    this.emitIfChanged(s, this.c.clock(), true)
  }

  private emitIfChanged (s: SnapshotState, now: number, force = false): void {
    const { status } = computeStatus(s, now)
    if (!force && this.statuses.get(s.marker.id) === status) return
    this.statuses.set(s.marker.id, status)
    try {
      this.c.onChange(s, status)
    } catch (err: any) {
      log.error('onChange for %s threw: %s', s.marker.id.slice(0, 8), err.message)
    }
  }
}
