import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { multiaddr } from '@multiformats/multiaddr'
import { Ajv } from 'ajv'
import { Cron } from 'croner'
import { ConfigError } from './errors.js'
import { configSchema } from './schema.js'
import { checkSocketPath, parseAppTokens, parseSockets, type SocketConfig } from './sockets.js'

export { ConfigError } from './errors.js'
export { resolveGroup, SOCKET_DEFAULTS, type GroupSpec, type SocketConfig } from './sockets.js'

/** a pre or post hook of a source */
export interface HookConfig {
  /** an argv list run without a shell, or a string run by /bin/sh -c */
  command: string[] | string
  timeoutSeconds: number
}

interface SourceConfigBase {
  name: string
  /** absolute folder the hooks and the command run in; default the config file's folder */
  cwd: string
  pre?: HookConfig
  post?: HookConfig
}

/** a folder to walk */
export interface PathSourceConfig extends SourceConfigBase {
  /** absolute */
  path: string
  exclude: string[]
  command?: undefined
}

/** a command whose standard output is stored as the file `<name>/<output>` */
export interface CommandSourceConfig extends SourceConfigBase {
  command: string[] | string
  /** one path component */
  output: string
  timeoutSeconds: number
  path?: undefined
}

export type SourceConfig = PathSourceConfig | CommandSourceConfig

/** defaults of the source keys; the README ("Config") lists the same */
export const SOURCE_DEFAULTS = {
  output: 'stdout',
  timeoutSeconds: 3600,
  hookTimeoutSeconds: 60
} as const

/** The agent's config after validation, defaults applied and every path absolute. */
export interface Config extends SocketConfig {
  /** absolute path of the file this config came from */
  file: string
  name: string
  dataDir: string
  listen: string[]
  announce: string[]
  bootstrap: string[]
  /** absolute path of a swarm.key file, or undefined for an open network */
  psk?: string
  sources: SourceConfig[]
  snapshot: {
    deadlineSeconds: number
    consistency: 'marker' | 'barrier'
    prepareTimeoutSeconds: number
    /** the longest prepare wait this host grants a barrier marker, whatever the marker asks */
    maxPrepareTimeoutSeconds: number
    /** the longest a barrier snapshot keeps this host frozen (prepare wait and capture) */
    maxFreezeSeconds: number
  }
  /** snapshots every agent fires at the same slots; see README "Schedules" */
  schedules: ScheduleConfig[]
  replication: {
    /** copies of every block in all, the owner's counted; 1 turns replication off */
    copies: number
    /** holders pushed to at once */
    concurrency: number
    /** megabytes per second a holder pulls at most; 0 for no limit */
    bandwidthMBps: number
    /** a member unreachable for longer than this is presumed gone and its copies are re-made */
    graceSeconds: number
    /** how often membership is checked for departed holders */
    checkSeconds: number
  }
  retention: {
    /** a prune keeps unreferenced blocks younger than this: a capture or replica may be on its way to a record */
    pruneGraceSeconds: number
    /** how often unreferenced blocks older than the grace period are swept; 0 turns it off */
    sweepHours: number
  }
  /** the audit log (README, "Audit log") */
  audit: {
    /** how often the agent gossips its log head */
    headSeconds: number
    /** a log file is not let grow past this; the next one is started */
    maxFileBytes: number
    /** rejected gossip is summed over windows this long, one entry per window that had any */
    rejectWindowSeconds: number
  }
  /** app channels and app state (README, "Apps: channels and state") */
  apps: {
    /** absolute path of the app socket */
    socket: string
    /** largest app message payload */
    maxMessageBytes: number
    /** largest state one app may give at a cut */
    maxStateBytes: number
    /** app name -> absolute path of its token file; absent: any local process may register any name */
    tokens?: Record<string, string>
  }
  network: {
    maxMessageBytes: number
    reconnectSeconds: number
    syncSeconds: number
    republishHours: number
    fetchConcurrency: number
    fetchTimeoutSeconds: number
    /** times in messages from peers further ahead of this host's clock than this are refused */
    maxClockSkewSeconds: number
    /** how long a peer whose gossip score fell below the graylist threshold is refused */
    banSeconds: number
  }
}

// union types: a command is an argv list or a shell string
const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true })
const validate = ajv.compile(configSchema)

/** `instancePath` (`/sources/0/name`) to the field name users write (`sources[0].name`). */
function fieldName (instancePath: string, extra?: string): string {
  const parts = instancePath.split('/').filter(p => p !== '')
  if (extra != null) parts.push(extra)
  let out = ''
  for (const p of parts) out += /^\d+$/.test(p) ? `[${p}]` : (out === '' ? p : `.${p}`)
  return out === '' ? '(root)' : out
}

interface RawHook { command: string[] | string, timeoutSeconds?: number }
interface RawSource {
  name: string
  path?: string
  exclude?: string[]
  command?: string[] | string
  output?: string
  timeoutSeconds?: number
  cwd?: string
  pre?: RawHook
  post?: RawHook
}

