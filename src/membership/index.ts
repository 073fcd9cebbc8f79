// Who counts as a member of the cluster, what each is called, and when each was last seen. A
// member today is a connected peer that speaks the block protocol (the cluster's pre-shared key,
// when set, keeps everyone else out at the transport).
import { BLOCKS_PROTOCOL, type KnownPeer, type Mesh } from '../node/index.js'
import type { Startable } from '@libp2p/interface'

export interface MembershipComponents {
  mesh: Pick<Mesh, 'peerId' | 'connectedSpeaking' | 'knownSpeaking'>
  clock?: () => number
}

export interface MembershipInit {
  /** the protocol a peer must speak to count as a member (default the block protocol) */
  memberProtocol?: string
}

export class Membership implements Startable {
  private readonly mesh: MembershipComponents['mesh']
  private readonly clock: () => number
  private readonly protocol: string
  /** when each member was last seen connected */
  private readonly lastSeen = new Map<string, number>()
  private startedAt = 0

  constructor (components: MembershipComponents, init: MembershipInit = {}) {
    this.mesh = components.mesh
    this.clock = components.clock ?? Date.now
    this.protocol = init.memberProtocol ?? BLOCKS_PROTOCOL
  }

  async start (): Promise<void> {
    this.startedAt = this.clock()
  }

  async stop (): Promise<void> {}

  get self (): string {
    return this.mesh.peerId
  }

  /** the members connected right now, this agent excluded, sorted; each is marked as seen */
  async connected (): Promise<string[]> {
    const live = await this.mesh.connectedSpeaking(this.protocol)
    const now = this.clock()
    for (const p of live) this.lastSeen.set(p, now)
    return live
  }

  /** this agent and the members connected right now: who a snapshot started now expects */
  async current (): Promise<string[]> {
    return [this.self, ...await this.connected()]
  }

  /** every member the peer store knows, connected or not, this agent excluded */
  async known (): Promise<KnownPeer[]> {
    return this.mesh.knownSpeaking(this.protocol)
  }

  /**
   * A member not connected for longer than `graceMs` (counted from this agent's start for one never
   * seen) is presumed gone; `live` is the set of members connected now.
   */
  presumedGone (peer: string, live: ReadonlySet<string>, graceMs: number, now = this.clock()): boolean {
    if (peer === this.self || live.has(peer)) return false
    return now - (this.lastSeen.get(peer) ?? this.startedAt) > graceMs
  }
}
