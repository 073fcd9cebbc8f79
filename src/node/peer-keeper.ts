import { logger } from '@libp2p/logger'
import { multiaddr } from '@multiformats/multiaddr'
import type { Libp2p, PeerId, Startable } from '@libp2p/interface'
import { timeoutSignal } from '../util/index.js'

const log = logger('snapmesh:node:peers')

export interface PeerKeeperInit {
  /** multiaddrs with /p2p/ that are dialled at start and again whenever the link is down */
  bootstrap: string[]
  /** how often links are checked */
  intervalMs: number
  /** a known peer is dialled again only if it speaks this protocol (a cluster member) */
  memberProtocol: string
  dialTimeoutMs?: number
}

/**
 * libp2p 2.x neither dials the peers that discovery (bootstrap, DHT) reports nor retries
 * bootstrap peers. The keeper does both: it dials every discovered peer once, and every
 * `intervalMs` re-dials bootstrap peers and known members that are not connected.
 */
export class PeerKeeper implements Startable {
  private readonly libp2p: Pick<Libp2p, 'peerId' | 'dial' | 'getConnections' | 'peerStore' | 'addEventListener' | 'removeEventListener'>
  private readonly init: PeerKeeperInit
  private timer?: ReturnType<typeof setInterval>
  private readonly controller = new AbortController()
  private running = false
  private readonly onDiscovery = (evt: CustomEvent<{ id: PeerId }>): void => {
    const id = evt.detail.id
    if (id.equals(this.libp2p.peerId) || this.libp2p.getConnections(id).length > 0) return
    this.dial(id).catch(() => {})
  }

  constructor (components: { libp2p: PeerKeeper['libp2p'] }, init: PeerKeeperInit) {
    this.libp2p = components.libp2p
    this.init = init
  }

  async start (): Promise<void> {
    this.libp2p.addEventListener('peer:discovery', this.onDiscovery as any)
    this.timer = setInterval(() => { void this.check() }, this.init.intervalMs)
    this.timer.unref()
    void this.check()
  }

  async stop (): Promise<void> {
    this.controller.abort()
    clearInterval(this.timer)
    this.libp2p.removeEventListener('peer:discovery', this.onDiscovery as any)
  }

  private async dial (target: PeerId | ReturnType<typeof multiaddr>): Promise<void> {
    if (this.controller.signal.aborted) return
    const signal = AbortSignal.any([this.controller.signal, timeoutSignal(this.init.dialTimeoutMs ?? 10_000)])
    try {
      await this.libp2p.dial(target as any, { signal })
    } catch (err: any) {
      log('dial %s failed: %s', target.toString(), err.message)
    }
  }

  /** one round: bootstrap peers first, then known members */
  async check (): Promise<void> {
    if (this.running || this.controller.signal.aborted) return
    this.running = true
    try {
      const connected = new Set(this.libp2p.getConnections().map(c => c.remotePeer.toString()))
      await Promise.all(this.init.bootstrap.map(async a => {
        const ma = multiaddr(a)
        const id = ma.getPeerId()
        if (id != null && connected.has(id)) return
        await this.dial(ma)
      }))
      const peers = await this.libp2p.peerStore.all()
      await Promise.all(peers
        .filter(p => !p.id.equals(this.libp2p.peerId) && !connected.has(p.id.toString()) && p.protocols.includes(this.init.memberProtocol))
        .slice(0, 32)
        .map(async p => { await this.dial(p.id) }))
    } finally {
      this.running = false
    }
  }
}
