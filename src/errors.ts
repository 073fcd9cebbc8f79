export class AgentError extends Error {
  override name = 'AgentError'
  code = 'ERR_AGENT'
}

export class NotFoundError extends Error {
  override name = 'NotFoundError'
  code = 'ERR_NOT_FOUND'
}

export class InvalidRequestError extends Error {
  override name = 'InvalidRequestError'
  code = 'ERR_INVALID_REQUEST'
}
