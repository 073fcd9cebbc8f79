/** The socket path appeared while a server was being bound to it: another process took it. */
export class SocketPathTakenError extends Error {
  static override name = 'SocketPathTakenError'
  override name = 'SocketPathTakenError'
  code = 'ERR_SOCKET_IN_USE'
}

/** A socket could not be given its mode or group. */
export class SocketSetupError extends Error {
  static override name = 'SocketSetupError'
  override name = 'SocketSetupError'
  code = 'ERR_SOCKET_SETUP'
}
