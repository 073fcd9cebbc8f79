// Runs one external command in its own process group, with a timeout, an abort signal and a
// bounded tail of its standard error. Used for pre/post hooks and for command sources.
import { spawn } from 'node:child_process'
import { readFileSync, readdirSync } from 'node:fs'
import { InvalidCommandError } from './errors.js'
import type { AbortOptions } from '@libp2p/interface'
import type { Readable } from 'node:stream'

/** An argv list run without a shell, or a string run by `/bin/sh -c`. */
export type Command = string | string[]

/** bytes of standard error kept from the end of a command's output */
export const STDERR_TAIL_BYTES = 4096
/** after SIGTERM, how long a process group gets to go before SIGKILL */
export const KILL_GRACE_MS = 2000
/** after the command exited, how long its output pipes may stay open (held by a child it left behind) */
const STREAM_GRACE_MS = 500
const GROUP_POLL_MS = 50

/** The argv a command runs as: an array as is, a string through `/bin/sh -c`. */
export function commandArgv (command: Command): string[] {
  if (typeof command === 'string') {
    if (command.trim() === '') throw new InvalidCommandError('a command string must not be empty')
    if (command.includes('\0')) throw new InvalidCommandError('a command must not contain NUL')
    return ['/bin/sh', '-c', command]
  }
  if (!Array.isArray(command) || command.length === 0) throw new InvalidCommandError('a command must be a non-empty list of strings or a string')
  for (const [i, arg] of command.entries()) {
    if (typeof arg !== 'string') throw new InvalidCommandError(`command item ${i} is not a string`)
    if (arg.includes('\0')) throw new InvalidCommandError(`command item ${i} contains NUL`)
  }
  if (command[0] === '') throw new InvalidCommandError('the program (the first command item) must not be empty')
  return [...command]
}

/**
 * Whether any process of group `pgid` still runs. On Linux, /proc tells a running member from a
 * zombie (a killed grandchild that no init reaps, as in some containers, stays in its group as a
 * zombie); elsewhere `kill(-pgid, 0)` answers, counting zombies as members.
 */
export function groupHasLiveMember (pgid: number): boolean {
  let names: string[] | undefined
  try {
    names = readdirSync('/proc')
  } catch {}
  if (names == null) {
    try {
      process.kill(-pgid, 0)
      return true
    } catch {
      return false
    }
  }
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue
    let stat: string
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8')
    } catch {
      continue
    }
    // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses, so split after the last ')'
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    if (Number(fields[2]) === pgid && fields[0] !== 'Z' && fields[0] !== 'X') return true
  }
  return false
}

/** Keeps the last `max` bytes written to it. */
export class OutputTail {
  private parts: Buffer[] = []
  private length = 0

  constructor (private readonly max = STDERR_TAIL_BYTES) {}

  push (data: Buffer): void {
    this.parts.push(data)
    this.length += data.byteLength
    if (this.length > this.max * 2) this.compact()
  }

  private compact (): void {
    const all = Buffer.concat(this.parts)
    const kept = all.subarray(Math.max(0, all.byteLength - this.max))
    this.parts = [Buffer.from(kept)]
    this.length = kept.byteLength
  }

  /** the kept bytes as text, without a character cut in half at the start, trimmed */
  text (max = this.max): string {
    const all = Buffer.concat(this.parts)
    const text = all.subarray(Math.max(0, all.byteLength - max)).toString('utf8')
    return text.replace(/^\uFFFD+/, '').trim()
  }
}

export interface CommandOutcome {
  /** exit code; null when a signal ended the process or it never started */
  exitCode: number | null
  signal: NodeJS.Signals | null
  /** the timeout ran out and the process group was killed */
  timedOut: boolean
  /** the abort signal fired and the process group was killed */
  aborted: boolean
  /** the process could not be started (program not found, not executable, bad cwd) */
  spawnError?: Error
  /** the last STDERR_TAIL_BYTES of standard error */
  stderr: OutputTail
}

export interface StartCommandInit {
  command: Command
  /** folder to run in; default the agent's working folder */
  cwd?: string
  /** added to the agent's environment */
  env?: Record<string, string>
  timeoutMs: number
  /** pipe standard output to the caller, who must read it to its end; otherwise it is discarded */
  stdout?: boolean
}

export interface RunningCommand {
  /** standard output, when asked for */
  stdout?: Readable
  /** settles (never rejects) once the command ended and its process group is gone or killed */
  done: Promise<CommandOutcome>
  /** SIGTERM to the whole process group, SIGKILL after KILL_GRACE_MS */
  kill: () => void
}

