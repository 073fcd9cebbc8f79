export class UnsafePathError extends Error {
  override name = 'UnsafePathError'
  code = 'ERR_UNSAFE_PATH'
}

export class TargetNotEmptyError extends Error {
  override name = 'TargetNotEmptyError'
  code = 'ERR_INVALID_TARGET'
}
