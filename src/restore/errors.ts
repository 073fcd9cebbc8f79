export class UnsafePathError extends Error {
  static override name = 'UnsafePathError'
  override name = 'UnsafePathError'
  code = 'ERR_UNSAFE_PATH'
}

export class TargetNotEmptyError extends Error {
  static override name = 'TargetNotEmptyError'
  override name = 'TargetNotEmptyError'
  code = 'ERR_INVALID_TARGET_NOT_EMPTY'
}

export class InvalidTargetError extends Error {
  static override name = 'InvalidTargetError'
  override name = 'InvalidTargetError'
  code = 'ERR_INVALID_TARGET'
}

export class InvalidIncludeError extends Error {
  static override name = 'InvalidIncludeError'
  override name = 'InvalidIncludeError'
  code = 'ERR_INVALID_INCLUDE'
}
