export class AgentStateNotStartedError extends Error {
  static override name = 'AgentStateNotStartedError'
  override name = 'AgentStateNotStartedError'
  code = 'ERR_STATE_NOT_STARTED'
}

export class InvalidStateKeyError extends Error {
  static override name = 'InvalidStateKeyError'
  override name = 'InvalidStateKeyError'
  code = 'ERR_INVALID_STATE_KEY'
}
