/** `keygen --out FILE` where FILE already exists: a key is never overwritten. */
export class KeyFileExistsError extends Error {
  static override name = 'KeyFileExistsError'
  override name = 'KeyFileExistsError'
  code = 'ERR_KEY_FILE_EXISTS'
}

/** The user interrupted a long command (Ctrl-C) and the agent stopped the work. */
export class InterruptedError extends Error {
  static override name = 'InterruptedError'
  override name = 'InterruptedError'
  code = 'ERR_INTERRUPTED'
}

/** No --config, no $SNAPMESH_CONFIG, and no ./config/default.json either. */
export class NoConfigError extends Error {
  static override name = 'NoConfigError'
  override name = 'NoConfigError'
  code = 'ERR_NO_CONFIG'
}
