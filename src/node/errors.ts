export class IdentityError extends Error {
  override name = 'IdentityError'
  code = 'ERR_IDENTITY'
}

export class InvalidPskError extends Error {
  override name = 'InvalidPskError'
  code = 'ERR_INVALID_PSK'
}
