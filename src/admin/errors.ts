/** An error answer from the agent's admin API. */
export class AdminError extends Error {
  override name = 'AdminError'
  readonly status: number
  readonly code: string

  constructor (status: number, code: string, message: string) {
    super(message)
    this.status = status
    this.code = code
  }
}

export class AgentNotRunningError extends Error {
  override name = 'AgentNotRunningError'
  code = 'ERR_AGENT_NOT_RUNNING'
}

export class SocketInUseError extends Error {
  override name = 'SocketInUseError'
  code = 'ERR_SOCKET_IN_USE'
}

/** A request the server refuses; `status` is the HTTP status it answers with. */
export class BadRequestError extends AdminError {
  override name = 'BadRequestError'
}
