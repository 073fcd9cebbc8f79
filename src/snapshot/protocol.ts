import { logger } from '@libp2p/logger'
import { encodeMarker, encodeResult, newSnapshotId, type Marker, type ResultBody, type SignedResult } from './messages.js'
import { applyResult, computeStatus, newState, type SnapshotState, type SnapshotStatus } from './state.js'
import type { AbortOptions } from '@libp2p/interface'

const log = logger('snapmesh:snapshot')
const MAX_EARLY_RESULTS = 10_000

export interface SnapshotProtocolComponents {
  peerId: string
  clock: () => number
  random: (n: number) => Uint8Array
  /** broadcasts an encoded message to every agent */
  publish: (bytes: Uint8Array) => Promise<void>
  /** records this host's state for the snapshot; never throws (failures are error results) */
  capture: (marker: Marker, options?: AbortOptions) => Promise<ResultBody>
  sign: (body: ResultBody) => Promise<SignedResult>
  /** called whenever a snapshot's results or status change */
  onChange: (state: SnapshotState, status: SnapshotStatus) => void
}

export interface SnapshotProtocolInit {
  deadlineMs: number
  /** the Lamport clock to resume from */
  lamport?: number
  /** how long a finished snapshot stays in memory (it lives on in the catalog) */
  retainMs?: number
}

/**
 * The marker protocol, transport-free: the agent feeds it decoded, validated messages and a clock;
 * it decides when to capture and what to publish. Deterministic given its clock and random source.
 */
export class SnapshotProtocol {
  private readonly c: SnapshotProtocolComponents
  private readonly init: SnapshotProtocolInit
  private readonly states = new Map<string, SnapshotState>()
  private readonly statuses = new Map<string, SnapshotStatus>()
  private readonly captured = new Set<string>()
  /** results that arrived before their marker (gossip does not keep order), bounded */
  private readonly early = new Map<string, SignedResult[]>()
  private earlyCount = 0
  lamport: number

  constructor (components: SnapshotProtocolComponents, init: SnapshotProtocolInit) {
    this.c = components
    this.init = init
    this.lamport = init.lamport ?? 0
  }

  get (id: string): SnapshotState | undefined {
    return this.states.get(id)
  }

  /** Starts a snapshot: a marker naming the expected participants, published and handled here. */
  async start (tag: string | undefined, expected: string[]): Promise<SnapshotState> {
    const now = this.c.clock()
    this.lamport++
    const marker: Marker = {
      v: 1,
      type: 'marker',
      id: newSnapshotId(this.c.peerId, this.lamport, now, this.c.random(16)),
      initiator: this.c.peerId,
      lamport: this.lamport,
      startedAt: now,
      deadline: now + this.init.deadlineMs,
      expected: [...new Set([this.c.peerId, ...expected])].sort(),
      consistency: 'marker'
    }
    if (tag != null) marker.tag = tag
    this.track(marker)
    await this.c.publish(encodeMarker(marker))
    void this.runCapture(marker)
    return this.states.get(marker.id) as SnapshotState
  }

  seen (id: string, kind: 'marker' | 'result', peerId?: string): boolean {
    const s = this.states.get(id)
    if (kind === 'marker') return s != null
    return s?.results.get(peerId ?? '')?.status === 'ok'
  }

  /** The first marker for an ID starts this host's capture; later copies are ignored. */
  async handleMarker (marker: Marker): Promise<void> {
    this.lamport = Math.max(this.lamport, marker.lamport) + 1
    if (this.states.has(marker.id)) return
    this.track(marker)
    await this.runCapture(marker)
  }

  /** Applies a verified result. A result for an unknown snapshot waits for its marker. */
  async handleResult (result: SignedResult): Promise<void> {
    this.lamport = Math.max(this.lamport, result.lamport) + 1
    const s = this.states.get(result.id)
    if (s == null) {
      if (this.earlyCount >= MAX_EARLY_RESULTS) {
        log('result for unknown snapshot %s from %s dropped', result.id.slice(0, 8), result.peerId)
        return
      }
      this.early.set(result.id, [...(this.early.get(result.id) ?? []), result])
      this.earlyCount++
      return
    }
    this.update(applyResult(s, result))
  }

  /** Moves snapshots past their deadline; call it regularly. */
  tick (now = this.c.clock()): void {
    for (const s of this.states.values()) {
      this.emitIfChanged(s, now)
      const st = this.statuses.get(s.marker.id)
      if (st !== 'running' && now > s.marker.deadline + (this.init.retainMs ?? 3600_000)) {
        this.states.delete(s.marker.id)
        this.statuses.delete(s.marker.id)
      }
    }
  }

  /** Adopts a snapshot learned elsewhere (the DHT), so its marker is not captured again. */
  adopt (marker: Marker, results: SignedResult[]): void {
    let s = this.states.get(marker.id) ?? newState(marker)
    for (const r of results) s = applyResult(s, r)
    this.states.set(marker.id, s)
    this.captured.add(marker.id)
    this.emitIfChanged(s, this.c.clock())
  }

  private track (marker: Marker): void {
    let s = newState(marker)
    const early = this.early.get(marker.id) ?? []
    this.early.delete(marker.id)
    this.earlyCount -= early.length
    for (const r of early) s = applyResult(s, r)
    this.states.set(marker.id, s)
    this.emitIfChanged(s, this.c.clock(), true)
  }

  private async runCapture (marker: Marker): Promise<void> {
    if (this.captured.has(marker.id)) return
    this.captured.add(marker.id)
    const body = await this.c.capture(marker)
    const signed = await this.c.sign({ ...body, lamport: ++this.lamport })
    const s = this.states.get(marker.id)
    if (s != null) this.update(applyResult(s, signed))
    try {
      await this.c.publish(encodeResult(signed))
    } catch (err: any) {
      log.error('publishing result for %s failed: %s', marker.id.slice(0, 8), err.message)
    }
  }

  private update (s: SnapshotState): void {
    const before = this.states.get(s.marker.id)
    this.states.set(s.marker.id, s)
    this.emitIfChanged(s, this.c.clock(), before !== s)
  }

  private emitIfChanged (s: SnapshotState, now: number, force = false): void {
    const { status } = computeStatus(s, now)
    if (!force && this.statuses.get(s.marker.id) === status) return
    this.statuses.set(s.marker.id, status)
    this.c.onChange(s, status)
  }
}
