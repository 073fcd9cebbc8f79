// Peers this agent refuses for a while: a peer whose gossip score fell below the cut (it kept
// sending messages that fail validation) is disconnected and neither dialled nor let back in until
// its ban ends. The connection gater consults this list for every dial and every inbound connection.
import type { ConnectionGater, PeerId } from '@libp2p/interface'

export class PeerBans {
  private readonly until = new Map<string, number>()
  private readonly clock: () => number

  constructor (init: { clock?: () => number } = {}) {
    this.clock = init.clock ?? Date.now
  }

  ban (peer: string, ms: number): void {
    this.until.set(peer, Math.max(this.until.get(peer) ?? 0, this.clock() + ms))
  }

  isBanned (peer: string): boolean {
    const t = this.until.get(peer)
    if (t == null) return false
    if (t > this.clock()) return true
    this.until.delete(peer)
    return false
  }

  /** peers banned now, with when each ban ends (ms since the epoch) */
  list (): Array<{ peerId: string, until: number }> {
    return [...this.until.entries()].filter(([p]) => this.isBanned(p)).map(([peerId, until]) => ({ peerId, until }))
  }

  /** the gater libp2p consults: a banned peer is neither dialled nor accepted */
  gater (): ConnectionGater {
    const denied = (peerId: PeerId): boolean => this.isBanned(peerId.toString())
    return {
      denyDialPeer: denied,
      denyInboundEncryptedConnection: denied,
      denyOutboundEncryptedConnection: denied
    }
  }
}