/** what is wrong with a command the schema let through, or undefined */
function commandProblem (command: string[] | string): string | undefined {
  if (typeof command === 'string') return command.trim() === '' ? 'must not be blank' : command.includes('\0') ? 'must not contain NUL' : undefined
  if (command[0] === '') return 'the program (the first item) must not be empty'
  return command.some(a => a.includes('\0')) ? 'must not contain NUL' : undefined
}

/** one source, checked beyond the schema (exactly one of path and command, keys that fit its kind), with defaults */
function parseSource (s: RawSource, at: string, file: string, abs: (p: string) => string): SourceConfig {
  const hook = (h: RawHook | undefined, field: string): HookConfig | undefined => {
    if (h == null) return undefined
    const problem = commandProblem(h.command)
    if (problem != null) throw new ConfigError(file, problem, `${at}.${field}.command`)
    return { command: h.command, timeoutSeconds: h.timeoutSeconds ?? SOURCE_DEFAULTS.hookTimeoutSeconds }
  }
  const base: SourceConfigBase = { name: s.name, cwd: abs(s.cwd ?? '.') }
  const pre = hook(s.pre, 'pre')
  const post = hook(s.post, 'post')
  if (pre != null) base.pre = pre
  if (post != null) base.post = post

  if (s.path != null && s.command != null) throw new ConfigError(file, 'a source has either a path or a command, not both', `${at}.command`)
  if (s.path == null && s.command == null) throw new ConfigError(file, 'is required (or command, for a source that is a command\'s output)', `${at}.path`)
  if (s.path != null) {
    for (const key of ['output', 'timeoutSeconds'] as const) {
      if (s[key] != null) throw new ConfigError(file, 'only a source with a command takes this key', `${at}.${key}`)
    }
    return { ...base, path: abs(s.path), exclude: s.exclude ?? [] }
  }
  const command = s.command as string[] | string
  const problem = commandProblem(command)
  if (problem != null) throw new ConfigError(file, problem, `${at}.command`)
  if (s.exclude != null) throw new ConfigError(file, 'only a source with a path takes this key', `${at}.exclude`)
  const output = s.output ?? SOURCE_DEFAULTS.output
  if (output === '.' || output === '..' || output.includes('/') || output.includes('\0') || Buffer.byteLength(output) > 255) {
    throw new ConfigError(file, `${JSON.stringify(output)} is not a file name: one path component (no "/", not "." or ".."), at most 255 bytes`, `${at}.output`)
  }
  return { ...base, command, output, timeoutSeconds: s.timeoutSeconds ?? SOURCE_DEFAULTS.timeoutSeconds }
}

/** Validates an already-parsed config object; `file` is used for messages and relative paths. */
export interface ScheduleConfig {
  /** unique; part of every slot's snapshot ID, so all agents must use the same name */
  name: string
  /** cron pattern, 5 fields (minute first) or 6 (seconds first), evaluated in UTC */
  cron: string
  /** default: the schedule's name */
  tag?: string
}

function checkSchedules (file: string, list: ScheduleConfig[]): ScheduleConfig[] {
  const names = new Set<string>()
  return list.map((s, i) => {
    if (names.has(s.name)) throw new ConfigError(file, `duplicate schedule name ${JSON.stringify(s.name)}`, `schedules[${i}].name`)
    names.add(s.name)
    try {
      // eslint-disable-next-line no-new
      new Cron(s.cron, { paused: true, timezone: 'Etc/UTC' })
    } catch (err: any) {
      throw new ConfigError(file, `not a cron pattern: ${JSON.stringify(s.cron)} (${String(err.message)})`, `schedules[${i}].cron`)
    }
    return { ...s }
  })
}