/** true when the command ran to the end and exited with code 0 */
export function succeeded (outcome: CommandOutcome): boolean {
  return !outcome.timedOut && !outcome.aborted && outcome.spawnError == null && outcome.exitCode === 0
}

/** "exited with code 3", "was killed by SIGSEGV", "could not be started: ..." */
export function describeOutcome (outcome: CommandOutcome, timeoutMs: number): string {
  if (outcome.timedOut) return `ran longer than its timeout of ${timeoutMs / 1000} s and was killed`
  if (outcome.aborted) return 'was stopped because the capture was aborted'
  if (outcome.spawnError != null) return `could not be started: ${outcome.spawnError.message}`
  if (outcome.signal != null) return `was killed by ${outcome.signal}`
  return `exited with code ${String(outcome.exitCode)}`
}

/**
 * Starts a command in a new process group (a new session: `detached`), so that a timeout or an
 * abort can signal the command and everything it started (`kill(-pid)`): SIGTERM first, SIGKILL
 * if anything in the group is still there after KILL_GRACE_MS. Standard input is closed, standard
 * error is kept as a bounded tail. Throws only for a command that cannot be run as given.
 */
export function startCommand (init: StartCommandInit, options: AbortOptions = {}): RunningCommand {
  const argv = commandArgv(init.command)
  if (!Number.isFinite(init.timeoutMs) || init.timeoutMs <= 0) throw new InvalidCommandError(`timeout must be a positive number of milliseconds, got ${String(init.timeoutMs)}`)
  const signal = options.signal
  const stderr = new OutputTail()
  const outcome: CommandOutcome = { exitCode: null, signal: null, timedOut: false, aborted: false, stderr }

  if (signal?.aborted === true) {
    outcome.aborted = true
    return { done: Promise.resolve(outcome), kill: () => {} }
  }

  const child = spawn(argv[0], argv.slice(1), {
    cwd: init.cwd,
    env: { ...process.env, ...init.env },
    detached: true,
    stdio: ['ignore', init.stdout === true ? 'pipe' : 'ignore', 'pipe']
  })
  const pid = child.pid
  child.stderr?.on('data', (d: Buffer) => { stderr.push(d) })

  let resolveDone!: (o: CommandOutcome) => void
  const done = new Promise<CommandOutcome>(resolve => { resolveDone = resolve })
  let closed = false
  let stopping: Promise<void> | undefined
  let streamTimer: NodeJS.Timeout | undefined

  const groupAlive = (): boolean => pid != null && groupHasLiveMember(pid)
  const signalGroup = (sig: NodeJS.Signals): void => {
    if (pid == null) return
    try { process.kill(-pid, sig) } catch {}
  }
  const destroyStreams = (): void => {
    child.stdout?.destroy()
    child.stderr?.destroy()
  }

  /** SIGTERM, wait for the group to go, SIGKILL what is left after the grace period */
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      signalGroup('SIGTERM')
      const until = Date.now() + KILL_GRACE_MS
      while (Date.now() < until && (!closed || groupAlive())) {
        await new Promise(resolve => setTimeout(resolve, GROUP_POLL_MS))
      }
      if (groupAlive()) {
        signalGroup('SIGKILL')
        // SIGKILL is delivered asynchronously: report the group gone only once it is
        const killed = Date.now() + KILL_GRACE_MS
        while (Date.now() < killed && groupAlive()) await new Promise(resolve => setTimeout(resolve, 10))
      }
      if (!closed) destroyStreams()
    })()
    return stopping
  }

  const timer = setTimeout(() => {
    outcome.timedOut = true
    void stop()
  }, init.timeoutMs)
  const onAbort = (): void => {
    outcome.aborted = true
    void stop()
  }
  signal?.addEventListener('abort', onAbort, { once: true })

  let finished = false
  const finish = (): void => {
    if (finished) return
    finished = true
    clearTimeout(timer)
    clearTimeout(streamTimer)
    signal?.removeEventListener('abort', onAbort)
    // a timeout or abort resolves only once the group has been dealt with
    void Promise.resolve(stopping).then(() => { resolveDone(outcome) })
  }

  child.on('error', (err: Error) => {
    // errors after a successful spawn come from kill() and are handled by polling the group
    if (pid != null) return
    outcome.spawnError = err
    destroyStreams()
    finish()
  })
  child.on('exit', (code, sig) => {
    outcome.exitCode = code
    outcome.signal = sig
    // something the command left running may hold standard error open: do not wait for it long
    streamTimer = setTimeout(() => { child.stderr?.destroy() }, STREAM_GRACE_MS)
  })
  child.on('close', () => {
    closed = true
    finish()
  })

  return {
    stdout: child.stdout ?? undefined,
    done,
    kill: () => { void stop() }
  }
}
