/** A message that can never be valid: rejected, and its sender penalised. */
export class InvalidMessageError extends Error {
  override name = 'InvalidMessageError'
  code = 'ERR_INVALID_MESSAGE'
}

/** A result whose signature does not verify against the peer it names. */
export class InvalidSignatureError extends Error {
  override name = 'InvalidSignatureError'
  code = 'ERR_INVALID_SIGNATURE'
}

/** A message whose gossip sender is not the peer it speaks for. */
export class WrongSenderError extends Error {
  override name = 'WrongSenderError'
  code = 'ERR_WRONG_SENDER'
}

/** A valid message this agent has no use for (already seen, expired). */
export class IgnoredMessageError extends Error {
  override name = 'IgnoredMessageError'
  code = 'ERR_IGNORED_MESSAGE'
}
