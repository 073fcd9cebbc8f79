export class InvalidManifestError extends Error {
  override name = 'InvalidManifestError'
  code = 'ERR_INVALID_MANIFEST'
}

export class SourceError extends Error {
  override name = 'SourceError'
  code = 'ERR_SOURCE'
}
