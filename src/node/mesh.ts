// The small interface the rest of the agent uses instead of libp2p internals: who is connected and
// what they speak, what they call themselves, gossip topics with typed validation, and DHT puts and
// gets. Only this file and index.ts touch the libp2p node's services and peer store.
import { logger } from '@libp2p/logger'
import { TopicValidatorResult } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { GOSSIP_SCORE } from './score.js'
import type { SnapmeshNode } from './index.js'
import type { PeerBans } from './bans.js'
import type { AbortOptions, PeerId, Startable } from '@libp2p/interface'

const log = logger('snapmesh:node:mesh')

export type GossipAction = 'accept' | 'ignore' | 'reject'

/** What a topic's validator decides for one message: relay and deliver, or not (and penalise). */
export interface GossipVerdict<T> {
  action: GossipAction
  /** the decoded message, when it was accepted */
  message?: T
  error?: Error
}

/**
 * One gossipsub topic: a validator that sees every message before it is delivered or relayed
 * (`from` is the author, whose signature gossipsub already checked), and a handler for each
 * accepted message, given what the validator decoded.
 */
export interface GossipTopic<T> {
  topic: string
  validate: (msg: { from: string, data: Uint8Array }) => Promise<GossipVerdict<T>>
  /** decodes a message the validator accepted (its checks need not be made again) */
  decode: (data: Uint8Array) => T | Promise<T>
  handle: (message: T, from: string) => Promise<void>
}

/** A peer the peer store knows, as others need it. */
export interface KnownPeer {
  peerId: string
  /** the host name it announced in identify, when it is an agent of ours */
  name?: string
  addresses: string[]
  protocols: string[]
  connected: boolean
}

export interface Mesh {
  readonly peerId: string
  addresses: () => string[]
  /** connected peers that speak `protocol`, sorted */
  connectedSpeaking: (protocol: string) => Promise<string[]>
  /** every peer the peer store knows that speaks `protocol`, this one excluded */
  knownSpeaking: (protocol: string) => Promise<KnownPeer[]>
  isConnected: (peer: string) => boolean
  subscribe: <T>(topic: GossipTopic<T>) => void
  /** publishes; a message nobody is subscribed to yet is no error */
  publish: (topic: string, bytes: Uint8Array) => Promise<void>
  dhtPut: (key: Uint8Array, value: Uint8Array, options?: AbortOptions) => Promise<void>
  /** the first value found, or undefined */
  dhtGet: (key: Uint8Array, options?: AbortOptions) => Promise<Uint8Array | undefined>
}

const AGENT_VERSION = /^snapmesh\/[^ ]+ \((.+)\)$/

/** The host name in an identify agent version `snapmesh/<version> (<name>)`. */
export function nameFromAgentVersion (agent: Uint8Array | undefined): string | undefined {
  if (agent == null) return undefined
  return AGENT_VERSION.exec(new TextDecoder().decode(agent))?.[1]
}

export interface Libp2pMeshInit {
  /** where peers whose gossip score fell below the graylist threshold are banned */
  bans?: PeerBans
  /** how long such a peer is refused (default 10 minutes) */
  banMs?: number
  /** how often scores are looked at (default 1 s) */
  scoreCheckMs?: number
}

/** A gossip message a topic's validator rejected: its author, the topic and why. */
export interface RejectedGossip {
  topic: string
  /** the message's author */
  from: string
  /** the name of the validator's error, e.g. InvalidSignatureError */
  reason: string
}

/** The Mesh over a running libp2p node. Started, it disconnects and bans peers whose gossip score fell below the graylist threshold. */
export class Libp2pMesh implements Mesh, Startable {
  readonly peerId: string
  /** told of every message a topic's validator rejects (the audit log counts them) */
  onReject?: (ev: RejectedGossip) => void
  private readonly node: SnapmeshNode
  private readonly init: Libp2pMeshInit
  private timer?: ReturnType<typeof setInterval>
  private readonly topics = new Map<string, GossipTopic<any>>()
  private readonly onMessage = (evt: CustomEvent<any>): void => {
    const msg = evt.detail
    if (msg.type !== 'signed') return
    const topic = this.topics.get(msg.topic)
    if (topic == null) return
    const from = msg.from.toString()
    Promise.resolve().then(async () => { await topic.handle(await topic.decode(msg.data), from) }).catch((err: Error) => { log.error('handling a message on %s failed: %s', msg.topic, err.message) })
  }

  constructor (node: SnapmeshNode, init: Libp2pMeshInit = {}) {
    this.node = node
    this.init = init
    this.peerId = node.peerId.toString()
    node.services.pubsub.addEventListener('message', this.onMessage)
  }

