import { DuplicateMessageError, ExpiredMarkerError, IgnoredMessageError, InvalidMessageError, InvalidSignatureError, MessageTooLargeError, WrongSenderError } from './errors.js'
import { DEFAULT_MAX_CLOCK_SKEW_MS, checkNotFuture, verifyResult } from '../wire/index.js'
import { decodeMessage, type SnapshotMessage } from './messages.js'

export type GossipAction = 'accept' | 'ignore' | 'reject'

export type SeenKind = 'marker' | 'result' | 'prepared'

export interface GossipContext {
  /** has this agent already handled this marker, or this peer's result for this snapshot? */
  seen: (id: string, kind: SeenKind, peerId?: string) => boolean
  /** the current time, ms since the epoch */
  now: number
  /** a lower size limit than MAX_MESSAGE_BYTES, if the network has one */
  maxBytes?: number
  /** markers whose deadline passed longer ago than this are ignored as replays; default 24 h */
  maxAgeMs?: number
  /** times further ahead of `now` than this are rejected; default 5 minutes */
  maxSkewMs?: number
}

export interface GossipVerdict {
  action: GossipAction
  error?: Error
  message?: SnapshotMessage
}

export const DEFAULT_MAX_MARKER_AGE_MS = 24 * 3600 * 1000

/**
 * The action for an error met while validating: messages that can never be valid are rejected
 * (not relayed, author penalised); valid ones of no use are ignored (not relayed). An unexpected
 * error is a fault of ours, not of the author: ignored.
 */
export function gossipActionFor (err: unknown): GossipAction {
  if (err instanceof IgnoredMessageError) return 'ignore'
  if (err instanceof InvalidMessageError || err instanceof MessageTooLargeError || err instanceof WrongSenderError || err instanceof InvalidSignatureError) return 'reject'
  return 'ignore'
}

/**
 * Gossip validation in the manner of Lodestar: each check throws a typed error, and the error's
 * type decides the action. Never throws.
 */
export async function validateGossip (msg: { from: string, data: Uint8Array }, ctx: GossipContext): Promise<GossipVerdict> {
  let message: SnapshotMessage | undefined
  try {
    message = decodeMessage(msg.data, { maxBytes: ctx.maxBytes })
    const skew = ctx.maxSkewMs ?? DEFAULT_MAX_CLOCK_SKEW_MS
    if (message.type === 'marker') checkNotFuture(message.startedAt, ctx.now, skew, `marker ${message.id.slice(0, 8)}`, 'startedAt')
    else checkNotFuture(message.time, ctx.now, skew, `${message.type === 'prepared' ? 'prepared vote' : 'result'} of ${message.peerId} for ${message.id.slice(0, 8)}`, 'time')
    if (message.type === 'marker') {
      if (message.initiator !== msg.from) throw new WrongSenderError(`marker ${message.id.slice(0, 8)} names initiator ${message.initiator} but was sent by ${msg.from}`)
      if (ctx.seen(message.id, 'marker', message.schedule != null ? message.initiator : undefined)) throw new DuplicateMessageError(`marker ${message.id.slice(0, 8)}${message.schedule != null ? ` from ${message.initiator}` : ''} was already seen`)
      const maxAge = ctx.maxAgeMs ?? DEFAULT_MAX_MARKER_AGE_MS
      if (message.deadline + maxAge < ctx.now) throw new ExpiredMarkerError(`marker ${message.id.slice(0, 8)} has a deadline ${ctx.now - message.deadline} ms in the past, more than ${maxAge} ms`)
    } else if (message.type === 'prepared') {
      if (message.peerId !== msg.from) throw new WrongSenderError(`prepared vote for ${message.id.slice(0, 8)} names peer ${message.peerId} but was sent by ${msg.from}`)
      if (ctx.seen(message.id, 'prepared', message.peerId)) throw new DuplicateMessageError(`prepared vote of ${message.peerId} for ${message.id.slice(0, 8)} was already seen`)
    } else {
      if (message.peerId !== msg.from) throw new WrongSenderError(`result for ${message.id.slice(0, 8)} names peer ${message.peerId} but was sent by ${msg.from}`)
      await verifyResult(message)
      if (ctx.seen(message.id, 'result', message.peerId)) throw new DuplicateMessageError(`result of ${message.peerId} for ${message.id.slice(0, 8)} was already seen`)
    }
    return { action: 'accept', message }
  } catch (err: any) {
    const error = err instanceof Error ? err : new Error(String(err))
    const verdict: GossipVerdict = { action: gossipActionFor(err), error }
    if (message != null) verdict.message = message
    return verdict
  }
}

/**
 * A bounded set of (snapshot, kind, peer) entries already handled, for agents that want a seen
 * lookup of their own. The oldest entries are forgotten first.
 */
export class SeenSet {
  private readonly entries = new Set<string>()
  private readonly max: number

  constructor (init: { max?: number } = {}) {
    this.max = init.max ?? 100_000
    if (!Number.isSafeInteger(this.max) || this.max < 1) throw new RangeError(`SeenSet max must be a positive integer, got ${String(init.max)}`)
  }

  private key (id: string, kind: SeenKind, peerId?: string): string {
    return kind === 'marker' ? `m/${id}` : `${kind === 'result' ? 'r' : 'p'}/${id}/${peerId ?? ''}`
  }

  add (id: string, kind: SeenKind, peerId?: string): void {
    const k = this.key(id, kind, peerId)
    this.entries.delete(k)
    this.entries.add(k)
    while (this.entries.size > this.max) {
      const oldest = this.entries.values().next().value as string
      this.entries.delete(oldest)
    }
  }

  has (id: string, kind: SeenKind, peerId?: string): boolean {
    return this.entries.has(this.key(id, kind, peerId))
  }

  get size (): number {
    return this.entries.size
  }

  /** a `seen` function for GossipContext */
  readonly seen = (id: string, kind: SeenKind, peerId?: string): boolean => this.has(id, kind, peerId)
}
