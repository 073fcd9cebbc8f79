import '../polyfill.js'
import { gossipsub } from '@chainsafe/libp2p-gossipsub'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { bootstrap } from '@libp2p/bootstrap'
import { identify } from '@libp2p/identify'
import { kadDHT, passthroughMapper } from '@libp2p/kad-dht'
import { ping } from '@libp2p/ping'
import { preSharedKey } from '@libp2p/pnet'
import { tcp } from '@libp2p/tcp'
import { createTopicScoreParams } from '@chainsafe/libp2p-gossipsub/score'
import { GOSSIP_SCORE } from './score.js'
import { createLibp2p } from 'libp2p'
import { DHT_PROTOCOL } from './protocols.js'
import type { PeerBans } from './bans.js'
import type { GossipsubEvents } from '@chainsafe/libp2p-gossipsub'
import type { Identify } from '@libp2p/identify'
import type { KadDHT, Selectors, Validators } from '@libp2p/kad-dht'
import type { Ping } from '@libp2p/ping'
import type { Libp2p, PrivateKey, PubSub } from '@libp2p/interface'
import type { Datastore } from 'interface-datastore'

export { loadOrCreateIdentity, type Identity } from './identity.js'
export { generatePsk, readPsk } from './psk.js'
export * from './protocols.js'
export { PeerKeeper, type PeerKeeperInit } from './peer-keeper.js'
export { PeerBans } from './bans.js'
export { GOSSIP_SCORE } from './score.js'

export type SnapmeshServices = {
  dht: KadDHT
  pubsub: PubSub<GossipsubEvents>
  identify: Identify
  ping: Ping
}

export type SnapmeshNode = Libp2p<SnapmeshServices>

export interface NodeInit {
  privateKey: PrivateKey
  listen: string[]
  announce?: string[]
  bootstrap: string[]
  /** the swarm key bytes; when given, only holders of the same key can connect */
  psk?: Uint8Array
  /** persistent store for DHT records and the peer store */
  datastore?: Datastore
  validators: Validators
  selectors: Selectors
  /** largest gossip message accepted or sent */
  maxMessageBytes: number
  /** carried in identify so that peers learn this host's name */
  agentVersion: string
  /** the gossip topics whose invalid messages lower their sender's score (see GOSSIP_SCORE) */
  scoredTopics?: string[]
  /** peers refused at dial and at connection (see PeerBans) */
  bans?: PeerBans
}



/**
 * Builds the libp2p node: TCP, noise, yamux, identify, ping, a private kad-dht in server mode under
 * our own protocol ID, and gossipsub with strict signing. Nothing else in the code base builds one.
 */
export async function createNode (init: NodeInit): Promise<SnapmeshNode> {
  return createLibp2p({
    privateKey: init.privateKey,
    addresses: { listen: init.listen, announce: init.announce ?? [] },
    datastore: init.datastore,
    transports: [tcp()],
    connectionEncrypters: [noise()],
    // a stream's window grows, while its reader keeps up, to at most 2 MiB: enough to keep a block
    // transfer going over a link with some latency, and what a slow reader can have buffered
    // stays bounded per stream (the exchange bounds the streams)
    streamMuxers: [yamux({ maxStreamWindowSize: 2 * 1024 * 1024 })],
    connectionProtector: init.psk != null ? preSharedKey({ psk: init.psk, timeout: 10_000 }) : undefined,
    connectionGater: init.bans?.gater(),
    connectionManager: {
      // loopback clusters (tests, one host running several agents) must not trip the per-IP limit
      allow: ['/ip4/127.0.0.0/ipcidr/8'],
      maxConnections: 300
    },
    peerDiscovery: init.bootstrap.length > 0
      ? [bootstrap({ list: init.bootstrap, timeout: 500 })]
      : [],
    services: {
      identify: identify({ agentVersion: init.agentVersion }),
      ping: ping(),
      dht: kadDHT({
        protocol: DHT_PROTOCOL,
        clientMode: false,
        peerInfoMapper: passthroughMapper,
        validators: init.validators,
        selectors: init.selectors,
        allowQueryWithZeroPeers: true
      }),
      pubsub: gossipsub({
        globalSignaturePolicy: 'StrictSign',
        allowPublishToZeroTopicPeers: true,
        emitSelf: false,
        maxInboundDataLength: init.maxMessageBytes,
        scoreParams: {
          IPColocationFactorWeight: 0,
          topics: Object.fromEntries((init.scoredTopics ?? []).map(t => [t, createTopicScoreParams({ ...GOSSIP_SCORE.topic })]))
        },
        scoreThresholds: { ...GOSSIP_SCORE.thresholds }
      })
    }
  })
}

export { Libp2pMesh, nameFromAgentVersion, type Mesh, type GossipAction, type GossipTopic, type GossipVerdict, type KnownPeer, type RejectedGossip } from './mesh.js'
