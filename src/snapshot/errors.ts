// The message errors shared with src/metadata live in src/wire; re-exported here for the protocol's callers.
export { InvalidMessageError, InvalidSignatureError, MessageTooLargeError } from '../wire/index.js'

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