export function parseConfig (raw: unknown, file: string): Config {
  file = path.resolve(file)
  if (!validate(raw)) {
    const err = validate.errors?.[0]
    if (err == null) throw new ConfigError(file, 'invalid config')
    const extra = err.keyword === 'additionalProperties'
      ? String((err.params as { additionalProperty: string }).additionalProperty)
      : err.keyword === 'required' ? String((err.params as { missingProperty: string }).missingProperty) : undefined
    const msg = err.keyword === 'additionalProperties'
      ? 'unknown field'
      : err.keyword === 'required' ? 'is required' : err.message ?? 'is invalid'
    throw new ConfigError(file, msg, fieldName(err.instancePath, extra))
  }
  const c = raw as Record<string, any>
  const dir = path.dirname(file)
  const abs = (p: string): string => path.resolve(dir, p)

  const dataDir = abs(c.dataDir ?? 'data')
  for (const [field, list] of [['listen', c.listen], ['announce', c.announce], ['bootstrap', c.bootstrap]] as const) {
    for (const [i, a] of ((list ?? []) as string[]).entries()) {
      try { multiaddr(a) } catch (err: any) {
        throw new ConfigError(file, `not a valid multiaddr: ${JSON.stringify(a)} (${String(err.message)})`, `${field}[${i}]`)
      }
    }
  }
  const seen = new Set<string>()
  const sources: SourceConfig[] = ((c.sources ?? []) as RawSource[]).map((s, i) => {
    if (seen.has(s.name)) throw new ConfigError(file, `duplicate source name ${JSON.stringify(s.name)}`, `sources[${i}].name`)
    seen.add(s.name)
    return parseSource(s, `sources[${i}]`, file, abs)
  })
  const sockets = parseSockets(c, file, dataDir, abs)
  const appsSocket = checkSocketPath(file, 'apps.socket', c.apps?.socket != null ? abs(c.apps.socket) : path.join(dataDir, 'apps.sock'))
  for (const [field, p] of [['adminSocket', sockets.adminSocket], ['readSocket', sockets.readSocket]] as const) {
    if (p === appsSocket) throw new ConfigError(file, 'must differ from apps.socket', field)
  }
  const tokens = parseAppTokens(file, c.apps?.tokens, abs)
  // the app part of a snapshot is captured as a source of this name
  const appsSource = sources.findIndex(s => s.name === 'apps')
  if (appsSource >= 0) throw new ConfigError(file, 'the source name "apps" is reserved for the app part of snapshots', `sources[${appsSource}].name`)
  const n = c.network ?? {}
  return {
    file,
    name: c.name ?? os.hostname(),
    dataDir,
    listen: c.listen ?? ['/ip4/0.0.0.0/tcp/4101'],
    announce: c.announce ?? [],
    bootstrap: c.bootstrap ?? [],
    ...sockets,
    psk: c.psk != null ? abs(c.psk) : undefined,
    sources,
    snapshot: checkSnapshot(file, {
      deadlineSeconds: c.snapshot?.deadlineSeconds ?? 120,
      consistency: c.snapshot?.consistency ?? 'marker',
      prepareTimeoutSeconds: c.snapshot?.prepareTimeoutSeconds ?? 30,
      maxPrepareTimeoutSeconds: c.snapshot?.maxPrepareTimeoutSeconds ?? 300,
      maxFreezeSeconds: c.snapshot?.maxFreezeSeconds ?? 900
    }),
    schedules: checkSchedules(file, c.schedules ?? []),
    replication: {
      copies: c.replication?.copies ?? 2,
      concurrency: c.replication?.concurrency ?? 4,
      bandwidthMBps: c.replication?.bandwidthMBps ?? 0,
      graceSeconds: c.replication?.graceSeconds ?? 600,
      checkSeconds: c.replication?.checkSeconds ?? 60
    },
    retention: {
      pruneGraceSeconds: c.retention?.pruneGraceSeconds ?? 3600,
      sweepHours: c.retention?.sweepHours ?? 24
    },
    audit: {
      headSeconds: c.audit?.headSeconds ?? 300,
      maxFileBytes: c.audit?.maxFileBytes ?? 4 * 1024 * 1024,
      rejectWindowSeconds: c.audit?.rejectWindowSeconds ?? 60
    },
    apps: {
      socket: appsSocket,
      maxMessageBytes: c.apps?.maxMessageBytes ?? 1024 * 1024,
      maxStateBytes: c.apps?.maxStateBytes ?? 64 * 1024 * 1024,
      ...(tokens != null ? { tokens } : {})
    },
    network: {
      maxMessageBytes: n.maxMessageBytes ?? 1024 * 1024,
      reconnectSeconds: n.reconnectSeconds ?? 5,
      syncSeconds: n.syncSeconds ?? 30,
      republishHours: n.republishHours ?? 12,
      fetchConcurrency: n.fetchConcurrency ?? 8,
      fetchTimeoutSeconds: n.fetchTimeoutSeconds ?? 30,
      maxClockSkewSeconds: n.maxClockSkewSeconds ?? 300,
      banSeconds: n.banSeconds ?? 600
    }
  }
}

/** the snapshot settings, checked against each other */
function checkSnapshot (file: string, s: Config['snapshot']): Config['snapshot'] {
  if (s.prepareTimeoutSeconds > s.maxPrepareTimeoutSeconds) {
    throw new ConfigError(file, `must not exceed snapshot.maxPrepareTimeoutSeconds (${s.maxPrepareTimeoutSeconds}), got ${s.prepareTimeoutSeconds}`, 'snapshot.prepareTimeoutSeconds')
  }
  if (s.maxFreezeSeconds < s.maxPrepareTimeoutSeconds) {
    throw new ConfigError(file, `must be at least snapshot.maxPrepareTimeoutSeconds (${s.maxPrepareTimeoutSeconds}), got ${s.maxFreezeSeconds}`, 'snapshot.maxFreezeSeconds')
  }
  return s
}

/** Reads, parses and validates a config file. Errors name the file and the field. */
export async function loadConfig (file: string): Promise<Config> {
  file = path.resolve(file)
  let text: string
  try {
    text = await fs.readFile(file, 'utf8')
  } catch (err: any) {
    throw new ConfigError(file, err.code === 'ENOENT' ? 'file not found' : `cannot read: ${String(err.message)}`)
  }
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch (err: any) {
    throw new ConfigError(file, `not valid JSON: ${String(err.message)}`)
  }
  return parseConfig(raw, file)
}
