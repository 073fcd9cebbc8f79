/** A prune that stopped before deleting anything: some kept snapshot's manifest could not be read. */
export class PruneAbortedError extends Error {
  static override name = 'PruneAbortedError'
  override name = 'PruneAbortedError'
  code = 'ERR_PRUNE_ABORTED'
}

