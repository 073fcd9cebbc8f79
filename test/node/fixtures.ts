import { generateKeyPair } from '@libp2p/crypto/keys'
import { createNode, type SnapmeshNode } from '../../src/node/index.js'

/** a real libp2p node on 127.0.0.1 with a fresh key, no bootstrap peers and no DHT validators */
export async function loopbackNode (): Promise<SnapmeshNode> {
  return createNode({
    privateKey: await generateKeyPair('Ed25519'),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    bootstrap: [],
    validators: {},
    selectors: {},
    maxMessageBytes: 64 * 1024,
    agentVersion: 'snapmesh/test'
  })
}
