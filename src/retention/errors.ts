/** A prune that stopped before deleting anything: some kept snapshot's manifest could not be read. */
export class PruneAbortedError extends Error {
  static override name = 'PruneAbortedError'
  override name = 'PruneAbortedError'
  code = 'ERR_PRUNE_ABORTED'
}


/** A forget or prune request that cannot be carried out as asked; the message says why. */
export class InvalidRetentionRequestError extends Error {
  static override name = 'InvalidRetentionRequestError'
  override name = 'InvalidRetentionRequestError'
  code = 'ERR_INVALID_REQUEST'
}
