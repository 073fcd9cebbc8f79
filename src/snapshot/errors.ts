/**
 * A message that can never be valid (not dag-cbor, a missing or malformed field): rejected, and
 * its sender penalised. `field` names the offending field when there is one.
 */
export class InvalidMessageError extends Error {
  static override name = 'InvalidMessageError'
  override name = 'InvalidMessageError'
  code = 'ERR_INVALID_MESSAGE'
  field?: string

  constructor (message: string, field?: string) {
    super(message)
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

/** A message whose gossip author is not the peer it speaks for. */
export class WrongSenderError extends Error {
  static override name = 'WrongSenderError'
  override name = 'WrongSenderError'
  code = 'ERR_WRONG_SENDER'
}

/** A valid message this agent has no use for. The subclasses say why. */
export class IgnoredMessageError extends Error {
  static override name = 'IgnoredMessageError'
  override name = 'IgnoredMessageError'
  code = 'ERR_IGNORED_MESSAGE'
}

/** A marker or result this agent already holds. */
export class DuplicateMessageError extends IgnoredMessageError {
  static override name = 'DuplicateMessageError'
  override name = 'DuplicateMessageError'
  override code = 'ERR_DUPLICATE_MESSAGE'
}

/** A marker whose deadline passed long ago (a replay, or a peer far behind). */
export class ExpiredMarkerError extends IgnoredMessageError {
  static override name = 'ExpiredMarkerError'
  override name = 'ExpiredMarkerError'
  override code = 'ERR_EXPIRED_MARKER'
}

/** A request to start a snapshot that cannot be carried out as asked; the message says why. */
export class InvalidSnapshotRequestError extends Error {
  static override name = 'InvalidSnapshotRequestError'
  override name = 'InvalidSnapshotRequestError'
  code = 'ERR_INVALID_REQUEST'
}

/** A snapshot message this agent would send is larger than the network accepts. */
export class OutgoingMessageTooLargeError extends Error {
  static override name = 'OutgoingMessageTooLargeError'
  override name = 'OutgoingMessageTooLargeError'
  code = 'ERR_MESSAGE_TOO_LARGE'
}
