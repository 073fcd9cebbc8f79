/** Every protocol ID and topic name the agent uses, in one place. */
export const DHT_PROTOCOL = '/snapmesh/kad/1.0.0'
export const BLOCKS_PROTOCOL = '/snapmesh/blocks/1.0.0'
/** the same exchange, with several requests answered in turn on one stream */
export const BLOCKS_SESSION_PROTOCOL = '/snapmesh/blocks/1.1.0'
export const IDENTIFY_PROTOCOL_PREFIX = 'snapmesh'
export const REPLICATE_PROTOCOL = '/snapmesh/replicate/1.0.0'
