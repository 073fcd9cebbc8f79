// Pre and post hooks: commands run around the capture of a source, to quiesce an application
// (flush and freeze) before its data is read and to let it go again afterwards.
//
// Marker mode runs them inside capture(): every pre hook, the capture, every post hook. Barrier
// mode runs them itself, with runPreHooks() on every participant before anyone captures and
// runPostHooks() once everyone has, and tells capture() to skip them.
import { logger } from '@libp2p/logger'
import { commandArgv, describeOutcome, startCommand, succeeded } from './command.js'
import { HookFailedError, HookTimeoutError, InvalidCommandError } from './errors.js'
import type { Command } from './command.js'
import type { AbortOptions } from '@libp2p/interface'

export { commandArgv, describeOutcome, startCommand, succeeded, OutputTail, STDERR_TAIL_BYTES, KILL_GRACE_MS } from './command.js'
export type { Command, CommandOutcome, RunningCommand, StartCommandInit } from './command.js'
export { CommandFailedError, CommandTimeoutError, HookFailedError, HookTimeoutError, InvalidCommandError } from './errors.js'
export type { CommandErrorDetails } from './errors.js'

const log = logger('snapmesh:hooks')

/** a hook's timeout when none is given */
export const DEFAULT_HOOK_TIMEOUT_SECONDS = 60
/** bytes of a command's standard error quoted in an error message (results cap errors at 4096 characters) */
export const MESSAGE_STDERR_BYTES = 2048

export interface HookSpec {
  command: Command
  /** default DEFAULT_HOOK_TIMEOUT_SECONDS */
  timeoutSeconds?: number
}

/** The part of a source that hooks need. */
export interface HookedSource {
  name: string
  /** folder the hooks run in; default the agent's working folder */
  cwd?: string
  pre?: HookSpec
  post?: HookSpec
}

export type HookPhase = 'pre' | 'post'

export type HookError = HookFailedError | HookTimeoutError

function timeoutMs (spec: HookSpec): number {
  return (spec.timeoutSeconds ?? DEFAULT_HOOK_TIMEOUT_SECONDS) * 1000
}

/** `"tail"` or `(nothing on stderr)`, for messages */
export function quoteStderr (text: string): string {
  return text === '' ? '(nothing on stderr)' : text
}

/**
 * Checks every hook of every source (command shape, timeout) so that a bad one is found before
 * any hook runs. Throws InvalidCommandError naming the source and the hook.
 */
export function checkHooks (sources: HookedSource[]): void {
  for (const source of sources) {
    for (const phase of ['pre', 'post'] as const) {
      const spec = source[phase]
      if (spec == null) continue
      try {
        commandArgv(spec.command)
      } catch (err: any) {
        throw new InvalidCommandError(`source ${JSON.stringify(source.name)}: ${phase} hook: ${String(err.message)}`)
      }
      const t = spec.timeoutSeconds
      if (t != null && (typeof t !== 'number' || !Number.isFinite(t) || t <= 0)) {
        throw new InvalidCommandError(`source ${JSON.stringify(source.name)}: ${phase} hook: timeoutSeconds must be a positive number, got ${String(t)}`)
      }
    }
  }
}

/**
 * Runs one hook of one source, if it has one. Resolves when it exited with code 0; throws
 * HookFailedError (non-zero exit, killed by a signal, could not start) or HookTimeoutError (its
 * process group was killed at the timeout), each with the tail of its standard error; on abort the
 * hook's process group is killed and the signal's reason is thrown.
 *
 * The hook runs in the source's `cwd` with SNAPMESH_SOURCE (the source name) and SNAPMESH_HOOK
 * (`pre` or `post`) added to the environment.
 */
export async function runHook (source: HookedSource, phase: HookPhase, options: AbortOptions = {}): Promise<void> {
  const spec = source[phase]
  if (spec == null) return
  options.signal?.throwIfAborted()
  const ms = timeoutMs(spec)
  const started = Date.now()
  let running
  try {
    running = startCommand({ command: spec.command, cwd: source.cwd, env: { SNAPMESH_SOURCE: source.name, SNAPMESH_HOOK: phase }, timeoutMs: ms }, options)
  } catch (err: any) {
    throw new InvalidCommandError(`source ${JSON.stringify(source.name)}: ${phase} hook: ${String(err.message)}`)
  }
  const outcome = await running.done
  if (outcome.aborted) options.signal?.throwIfAborted()
  if (succeeded(outcome)) {
    log('source %s: %s hook done in %d ms', source.name, phase, Date.now() - started)
    return
  }
  const stderr = outcome.stderr.text()
  const message = `source ${JSON.stringify(source.name)}: ${phase} hook ${describeOutcome(outcome, ms)}: ${quoteStderr(outcome.stderr.text(MESSAGE_STDERR_BYTES))}`
  const details = { source: source.name, exitCode: outcome.exitCode, signal: outcome.signal, stderr }
  log.error(message)
  throw outcome.timedOut
    ? new HookTimeoutError(message, details)
    : new HookFailedError(message, details, { cause: outcome.spawnError })
}

/**
 * Runs the pre hooks of `sources` one after the other, in order. Resolves once all succeeded: the
 * caller then owes runPostHooks(sources), whatever happens next.
 *
 * On the first failure (or an abort) no further pre hook runs; the post hooks of every source
 * reached so far, the failing one included, are run at once (without the abort signal: they undo
 * what a pre hook may have half done), and the pre hook's error is thrown, with any post-hook
 * failure added to its message.
 */
export async function runPreHooks (sources: HookedSource[], options: AbortOptions = {}): Promise<void> {
  checkHooks(sources)
  for (let i = 0; i < sources.length; i++) {
    try {
      await runHook(sources[i], 'pre', options)
    } catch (err: any) {
      const failures = await runPostHooks(sources.slice(0, i + 1))
      throw withPostFailures(err, failures)
    }
  }
}

/**
 * Runs the post hooks of `sources` in reverse order (the last source frozen is the first thawed).
 * Every post hook runs even when an earlier one fails; the failures are returned, never thrown.
 * An abort kills the running hook and throws the signal's reason without running the rest: a
 * caller that must thaw no matter what (as capture() does) passes no signal and relies on each
 * hook's timeout instead.
 */
export async function runPostHooks (sources: HookedSource[], options: AbortOptions = {}): Promise<HookError[]> {
  checkHooks(sources)
  const failures: HookError[] = []
  for (const source of [...sources].reverse()) {
    try {
      await runHook(source, 'post', options)
    } catch (err: any) {
      if (err instanceof HookFailedError || err instanceof HookTimeoutError) failures.push(err)
      else throw err
    }
  }
  return failures
}

/** adds post-hook failures to the message of the error that made them run (for the participant's result) */
export function withPostFailures<E> (err: E, failures: HookError[]): E {
  if (failures.length === 0) return err
  // an abort's reason (a DOMException) has a read-only message: its post failures are only logged
  if (err instanceof Error && err.name !== 'AbortError') {
    try {
      err.message = `${err.message}; then ${failures.map(f => f.message).join('; ')}`
    } catch {}
  }
  return err
}
