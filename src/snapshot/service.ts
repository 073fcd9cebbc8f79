// The snapshot protocol wired to the network and the catalog: gossip in (validated, then handed to
// the protocol unless the catalog already knows the snapshot), markers and results out, every
// change stored in the catalog, final records handed on for publishing, and the protocol's clock
// ticked and persisted.
import crypto from 'node:crypto'
import { logger } from '@libp2p/logger'
import { ForgottenSnapshotError, recordFromState, type SnapshotRecord } from '../metadata/index.js'
import { LAMPORT, type AgentState } from '../state/index.js'
import { every } from '../util/index.js'
import { InvalidSnapshotRequestError, OutgoingMessageTooLargeError } from './errors.js'
import { computeStatus, signResult, type Consistency, type Marker, type ResultBody, type SnapshotState } from '../wire/index.js'
import { SNAPSHOT_TOPIC, decodeMessage, type SnapshotMessage } from './messages.js'
import { SnapshotProtocol } from './protocol.js'
import { validateGossip } from './validate.js'
import type { GossipTopic, Mesh } from '../node/index.js'
import type { AbortOptions, PrivateKey, Startable } from '@libp2p/interface'

const log = logger('snapmesh:snapshot:service')

export interface SnapshotServiceComponents {
  privateKey: PrivateKey
  mesh: Pick<Mesh, 'peerId' | 'publish' | 'subscribe'>
  catalog: {
    get: (id: string) => Promise<SnapshotRecord | undefined>
    forgotten: (id: string) => Promise<unknown>
    put: (record: SnapshotRecord) => Promise<SnapshotRecord>
  }
  state: Pick<AgentState, 'get' | 'set'>
  /** this agent's part of a snapshot */
  capture: (marker: Marker, options?: AbortOptions) => Promise<ResultBody>
  /** barrier mode: freeze (pre hooks) and thaw (post hooks) */
  freezer: { freeze: (marker: Marker, options?: AbortOptions) => Promise<void>, thaw: (id: string) => Promise<void>, thawLeftovers: () => Promise<void> }
  /** the participants a snapshot started now expects */
  expected: () => Promise<string[]>
  /** a record that is no longer running, merged with what the catalog had: to be published */
  onFinal: (record: SnapshotRecord) => void
  clock?: () => number
}

export interface SnapshotServiceInit {
  name: string
  deadlineMs: number
  prepareTimeoutMs: number
  consistency: Consistency
  /** largest gossip message sent or accepted */
  maxMessageBytes: number
  /** barrier markers: the longest prepare wait and freeze this host grants */
  maxPrepareTimeoutMs: number
  maxFreezeMs: number
  /** times in messages further ahead of this agent's clock are rejected */
  maxSkewMs: number
}

export interface StartRequest {
  tag?: string
  consistency?: Consistency
  prepareTimeoutMs?: number
}

export class SnapshotService implements Startable {
  private readonly c: SnapshotServiceComponents
  private readonly init: SnapshotServiceInit
  private readonly clock: () => number
  private controller = new AbortController()
  private p?: SnapshotProtocol

  constructor (components: SnapshotServiceComponents, init: SnapshotServiceInit) {
    this.c = components
    this.init = init
    this.clock = components.clock ?? Date.now
  }

  /** the protocol state machine (started) */
  get protocol (): SnapshotProtocol {
    if (this.p == null) throw new Error('the snapshot service is not started')
    return this.p
  }

  async start (): Promise<void> {
    this.controller = new AbortController()
    const lamport = Number(await this.c.state.get(LAMPORT) ?? 0)
    this.p = new SnapshotProtocol({
      peerId: this.c.mesh.peerId,
      clock: this.clock,
      random: (n: number) => crypto.randomBytes(n),
      publish: async (bytes: Uint8Array) => { await this.publish(bytes) },
      capture: async (marker, options) => this.c.capture(marker, options),
      sign: async (body: ResultBody) => signResult(this.c.privateKey, body),
      onChange: (state: SnapshotState) => { this.onChange(state) },
      prepare: async (marker, options) => { await this.c.freezer.freeze(marker, options) },
      release: async (marker: Marker) => { await this.c.freezer.thaw(marker.id) }
    }, { deadlineMs: this.init.deadlineMs, lamport, name: this.init.name, maxPrepareTimeoutMs: this.init.maxPrepareTimeoutMs, maxFreezeMs: this.init.maxFreezeMs })
    await this.c.freezer.thawLeftovers()
    this.c.mesh.subscribe(this.topic())
    every(500, this.controller.signal, () => { this.protocol.tick(this.clock()) }, (err) => { log.error('tick failed: %s', err.message) })
  }

