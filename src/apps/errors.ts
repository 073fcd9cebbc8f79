/** A line on the app socket that is not valid JSON or not a valid request; `field` names the culprit. */
export class InvalidAppRequestError extends Error {
  static override name = 'InvalidAppRequestError'
  override name = 'InvalidAppRequestError'
  code = 'ERR_INVALID_APP_REQUEST'
  field?: string

  constructor (message: string, field?: string) {
    super(message)
    if (field != null) this.field = field
  }
}

/** A frame from another agent on the app protocol that does not decode or has a bad field. */
export class InvalidAppFrameError extends Error {
  static override name = 'InvalidAppFrameError'
  override name = 'InvalidAppFrameError'
  code = 'ERR_INVALID_APP_FRAME'
  field?: string

  constructor (message: string, field?: string) {
    super(message)
    if (field != null) this.field = field
  }
}

/** A request that needs a registered app (hello first), or a name already taken. */
export class AppRegistrationError extends Error {
  static override name = 'AppRegistrationError'
  override name = 'AppRegistrationError'
  code = 'ERR_APP_REGISTRATION'
}

/** A message that could not be accepted for sending (too large, destination unreachable for too long). */
export class AppSendError extends Error {
  static override name = 'AppSendError'
  override name = 'AppSendError'
  code = 'ERR_APP_SEND'
}

/** A snapshot whose app part could not be completed: an app gave no state, or a channel never completed. */
export class IncompleteCutError extends Error {
  static override name = 'IncompleteCutError'
  override name = 'IncompleteCutError'
  code = 'ERR_INCOMPLETE_CUT'
}

/** An app restore that failed: no such snapshot, no state of this app in it, or the restore itself failed. */
export class AppRestoreError extends Error {
  static override name = 'AppRestoreError'
  override name = 'AppRestoreError'
  code = 'ERR_APP_RESTORE'
}

/** The agent answered an app request with an error (client side); `code` is the agent's code. */
export class AppAgentError extends Error {
  static override name = 'AppAgentError'
  override name = 'AppAgentError'
  code: string

  constructor (message: string, code = 'ERR_APP_AGENT') {
    super(message)
    this.code = code
  }
}

/** The client's connection to the agent closed or failed. */
export class AppDisconnectedError extends Error {
  static override name = 'AppDisconnectedError'
  override name = 'AppDisconnectedError'
  code = 'ERR_APP_DISCONNECTED'
}

/** A restored app part where a symlink (or anything but a folder or file) stands in the way. */
export class UnsafeAppStateError extends Error {
  static override name = 'UnsafeAppStateError'
  override name = 'UnsafeAppStateError'
  code = 'ERR_UNSAFE_APP_STATE'
}

/** A hello refused by the app tokens: a name not configured, or its token missing or wrong; also a token file that cannot be used. */
export class AppTokenError extends Error {
  static override name = 'AppTokenError'
  override name = 'AppTokenError'
  code = 'ERR_APP_TOKEN'
  field?: string

  constructor (message: string, field?: string) {
    super(message)
    if (field != null) this.field = field
  }
}
