/**
 * An error answer from the agent's admin API, as the client sees it: the HTTP status, the
 * server's `code` and its message.
 */
export class AdminError extends Error {
  static override name = 'AdminError'
  override name = 'AdminError'
  readonly status: number
  readonly code: string

  constructor (status: number, code: string, message: string) {
    super(message)
    this.status = status
    this.code = code
  }
}

/** Nothing listens on the admin socket: the file is missing or nobody accepts connections on it. */
export class AgentNotRunningError extends Error {
  static override name = 'AgentNotRunningError'
  override name = 'AgentNotRunningError'
  code = 'ERR_AGENT_NOT_RUNNING'
}

/** The socket path is taken: a live agent answers on it, or it is a file that is not a socket. */
export class SocketInUseError extends Error {
  static override name = 'SocketInUseError'
  override name = 'SocketInUseError'
  code = 'ERR_SOCKET_IN_USE'
}

/** No route has this path. */
export class RouteNotFoundError extends Error {
  static override name = 'RouteNotFoundError'
  override name = 'RouteNotFoundError'
  code = 'ERR_NOT_FOUND'
  readonly status = 404
}

/** The route exists but not for this method. */
export class MethodNotAllowedError extends Error {
  static override name = 'MethodNotAllowedError'
  override name = 'MethodNotAllowedError'
  code = 'ERR_METHOD_NOT_ALLOWED'
  readonly status = 405
  readonly allowed: string[]

  constructor (message: string, allowed: string[]) {
    super(message)
    this.allowed = allowed
  }
}

/** The request body is larger than the server accepts. */
export class BodyTooLargeError extends Error {
  static override name = 'BodyTooLargeError'
  override name = 'BodyTooLargeError'
  code = 'ERR_BODY_TOO_LARGE'
  readonly status = 413
}

/** The request body is not JSON. */
export class InvalidJsonError extends Error {
  static override name = 'InvalidJsonError'
  override name = 'InvalidJsonError'
  code = 'ERR_INVALID_JSON'
  readonly status = 400
}

/** The request body or query is JSON of the wrong shape; the message names the field. */
export class InvalidRequestError extends Error {
  static override name = 'InvalidRequestError'
  override name = 'InvalidRequestError'
  code = 'ERR_INVALID_REQUEST'
  readonly status = 400
}

/** The snapshot has no participant by the peer ID or host name asked for. */
export class UnknownParticipantError extends Error {
  static override name = 'UnknownParticipantError'
  override name = 'UnknownParticipantError'
  code = 'ERR_NOT_FOUND'
}

/** The participant asked for took part but has no data to restore (its part failed). */
export class NoPartDataError extends Error {
  static override name = 'NoPartDataError'
  override name = 'NoPartDataError'
  code = 'ERR_NO_PART_DATA'
}

/** A socket could not be given its configured mode or group (defined with the socket binding in util). */
export { SocketSetupError } from '../util/errors.js'

/** A write route asked for on the read-only admin socket; names the socket and the route. */
export class ReadOnlySocketError extends Error {
  static override name = 'ReadOnlySocketError'
  override name = 'ReadOnlySocketError'
  code = 'ERR_READ_ONLY_SOCKET'
  readonly status = 403
  readonly socket: string
  readonly route: string

  constructor (socket: string, route: string, what = 'a write') {
    super(`the read-only admin socket ${socket} does not serve ${route} (${what}); it serves status, peers, snapshot list and show, and verify without repair: use the full admin socket`)
    this.socket = socket
    this.route = route
  }
}

/** The admin socket exists but this user may not open it (its mode or group leaves them out). */
export class SocketAccessError extends Error {
  static override name = 'SocketAccessError'
  override name = 'SocketAccessError'
  code = 'ERR_SOCKET_ACCESS'
}