  async stop (): Promise<void> {
    this.controller.abort()
  }

  /** the gossip topic of markers, results and prepared votes */
  topic (): GossipTopic<SnapshotMessage> {
    return {
      topic: SNAPSHOT_TOPIC,
      validate: async (msg) => validateGossip(msg, {
        seen: (id, kind, peerId) => this.protocol.seen(id, kind, peerId),
        now: this.clock(),
        maxBytes: this.init.maxMessageBytes,
        maxSkewMs: this.init.maxSkewMs
      }),
      decode: (data) => decodeMessage(data),
      handle: async (msg) => { await this.handle(msg) }
    }
  }

  /** a message that passed validation (decoded, sender and signature checked) */
  async handle (msg: SnapshotMessage): Promise<void> {
    if (msg.type === 'marker') {
      if (msg.schedule != null) {
        // another agent's firing of a schedule slot: merged into the snapshot while it is live
        if (this.protocol.seen(msg.id, 'marker', msg.initiator)) return
        if (this.protocol.get(msg.id) == null && await this.known(msg.id)) return
      } else if (this.protocol.seen(msg.id, 'marker') || await this.known(msg.id)) {
        return
      }
      await this.protocol.handleMarker(msg)
    } else if (msg.type === 'prepared') {
      await this.protocol.handlePrepared(msg)
    } else {
      await this.protocol.handleResult(msg)
    }
  }

  /** a peer's app message carried a snapshot this agent had not seen: take part as on its marker */
  async handleAppMarker (marker: Marker): Promise<void> {
    if (this.protocol.seen(marker.id, 'marker') || await this.known(marker.id)) return
    await this.protocol.handleMarker(marker)
  }

  /** the catalog has the snapshot's record, or the notice it was forgotten by: its marker is not captured again */
  async known (id: string): Promise<boolean> {
    if ((await this.c.catalog.get(id).catch(() => undefined)) != null) return true
    return (await this.c.catalog.forgotten(id).catch(() => undefined)) != null
  }

  /** starts a snapshot; it is in the catalog (running) when this returns */
  async create (req: StartRequest): Promise<SnapshotRecord> {
    const consistency = req.consistency ?? this.init.consistency
    const prepareTimeoutMs = Math.round(req.prepareTimeoutMs ?? this.init.prepareTimeoutMs)
    if (consistency === 'barrier' && prepareTimeoutMs >= this.init.deadlineMs) {
      throw new InvalidSnapshotRequestError(`the prepare timeout (${prepareTimeoutMs / 1000} s) must be shorter than the snapshot deadline (${this.init.deadlineMs / 1000} s)`)
    }
    const state = await this.protocol.start(req.tag, await this.c.expected(), { consistency, prepareTimeoutMs })
    return this.c.catalog.put(recordFromState(state, this.clock()))
  }

  /** is the snapshot running here (live in the protocol and before its end)? */
  isRunning (id: string): boolean {
    const live = this.protocol.get(id)
    return live != null && computeStatus(live, this.clock()).status === 'running'
  }

  private async publish (bytes: Uint8Array): Promise<void> {
    // a receiver drops its stream from a sender whose message is over its limit: never send one
    if (bytes.length > this.init.maxMessageBytes) {
      throw new OutgoingMessageTooLargeError(`snapshot message of ${bytes.length} bytes exceeds network.maxMessageBytes (${this.init.maxMessageBytes})`)
    }
    await this.c.mesh.publish(SNAPSHOT_TOPIC, bytes)
  }

  private onChange (state: SnapshotState): void {
    const record = recordFromState(state, this.clock())
    void this.c.state.set(LAMPORT, String(this.protocol.lamport)).catch(() => {})
    this.c.catalog.put(record).then((merged: SnapshotRecord) => {
      if (merged.status !== 'running') this.c.onFinal(merged)
    }).catch((err: Error) => {
      if (err instanceof ForgottenSnapshotError) log('snapshot %s changed after it was forgotten: not stored', state.marker.id.slice(0, 8))
      else log.error('storing snapshot %s failed: %s', state.marker.id, err.message)
    })
  }
}
