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

/** A manifest that expands to more files, folders, symlinks or bytes than its record states. */
export class ManifestExceedsStatsError extends Error {
  static override name = 'ManifestExceedsStatsError'
  override name = 'ManifestExceedsStatsError'
  code = 'ERR_MANIFEST_EXCEEDS_STATS'
}

/** `resume` into a target that does not hold an interrupted restore of the same snapshot part. */
export class ResumeMismatchError extends Error {
  static override name = 'ResumeMismatchError'
  override name = 'ResumeMismatchError'
  code = 'ERR_RESUME_MISMATCH'
}
