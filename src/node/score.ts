/**
 * Gossip scoring: only invalid messages (those a topic validator rejects) count, each topic's
 * penalty being minus the square of its count, decaying by a tenth a second. A peer falls below
 * `graylist` after about 45 invalid messages in quick succession: its RPCs are ignored and the
 * Mesh disconnects and bans it. The traffic-based parts of gossipsub's score (mesh delivery rates)
 * are off: a backup cluster is quiet most of the time, and silence is no fault.
 */
export const GOSSIP_SCORE = {
  thresholds: { gossipThreshold: -500, publishThreshold: -1000, graylistThreshold: -2000, acceptPXThreshold: 10, opportunisticGraftThreshold: 20 },
  topic: {
    topicWeight: 1,
    timeInMeshWeight: 0,
    timeInMeshQuantum: 1000,
    timeInMeshCap: 3600,
    firstMessageDeliveriesWeight: 0,
    firstMessageDeliveriesDecay: 0.5,
    firstMessageDeliveriesCap: 100,
    meshMessageDeliveriesWeight: 0,
    meshMessageDeliveriesDecay: 0.5,
    meshMessageDeliveriesCap: 100,
    meshMessageDeliveriesThreshold: 1,
    meshMessageDeliveriesWindow: 10,
    meshMessageDeliveriesActivation: 5000,
    meshFailurePenaltyWeight: 0,
    meshFailurePenaltyDecay: 0.5,
    invalidMessageDeliveriesWeight: -1,
    invalidMessageDeliveriesDecay: 0.9
  }
} as const
