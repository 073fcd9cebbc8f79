import { IgnoredMessageError, InvalidMessageError, WrongSenderError } from './errors.js'
import { MAX_MESSAGE_BYTES, decodeMessage, verifyResult, type SnapshotMessage } from './messages.js'

export type GossipAction = 'accept' | 'ignore' | 'reject'

export interface GossipContext {
  /** has this agent already handled this marker, or this peer's result for this snapshot? */
  seen: (id: string, kind: 'marker' | 'result', peerId?: string) => boolean
  now: number
  maxBytes?: number
  /** markers whose deadline passed longer ago than this are ignored (replays) */
  maxAgeMs?: number
}

export interface GossipVerdict {
  action: GossipAction
  error?: Error
  message?: SnapshotMessage
}

/**
 * Gossip validation in the manner of Lodestar: a typed error decides the action. Malformed, forged
 * or oversized messages are rejected (never relayed, sender penalised); duplicates and stale
 * markers are ignored (not relayed). Never throws.
 */
export async function validateGossip (msg: { from: string, data: Uint8Array }, ctx: GossipContext): Promise<GossipVerdict> {
  let message: SnapshotMessage | undefined
  try {
    const limit = Math.min(ctx.maxBytes ?? MAX_MESSAGE_BYTES, MAX_MESSAGE_BYTES)
    if (msg.data.length > limit) throw new InvalidMessageError(`message of ${msg.data.length} bytes exceeds ${limit}`)
    message = decodeMessage(msg.data)
    if (message.type === 'marker') {
      if (message.initiator !== msg.from) throw new WrongSenderError(`marker names initiator ${message.initiator} but was sent by ${msg.from}`)
      if (ctx.seen(message.id, 'marker')) throw new IgnoredMessageError(`marker ${message.id.slice(0, 8)} already seen`)
      if (message.deadline + (ctx.maxAgeMs ?? 24 * 3600 * 1000) < ctx.now) throw new IgnoredMessageError(`marker ${message.id.slice(0, 8)} expired long ago`)
    } else {
      if (message.peerId !== msg.from) throw new WrongSenderError(`result names peer ${message.peerId} but was sent by ${msg.from}`)
      await verifyResult(message)
      if (ctx.seen(message.id, 'result', message.peerId)) throw new IgnoredMessageError(`result of ${message.peerId} for ${message.id.slice(0, 8)} already seen`)
    }
    return { action: 'accept', message }
  } catch (err: any) {
    return { action: err instanceof IgnoredMessageError ? 'ignore' : 'reject', error: err, message }
  }
}
