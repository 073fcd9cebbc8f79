export class InvalidManifestError extends Error {
  static override name = 'InvalidManifestError'
  override name = 'InvalidManifestError'
  code = 'ERR_INVALID_MANIFEST'
}

export class InvalidChunkerOptionsError extends Error {
  static override name = 'InvalidChunkerOptionsError'
  override name = 'InvalidChunkerOptionsError'
  code = 'ERR_INVALID_CHUNKER_OPTIONS'
}

export class InvalidSourceError extends Error {
  static override name = 'InvalidSourceError'
  override name = 'InvalidSourceError'
  code = 'ERR_INVALID_SOURCE'
}
