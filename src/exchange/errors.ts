export class BlockUnavailableError extends Error {
  override name = 'BlockUnavailableError'
  code = 'ERR_BLOCK_UNAVAILABLE'
}

export class InvalidRequestError extends Error {
  override name = 'InvalidRequestError'
  code = 'ERR_INVALID_BLOCK_REQUEST'
}
