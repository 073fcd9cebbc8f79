/**
 * A message that can never be valid (not dag-cbor, a missing or malformed field): rejected, and
 * its sender penalised. `field` names the offending field when there is one.
 */
export class InvalidMessageError extends Error {
  static override name = 'InvalidMessageError'
  override name = 'InvalidMessageError'
  code = 'ERR_INVALID_MESSAGE'
  field?: string

  constructor (message: string, field?: string, options?: { cause?: unknown }) {
    super(message, options)
    if (field != null) this.field = field
  }
}

/** A message larger than the protocol allows: rejected without decoding it. */
export class MessageTooLargeError extends Error {
  static override name = 'MessageTooLargeError'
  override name = 'MessageTooLargeError'
  code = 'ERR_MESSAGE_TOO_LARGE'
}

/** A result whose signature does not verify against the peer it names. */
export class InvalidSignatureError extends Error {
  static override name = 'InvalidSignatureError'
  override name = 'InvalidSignatureError'
  code = 'ERR_INVALID_SIGNATURE'
}

/**
 * A message dated further ahead of this agent's clock than `network.maxClockSkewSeconds` allows:
 * rejected like any invalid message, so a peer cannot make its claims newest for ever.
 */
export class FutureDatedError extends InvalidMessageError {
  static override name = 'FutureDatedError'
  override name = 'FutureDatedError'
  override code = 'ERR_FUTURE_DATED'
}
