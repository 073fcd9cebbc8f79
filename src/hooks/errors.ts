/** What a finished or stopped command left behind, carried by every error about a command. */
export interface CommandErrorDetails {
  /** the source the command belongs to */
  source: string
  /** exit code, when the process exited by itself */
  exitCode?: number | null
  /** the signal that ended the process, if one did */
  signal?: string | null
  /** the last bytes the command wrote to its standard error (see STDERR_TAIL_BYTES) */
  stderr: string
}

abstract class CommandError extends Error {
  readonly source: string
  readonly exitCode?: number | null
  readonly signal?: string | null
  readonly stderr: string

  constructor (message: string, details: CommandErrorDetails, options?: ErrorOptions) {
    super(message, options)
    this.source = details.source
    this.exitCode = details.exitCode
    this.signal = details.signal
    this.stderr = details.stderr
  }
}

/** A pre or post hook exited with a non-zero code, was killed by a signal, or could not be started. */
export class HookFailedError extends CommandError {
  static override name = 'HookFailedError'
  override name = 'HookFailedError'
  code = 'ERR_HOOK_FAILED'
}

/** A pre or post hook ran longer than its timeout; its whole process group was killed. */
export class HookTimeoutError extends CommandError {
  static override name = 'HookTimeoutError'
  override name = 'HookTimeoutError'
  code = 'ERR_HOOK_TIMEOUT'
}

/** The command of a command source exited with a non-zero code, was killed, or could not be started. */
export class CommandFailedError extends CommandError {
  static override name = 'CommandFailedError'
  override name = 'CommandFailedError'
  code = 'ERR_COMMAND_FAILED'
}

/** The command of a command source ran longer than its timeout; its whole process group was killed. */
export class CommandTimeoutError extends CommandError {
  static override name = 'CommandTimeoutError'
  override name = 'CommandTimeoutError'
  code = 'ERR_COMMAND_TIMEOUT'
}

/** A command or timeout that cannot be run as given. */
export class InvalidCommandError extends Error {
  static override name = 'InvalidCommandError'
  override name = 'InvalidCommandError'
  code = 'ERR_INVALID_COMMAND'
}