  async start (): Promise<void> {
    if (this.init.bans == null || this.timer != null) return
    this.timer = setInterval(() => { void this.checkScores() }, this.init.scoreCheckMs ?? 1000)
    this.timer.unref()
  }

  async stop (): Promise<void> {
    clearInterval(this.timer)
    this.timer = undefined
    this.node.services.pubsub.removeEventListener('message', this.onMessage)
  }

  /** disconnects and bans every connected peer whose gossip score is below the graylist threshold */
  async checkScores (): Promise<string[]> {
    const bans = this.init.bans
    if (bans == null) return []
    const pubsub = this.node.services.pubsub as unknown as { getScore?: (peer: string) => number }
    const out: string[] = []
    for (const conn of this.node.getConnections()) {
      const peer = conn.remotePeer.toString()
      if (out.includes(peer)) continue
      const score = pubsub.getScore?.(peer) ?? 0
      if (score >= GOSSIP_SCORE.thresholds.graylistThreshold) continue
      out.push(peer)
      bans.ban(peer, this.init.banMs ?? 600_000)
      log.error('peer %s banned for %d s: its gossip score fell to %d (messages that fail validation)', peer, Math.round((this.init.banMs ?? 600_000) / 1000), Math.round(score))
      await this.node.hangUp(conn.remotePeer).catch(() => {})
    }
    return out
  }

  addresses (): string[] {
    return this.node.getMultiaddrs().map(a => a.toString())
  }

  async connectedSpeaking (protocol: string): Promise<string[]> {
    const out = new Set<string>()
    for (const conn of this.node.getConnections()) {
      const id = conn.remotePeer
      if (out.has(id.toString())) continue
      try {
        const peer = await this.node.peerStore.get(id)
        if (peer.protocols.includes(protocol)) out.add(id.toString())
      } catch {}
    }
    return [...out].sort()
  }

  async knownSpeaking (protocol: string): Promise<KnownPeer[]> {
    const out: KnownPeer[] = []
    for (const peer of await this.node.peerStore.all()) {
      if (peer.id.equals(this.node.peerId) || !peer.protocols.includes(protocol)) continue
      out.push({
        peerId: peer.id.toString(),
        name: nameFromAgentVersion(peer.metadata.get('AgentVersion')),
        addresses: peer.addresses.map(a => a.multiaddr.toString()),
        protocols: [...peer.protocols],
        connected: this.node.getConnections(peer.id).length > 0
      })
    }
    return out
  }

  isConnected (peer: string): boolean {
    let id: PeerId
    try {
      id = peerIdFromString(peer)
    } catch {
      return false
    }
    return this.node.getConnections(id).length > 0
  }

  subscribe <T>(topic: GossipTopic<T>): void {
    const pubsub = this.node.services.pubsub
    this.topics.set(topic.topic, topic)
    pubsub.topicValidators.set(topic.topic, async (propagationSource, msg) => {
      // `propagationSource` is whoever relayed the message; its author is `msg.from`
      if (msg.type !== 'signed') {
        this.rejected({ topic: topic.topic, from: propagationSource.toString(), reason: 'UnsignedMessage' })
        return TopicValidatorResult.Reject
      }
      const verdict = await topic.validate({ from: msg.from.toString(), data: msg.data })
      if (verdict.action === 'accept') return TopicValidatorResult.Accept
      log('message on %s from %s via %s: %s (%s)', topic.topic, msg.from, propagationSource, verdict.action, verdict.error?.message)
      if (verdict.action === 'reject') this.rejected({ topic: topic.topic, from: msg.from.toString(), reason: verdict.error?.name ?? 'rejected' })
      return verdict.action === 'reject' ? TopicValidatorResult.Reject : TopicValidatorResult.Ignore
    })
    pubsub.subscribe(topic.topic)
  }

  private rejected (ev: RejectedGossip): void {
    try {
      this.onReject?.(ev)
    } catch {}
  }

  async publish (topic: string, bytes: Uint8Array): Promise<void> {
    await this.node.services.pubsub.publish(topic, bytes)
  }

  async dhtPut (key: Uint8Array, value: Uint8Array, options: AbortOptions = {}): Promise<void> {
    for await (const ev of this.node.services.dht.put(key, value, options)) {
      if (ev.name === 'QUERY_ERROR') log('dht put: %s', ev.error.message)
    }
  }

  async dhtGet (key: Uint8Array, options: AbortOptions = {}): Promise<Uint8Array | undefined> {
    try {
      for await (const ev of this.node.services.dht.get(key, options)) {
        if (ev.name === 'VALUE') return ev.value
      }
    } catch (err: any) {
      log('dht get failed: %s', err.message)
    }
    return undefined
  }
}
