export class InvalidRecordError extends Error {
  override name = 'InvalidRecordError'
  code = 'ERR_INVALID_RECORD'
}

export class NotFoundError extends Error {
  override name = 'NotFoundError'
  code = 'ERR_NOT_FOUND'
}

export class AmbiguousIdError extends Error {
  override name = 'AmbiguousIdError'
  code = 'ERR_AMBIGUOUS'
}
